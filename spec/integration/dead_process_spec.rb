# frozen_string_literal: true

# Two Faye processes share Redis and MariaDB. When one dies without a word
# (kill -9), its clients are cleaned by the other process's sweep, and their
# time ends when they were last seen. Faye's timeout is 1 s here, so a
# clientId is swept once unseen for 2 × 1 + 5 = 7 s, at the next 1 s sweep.
RSpec.describe "A dead process", :integration do
  on_each_deployment(only: :redis, server: { timeout: 1, gc: 1 }) do |configuration|
    it "has its clients swept by a live process, with time ending when they were last seen" do
      survivor = FayeOnlineSpec::ServerProcess.new(
        configuration.server_env(namespace: namespace, timeout: 1, gc: 1)
      ).start
      room = new_room
      lesson = new_lesson
      user = new_user("orphan")
      uid = user["uid"]

      joined_at = now
      tab = join(user, room: room, lesson: lesson)
      eventually { expect(online_times(uid)).to have_key(started_key(lesson)) }
      let_time_pass(1.0)
      polled_at_ms = (Time.now.to_f * 1000).to_i
      expect(tab.connect(auth: auth_for(user, room: room, lesson: lesson))).to include("successful" => true)
      last_seen = now - joined_at
      # A process records when its clients were last seen once a second; a
      # crash loses at most that second.
      eventually { expect(redis_space.client_last_seen(tab.client_id).to_i).to be >= polled_at_ms - 20 }

      server.kill!
      killed_at = now - joined_at
      eventually(timeout: 15) { expect(sql.log_entries(uid)).to contain_exactly([1, tab.client_id], [0, tab.client_id]) }
      cleaned_after = now - joined_at - killed_at
      eventually { expect(Array(sql.online_uids(room))).to eq [] }
      expect(redis_space.room_users(room)).to be_empty
      expect(redis_space.client_hash(tab.client_id)).to be_empty
      eventually { expect(online_times(uid)).not_to have_key(started_key(lesson)) }
      expect(online_times(uid)[spended_key(lesson)]).to be_within(1).of(last_seen),
        "credited #{online_times(uid)[spended_key(lesson)].inspect}s, last seen at #{last_seen.round(2)}s"
      expect(cleaned_after).to be < 12, "cleaned #{cleaned_after.round(2)}s after the kill"
    ensure
      survivor&.stop
    end
  end
end
