# frozen_string_literal: true

# A client that vanishes (network loss, crash) sends no /meta/disconnect: the
# server must notice, log it out, and end its time when it was last seen.
# These servers run with Faye's timeout at 2 s and a 1 s sweep.
RSpec.shared_examples "a tracker of vanished clients" do
  let(:room) { new_room }
  let(:lesson) { new_lesson }
  let(:user) { new_user("mvj3") }
  let(:uid) { user["uid"] }
  let(:auth) { auth_for(user, room: room, lesson: lesson) }

  it "logs out a client that stops polling and credits its time until it was last seen" do
    watcher = watch(room)
    joined_at = now
    tab = join(user, room: room, lesson: lesson)
    eventually { expect(online_times(uid)).to have_key(started_key(lesson)) }
    let_time_pass(1.0)
    expect(tab.connect(auth: auth)).to include("successful" => true)
    last_seen = now - joined_at

    eventually(timeout: 15) { expect(sql.log_entries(uid)).to contain_exactly([1, tab.client_id], [0, tab.client_id]) }
    noticed = now - joined_at
    eventually { expect(online_uids(room)).to eq [] }
    eventually { expect(lists_seen(watcher, room).last).to include("count" => 0, "user_list" => []) }
    eventually { expect(online_times(uid)).not_to have_key(started_key(lesson)) }
    expect(online_times(uid)[spended_key(lesson)]).to be_within(1).of(last_seen),
      "credited #{online_times(uid)[spended_key(lesson)].inspect}s; last seen at #{last_seen.round(2)}s, " \
      "noticed gone at #{noticed.round(2)}s"
    expect(FayeOnline.online_users(room)).to eq []
  end

  it "keeps the user online while another tab still polls" do
    live = faye_client(auth: auth)
    live_id = live.connect!
    eventually { expect(sql.log_entries(uid)).to eq [[1, live_id]] }
    vanishing = join(user, room: room, lesson: lesson)

    eventually(timeout: 15) { expect(sql.log_entries(uid)).to include([0, vanishing.client_id]) }
    consistently(duration: 1.0) do
      expect(sql.online_uids(room)).to eq [uid]
      expect(online_times(uid)).to have_key(started_key(lesson))
      expect(sql.log_entries(uid)).not_to include([0, live_id])
    end
    expect(FayeOnline.online_users(room)).to eq [user]
  end
end

RSpec.describe "Vanished clients", :integration do
  on_each_deployment(server: { timeout: 2, gc: 1 }) do
    it_behaves_like "a tracker of vanished clients"
  end
end
