# frozen_string_literal: true

# Validation of the `auth` that clients add to /meta/connect: bad input gets a
# Bayeux error, is not stored, and does not stop the server.
RSpec.shared_examples "a guard of /meta/connect auth" do
  let(:room) { new_room }
  let(:lesson) { new_lesson }
  let(:user) { new_user("mvj3") }
  let(:uid) { user["uid"] }
  let(:valid_auth) { auth_for(user, room: room, lesson: lesson) }

  # A valid user joins the same room afterwards: the server still serves, and
  # once that join is stored, nothing of the refused client may be there.
  def expect_refused_and_nothing_stored(tab, reply, code:)
    expect(reply).to include("successful" => false)
    expect(reply["error"]).to be_a(String).and start_with("#{code}:")

    sentinel = new_user("sentinel")
    join(sentinel, room: room, lesson: lesson)
    eventually { expect(sql.login_logs(sentinel["uid"]).size).to eq 1 }
    eventually { expect(sql.online_uids(room)).to eq [sentinel["uid"]] }
    consistently(duration: 0.3) do
      expect(sql.login_logs_of_client(tab.client_id)).to be_empty
      expect(sql.login_logs(uid)).to be_empty
      expect(sql.online_uids(room)).to eq [sentinel["uid"]]
      expect(sql.online_times(uid)).to be_nil
    end
    expect(FayeOnline.online_users(room)).to eq [sentinel]
  end

  invalid_auths = {
    "a current_user without uid" => ->(a) { a.merge("current_user" => a["current_user"].reject { |k, _| k == "uid" }) },
    "a current_user without uname" => ->(a) { a.merge("current_user" => a["current_user"].reject { |k, _| k == "uname" }) },
    "a uid given as a string" => ->(a) { a.merge("current_user" => a["current_user"].merge("uid" => a["current_user"]["uid"].to_s)) },
    "a uid given as an array" => ->(a) { a.merge("current_user" => a["current_user"].merge("uid" => [a["current_user"]["uid"]])) },
    "a uid that is not positive" => ->(a) { a.merge("current_user" => a["current_user"].merge("uid" => 0)) },
    "a blank uname" => ->(a) { a.merge("current_user" => a["current_user"].merge("uname" => "  ")) },
    "no current_user" => ->(a) { a.reject { |k, _| k == "current_user" } },
    "a current_user that is not a Hash" => ->(a) { a.merge("current_user" => "mvj3") },
    "a room_channel with a wildcard" => ->(a) { a.merge("room_channel" => "#{a['room_channel']}/*") },
    "a room_channel with '..'" => ->(a) { a.merge("room_channel" => "#{a['room_channel']}/../4") },
    "a room_channel with a space" => ->(a) { a.merge("room_channel" => "#{a['room_channel']} 4") },
    "a time_channel with a wildcard" => ->(a) { a.merge("time_channel" => "#{a['time_channel']}/**") },
    "a uid given as an object" => ->(a) { a.merge("current_user" => a["current_user"].merge("uid" => { "id" => 1 })) },
    "a fractional uid" => ->(a) { a.merge("current_user" => a["current_user"].merge("uid" => 1.5)) },
    "a uid past 64 bits" => ->(a) { a.merge("current_user" => a["current_user"].merge("uid" => 2**64)) },
    "a uname given as a number" => ->(a) { a.merge("current_user" => a["current_user"].merge("uname" => 42)) },
    "a uname over 100 characters" => ->(a) { a.merge("current_user" => a["current_user"].merge("uname" => "x" * 101)) },
    "a huge string (1 MiB)" => ->(a) { a.merge("current_user" => a["current_user"].merge("uname" => "x" * (1 << 20))) },
    "a room_channel in unicode" => ->(a) { a.merge("room_channel" => "/classes/été") },
    "a room_channel with an empty segment" => ->(a) { a.merge("room_channel" => "/classes//4") },
    "a room_channel under /meta" => ->(_) { { "room_channel" => "/meta/connect" } },
    "a time_channel that is a number" => ->(a) { a.merge("time_channel" => 5) },
    "an auth nested too deep" => ->(a) { a.merge("extra" => { "a" => { "b" => { "c" => { "d" => 1 } } } }) },
    "an auth with over 64 values" => ->(a) { a.merge("extra" => Array.new(100) { |i| i }) },
    "an empty auth" => ->(_) { {} },
    "an auth that is a String" => ->(_) { "470700" },
    "an auth that is an Array" => ->(a) { [a] }
  }

  invalid_auths.each do |description, corrupt|
    it "refuses #{description} with a 400 error and stores nothing" do
      tab = bayeux_client.handshake!
      reply = tab.connect(auth: corrupt.call(valid_auth))
      expect_refused_and_nothing_stored(tab, reply, code: 400)
    end
  end

  it "refuses a client that claims a second user with a 403 error and keeps the first" do
    tab = join(user, room: room, lesson: lesson)
    eventually { expect(sql.log_entries(uid)).to eq [[1, tab.client_id]] }

    impostor = new_user("impostor")
    reply = tab.connect(auth: auth_for(impostor, room: room, lesson: lesson))
    expect(reply).to include("successful" => false)
    expect(reply["error"]).to be_a(String).and start_with("403:")

    sentinel = new_user("sentinel")
    join(sentinel, room: room, lesson: lesson)
    eventually { expect(sql.online_uids(room)).to contain_exactly(uid, sentinel["uid"]) }
    consistently(duration: 0.3) do
      expect(sql.login_logs(impostor["uid"])).to be_empty
      expect(sql.online_uids(room)).to contain_exactly(uid, sentinel["uid"])
      expect(sql.log_entries(uid)).to eq [[1, tab.client_id]]
    end
    expect(FayeOnline.online_users(room)).to eq [user, sentinel].sort_by { |u| u["uid"] }
  end

  it "keeps serving a Faye::Client after a burst of malformed connects" do
    invalid_auths.each_value do |corrupt|
      tab = bayeux_client.handshake!
      expect(tab.connect(auth: corrupt.call(valid_auth))).to include("successful" => false)
    end
    watcher = watch(room)
    faye_client(auth: valid_auth).connect!
    eventually { expect(sql.online_uids(room)).to eq [uid] }
    eventually { expect(lists_seen(watcher, room).last&.fetch("user_list")).to eq [uid] }
  end
end

RSpec.describe "Auth on /meta/connect", :integration do
  on_each_deployment do
    it_behaves_like "a guard of /meta/connect auth"
  end
end
