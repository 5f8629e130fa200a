# frozen_string_literal: true

# The documented Redis layout, under /<namespace>/, for the Redis store.
RSpec.describe "Redis layout", :integration do
  on_each_deployment(only: :redis) do
    let(:room) { new_room }
    let(:lesson) { new_lesson }
    let(:user) { new_user("mvj3") }
    let(:uid) { user["uid"] }

    def now_ms
      (Time.now.to_f * 1000).round
    end

    it "keeps the client, room and lesson state while a client is online and clears it after" do
      tab = join(user, room: room, lesson: lesson)
      cid = tab.client_id

      eventually do
        expect(redis_space.client_hash(cid)).to include("uid" => uid.to_s, "uname" => user["uname"],
                                                        "room" => room, "time" => lesson)
      end
      expect(redis_space.room_users(room)).to eq(uid.to_s => user["uname"])
      expect(redis_space.room_tabs(room, uid)).to eq 1
      expect(redis_space.time_tabs(lesson, uid)).to eq 1
      expect(redis_space.time_started(lesson).keys).to eq [uid.to_s]
      expect(Integer(redis_space.time_started(lesson)[uid.to_s])).to be_within(10_000).of(now_ms)
      expect(redis_space.client_last_seen(cid)).to be_within(10_000).of(now_ms)

      second = join(user, room: room, lesson: lesson)
      eventually { expect(redis_space.room_tabs(room, uid)).to eq 2 }
      expect(redis_space.time_tabs(lesson, uid)).to eq 2
      expect(redis_space.room_users(room)).to eq(uid.to_s => user["uname"])

      leave(tab)
      leave(second)

      eventually { expect(redis_space.room_users(room)).to eq({}) }
      eventually do
        expect(redis_space.client_hash(cid)).to eq({})
        expect(redis_space.client_hash(second.client_id)).to eq({})
        expect(redis_space.room_tabs(room, uid)).to eq 0
        expect(redis_space.time_tabs(lesson, uid)).to eq 0
        expect(redis_space.time_started(lesson)).to eq({})
        expect(redis_space.client_last_seen(cid)).to be_nil
      end
    end

    it "answers FayeOnline.online_users with the room's users, sorted by uid" do
      users = [new_user("b"), new_user("a")]
      users.each { |u| join(u, room: room, lesson: lesson) }
      eventually { expect(redis_space.room_users(room).size).to eq 2 }
      expect(FayeOnline.online_users(room)).to eq users.sort_by { |u| u["uid"] }
    end

    it "writes only under its namespace" do
      join(user, room: room, lesson: lesson)
      eventually { expect(redis_space.room_users(room)).to have_key(uid.to_s) }
      # The room's own keys (…:<room>:…): a bare "*<room>*" would also match
      # a longer room's, such as /classes/1091 for /classes/109.
      keys = redis_space.redis.scan_each(match: "*:#{room}:*").to_a
      expect(keys).to include(start_with("/#{namespace}/"))
      # other test runs may use the same room names, under their own namespaces
      expect(keys.grep_v(%r{\A/fo_test_\d+_\d+/})).to be_empty
    end
  end
end
