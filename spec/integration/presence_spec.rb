# frozen_string_literal: true

# Who is online in a room, the lesson timer and the login log, driven by
# /meta/connect and /meta/disconnect of real clients.
RSpec.shared_examples "a presence tracker" do
  let(:room) { new_room }
  let(:lesson) { new_lesson }
  let(:user) { new_user("mvj3") }
  let(:uid) { user["uid"] }

  def expect_list(data, room, users)
    uids = users.map { |u| u["uid"] }
    expect(data).to include("count" => users.size, "channel_name" => room)
    expect(data["user_list"]).to contain_exactly(*uids)
    expect(data["users"]).to contain_exactly(*users.map { |u| include(u) })
  end

  describe "the first /meta/connect of a client" do
    it "logs the login, puts the user online, publishes the room's list and starts the lesson timer" do
      watcher = watch(room)
      tab = join(user, room: room, lesson: lesson)

      eventually { expect(sql.login_logs(uid).size).to eq 1 }
      login = sql.login_logs(uid).first
      expect(login).to include("status" => 1, "uid" => uid, "clientId" => tab.client_id,
                               "channel_id" => sql.channel_id(lesson))
      expect(login["channel_id"]).not_to be_nil
      expect(login["t"]).not_to be_nil

      eventually { expect(sql.online_uids(room)).to eq [uid] }
      eventually { expect(lists_seen(watcher, room)).not_to be_empty }
      eventually { expect_list(lists_seen(watcher, room).last, room, [user]) }
      eventually { expect(online_times(uid)[started_key(lesson)]).to match(/\A\d{14}\z/) }
      eventually { expect(FayeOnline.online_users(room)).to eq [user] }
    end

    it "is also how a Faye::Client carrying auth joins" do
      watcher = watch(room)
      tab = faye_client(auth: auth_for(user, room: room, lesson: lesson))
      client_id = tab.connect!

      eventually { expect(sql.log_entries(uid)).to eq [[1, client_id]] }
      eventually { expect(sql.online_uids(room)).to eq [uid] }
      eventually { expect(lists_seen(watcher, room)).not_to be_empty }
      eventually { expect_list(lists_seen(watcher, room).last, room, [user]) }
      eventually { expect(online_times(uid)).to have_key(started_key(lesson)) }
    end
  end

  describe "a repeated /meta/connect of the same client" do
    it "stores and publishes nothing new" do
      watcher = watch(room)
      tab = join(user, room: room, lesson: lesson)
      eventually { expect(sql.login_logs(uid).size).to eq 1 }
      eventually { expect(lists_seen(watcher, room).last&.fetch("user_list")).to eq [uid] }
      published = lists_seen(watcher, room).size

      3.times do
        expect(tab.connect(auth: auth_for(user, room: room, lesson: lesson))).to include("successful" => true)
      end

      consistently(duration: 0.6) do
        expect(sql.log_entries(uid)).to eq [[1, tab.client_id]]
        expect(lists_seen(watcher, room).size).to eq published
        expect(sql.online_uids(room)).to eq [uid]
      end
      expect(FayeOnline.online_users(room)).to eq [user]
    end
  end

  describe "a second client (tab) of the same user in the same room" do
    it "logs a second login but changes and publishes no membership" do
      watcher = watch(room)
      first = join(user, room: room, lesson: lesson)
      eventually { expect(sql.login_logs(uid).size).to eq 1 }
      eventually { expect(lists_seen(watcher, room).last&.fetch("user_list")).to eq [uid] }
      published = lists_seen(watcher, room).size

      second = join(user, room: room, lesson: lesson)

      eventually { expect(sql.log_entries(uid)).to contain_exactly([1, first.client_id], [1, second.client_id]) }
      consistently(duration: 0.6) do
        expect(lists_seen(watcher, room).size).to eq published
        expect(sql.online_uids(room)).to eq [uid]
      end
      expect(FayeOnline.online_users(room)).to eq [user]
    end
  end

  describe "/meta/disconnect" do
    it "of one of two tabs logs that tab out and keeps the user online with the timer running" do
      watcher = watch(room)
      first = join(user, room: room, lesson: lesson)
      second = join(user, room: room, lesson: lesson)
      eventually { expect(sql.login_logs(uid).size).to eq 2 }
      eventually { expect(lists_seen(watcher, room).last&.fetch("user_list")).to eq [uid] }
      eventually { expect(online_times(uid)).to have_key(started_key(lesson)) }
      published = lists_seen(watcher, room).size

      leave(second)

      eventually do
        expect(sql.log_entries(uid)).to contain_exactly([1, first.client_id], [1, second.client_id],
                                                        [0, second.client_id])
      end
      consistently(duration: 0.6) do
        expect(sql.online_uids(room)).to eq [uid]
        expect(lists_seen(watcher, room).size).to eq published
        expect(online_times(uid)).to have_key(started_key(lesson))
      end
      expect(FayeOnline.online_users(room)).to eq [user]
    end

    it "of the last tab logs out, takes the user off the list and credits the lesson time once" do
      watcher = watch(room)
      joined_at = now
      first = join(user, room: room, lesson: lesson)
      second = join(user, room: room, lesson: lesson)
      eventually { expect(online_times(uid)).to have_key(started_key(lesson)) }
      eventually { expect(lists_seen(watcher, room).last&.fetch("user_list")).to eq [uid] }

      let_time_pass(1.0)
      leave(first)
      let_time_pass(1.0)
      leave(second)
      elapsed = now - joined_at

      eventually do
        expect(sql.log_entries(uid)).to contain_exactly([1, first.client_id], [1, second.client_id],
                                                        [0, first.client_id], [0, second.client_id])
      end
      eventually { expect(online_uids(room)).to eq [] }
      eventually { expect_list(lists_seen(watcher, room).last, room, []) }
      eventually do
        times = online_times(uid)
        expect(times).not_to have_key(started_key(lesson))
        expect(times[spended_key(lesson)]).to be_within(1).of(elapsed)
      end
      expect(FayeOnline.online_time(uid, lesson)).to eq online_times(uid)[spended_key(lesson)]
      expect(FayeOnline.online_users(room)).to eq []
    end
  end

  describe "FayeOnline.online_time" do
    it "adds a running session to the time already credited" do
      joined_at = now
      tab = join(user, room: room, lesson: lesson)
      eventually { expect(online_times(uid)).to have_key(started_key(lesson)) }
      let_time_pass(1.0)
      leave(tab)
      first_session = now - joined_at
      eventually { expect(online_times(uid)[spended_key(lesson)]).to be_within(1).of(first_session) }
      credited = online_times(uid)[spended_key(lesson)]
      expect(FayeOnline.online_time(uid, lesson)).to eq credited

      rejoined_at = now
      tab = join(user, room: room, lesson: lesson)
      eventually { expect(online_times(uid)).to have_key(started_key(lesson)) }
      let_time_pass(1.5)
      expect(FayeOnline.online_time(uid, lesson)).to be_within(1).of(credited + (now - rejoined_at))

      leave(tab)
      eventually { expect(online_times(uid)).not_to have_key(started_key(lesson)) }
      # each session may round by up to a second
      expect(online_times(uid)[spended_key(lesson)]).to be_within(2).of(first_session + (now - rejoined_at))
    end

    it "is zero for a user who never joined the lesson" do
      expect(FayeOnline.online_time(new_user["uid"], lesson)).to eq 0
    end
  end

  describe "two users in one room" do
    it "lists both, to watchers and to the users' own subscriptions, and publishes a leave" do
      other = new_user("李雷")
      watcher = watch(room)
      tabs = [user, other].map do |u|
        faye_client(auth: auth_for(u, room: room, lesson: lesson)).subscribe(user_list_channel(room))
      end

      eventually { expect(sql.online_uids(room)).to contain_exactly(uid, other["uid"]) }
      eventually { expect(lists_seen(watcher, room).last&.fetch("count")).to eq 2 }
      expect_list(lists_seen(watcher, room).last, room, [user, other])
      eventually { expect(lists_seen(tabs.first, room).last&.fetch("count")).to eq 2 }
      expect(FayeOnline.online_users(room)).to eq [user, other].sort_by { |u| u["uid"] }

      tabs.last.disconnect

      eventually { expect(sql.log_entries(other["uid"]).map(&:first)).to eq [1, 0] }
      eventually { expect(sql.online_uids(room)).to eq [uid] }
      eventually { expect_list(lists_seen(watcher, room).last, room, [user]) }
      eventually { expect(FayeOnline.online_users(room)).to eq [user] }
    end
  end

  describe "a client without auth" do
    it "is served but not tracked" do
      tab = bayeux_client.handshake!
      expect(tab.connect).to include("successful" => true)
      expect(tab.disconnect).to include("successful" => true)
      sentinel = join(user, room: room, lesson: lesson)
      eventually { expect(sql.login_logs(uid).size).to eq 1 }
      expect(sql.login_logs_of_client(tab.client_id)).to be_empty
      expect(sql.login_logs_of_client(sentinel.client_id).size).to eq 1
    end
  end
end

RSpec.describe "Presence", :integration do
  on_each_deployment do
    it_behaves_like "a presence tracker"
  end
end
