# frozen_string_literal: true

# Churn: three Faye processes sharing Redis and MariaDB, two hundred users
# coming and going at random (a seeded Random, printed), with one or two
# tabs each on any process; tabs leave by saying so or vanish (stop
# polling). The test keeps the ground truth of every tab's interval and
# compares the final Redis and SQL state with it.
RSpec.describe "Churn", :integration do
  on_each_deployment(only: :redis, server: { timeout: 2, gc: 1 }) do |configuration|
    users_count = 200
    rounds = 16
    threads = 6

    # One browser tab: a raw Bayeux client on one process, and its interval.
    tab_class = Struct.new(:user, :client, :joined_ms, :last_poll_ms, :ended_ms, :how, keyword_init: true)

    def wall_ms
      (Time.now.to_f * 1000).round
    end

    def union_ms(spans)
      total = 0
      current = nil
      spans.sort.each do |s, e|
        if current && s <= current[1]
          current[1] = [current[1], e].max
        else
          total += current[1] - current[0] if current
          current = [s, e]
        end
      end
      total += current[1] - current[0] if current
      total
    end

    # Connected pieces of the spans: each is a timer session, rounded once.
    def pieces(spans)
      spans.sort.each_with_object([]) do |(s, e), out|
        if out.any? && s <= out.last[1]
          out.last[1] = [out.last[1], e].max
        else
          out << [s, e]
        end
      end
    end

    it "ends with Redis and SQL exactly as the ground truth says" do
      seed = ENV.fetch("FAYE_ONLINE_CHURN_SEED", Random.new_seed % 100_000).to_i
      servers = [server] + Array.new(2) do
        FayeOnlineSpec::ServerProcess.new(configuration.server_env(namespace: namespace, timeout: 2, gc: 1)).start
      end
      rooms = Array.new(5) { new_room }
      lessons = Array.new(3) { new_lesson }
      master = Random.new(seed)
      users = Array.new(users_count) do
        new_user.merge("room" => rooms[master.rand(rooms.size)], "lesson" => lessons[master.rand(lessons.size)])
      end
      auth = ->(user) { auth_for(user.slice("uid", "uname"), room: user["room"], lesson: user["lesson"]) }
      tabs = []
      tabs_lock = Mutex.new
      messages = 0

      workers = users.each_slice((users_count / threads.to_f).ceil).each_with_index.map do |slice, index|
        Thread.new(Random.new(seed + index + 1)) do |random|
          mine = Hash.new { |h, k| h[k] = [] } # user → live tabs
          sent = 0
          rounds.times do
            slice.each do |user|
              live = mine[user]
              roll = random.rand
              if roll < 0.25 && live.size < 2
                client = FayeOnlineSpec::BayeuxClient.new(servers[random.rand(servers.size)].url).handshake!
                at = wall_ms
                reply = client.connect(auth: auth.call(user))
                raise "join refused: #{reply}" unless reply["successful"]

                tab = tab_class.new(user: user, client: client, joined_ms: at, last_poll_ms: at)
                live << tab
                tabs_lock.synchronize { tabs << tab }
                sent += 2
              elsif roll < 0.37 && live.any?
                tab = live.delete_at(random.rand(live.size))
                tab.ended_ms = wall_ms
                tab.how = :left
                tab.client.disconnect
                sent += 1
              elsif roll < 0.42 && live.any?
                tab = live.delete_at(random.rand(live.size))
                tab.ended_ms = tab.last_poll_ms
                tab.how = :vanished
              end
            end
            # Every live tab polls once a round, as a browser's long poll would.
            mine.each_value do |live|
              live.each do |tab|
                at = wall_ms
                reply = tab.client.connect(auth: auth.call(tab.user))
                raise "poll refused: #{reply}" unless reply["successful"]

                tab.last_poll_ms = at
                sent += 1
              end
            end
          end
          sent
        end
      end
      messages = workers.sum(&:value)

      live = tabs.reject(&:ended_ms)
      vanished = tabs.count { |t| t.how == :vanished }
      # The live tabs keep polling while the checks wait for the vanished
      # ones to be noticed.
      polling = true
      keep_alive = Thread.new do
        while polling
          live.each { |tab| tab.client.connect(auth: auth.call(tab.user)) }
          messages += live.size
          Thread.pass
        end
      end
      expect(tabs.size).to be > users_count
      expect(vanished).to be > 10

      # Vanished tabs are gone once Faye's session timeout (2 × 2 s) passed;
      # then Redis and SQL list exactly the users with a live tab.
      rooms.each do |room|
        expected = live.select { |t| t.user["room"] == room }.map { |t| t.user["uid"] }.uniq.sort
        eventually(timeout: 20) { expect(redis_space.room_users(room).keys.map(&:to_i).sort).to eq expected }
        eventually(timeout: 10) { expect(online_uids(room)).to eq expected }
        expect(FayeOnline.online_users(room).map { |u| u["uid"] }).to eq expected
      end
      tabs.each do |tab|
        expected = tab.ended_ms ? [[1, tab.client.client_id], [0, tab.client.client_id]] : [[1, tab.client.client_id]]
        eventually { expect(sql.login_logs_of_client(tab.client.client_id).map { |r| [r["status"], r["clientId"]] }).to eq expected }
      end

      polling = false
      keep_alive.join

      # Everyone leaves; each user's time is the union of their tabs'
      # intervals (each session rounded to the second once).
      live.each do |tab|
        tab.ended_ms = wall_ms
        tab.client.disconnect
        messages += 1
      end
      rooms.each { |room| eventually(timeout: 10) { expect(online_uids(room)).to eq [] } }
      expect(redis_space.keys).to eq []
      users.group_by { |u| u["uid"] }.each_key do |uid|
        spans = tabs.select { |t| t.user["uid"] == uid }.map { |t| [t.joined_ms, t.ended_ms] }
        next if spans.empty?

        lesson = users.find { |u| u["uid"] == uid }["lesson"]
        truth = union_ms(spans) / 1000.0
        slack = 0.5 * pieces(spans).size + 0.3
        eventually { expect(online_times(uid)).not_to have_key(started_key(lesson)) }
        expect(online_times(uid)[spended_key(lesson)]).to be_within(slack).of(truth),
          "user #{uid}: credited #{online_times(uid).inspect}, tabs #{spans.inspect}"
      end
      logs = tabs.sum { |t| sql.login_logs_of_client(t.client.client_id).size }
      expect(logs).to eq tabs.size * 2
      puts "    churn (seed #{seed}): #{servers.size} processes, #{users_count} users, #{tabs.size} tabs " \
           "(#{vanished} vanished), #{messages} messages; rows lost: 0"
    ensure
      servers&.drop(1)&.each(&:stop)
    end
  end
end
