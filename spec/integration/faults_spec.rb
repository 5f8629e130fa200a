# frozen_string_literal: true

# Faults with nothing lost. Each example runs its own redis-server,
# mariadbd or postgres on a free port and kills it by its pid (never the
# machine's shared servers), while real Faye clients stay online through it.
RSpec.describe "Faults", :integration do
  on_each_deployment(only: :redis, server: { timeout: 2, gc: 1 }) do |configuration|
    def start_server(env)
      FayeOnlineSpec::ServerProcess.new(env).start.tap { |s| @servers << s }
    end

    def user_client(server, user, room:, lesson:)
      client = FayeOnlineSpec::FayeClient.new(server.url, auth: auth_for(user, room: room, lesson: lesson))
      @faye_clients << client
      client.connect!
      client
    end

    def watcher(server, room)
      FayeOnlineSpec::FayeClient.new(server.url).tap { |c| @faye_clients << c }.subscribe(user_list_channel(room))
    end

    def latest_uids(client, room)
      lists_seen(client, room).last&.fetch("user_list")
    end

    def wall_ms
      (Time.now.to_f * 1000).round
    end

    before do
      @servers = []
    end

    after do |example|
      @servers.each { |s| s.print_log if example.exception }
      @servers.each(&:stop)
    end

    it "serves through a Redis restart, and presence is right again within seconds of its return" do
      redis = FayeOnlineSpec::PrivateRedis.new.start
      env = configuration.server_env(namespace: namespace, timeout: 2, gc: 1).merge("REDIS_URL" => redis.url)
      one = start_server(env)
      two = start_server(env)
      space = FayeOnlineSpec::RedisSpace.new(redis.url, namespace)
      room = new_room
      lesson = new_lesson
      ann, bob, cat, dan = %w[ann bob cat dan].map { |name| new_user(name) }
      uids = ->(*users) { users.map { |u| u["uid"] }.sort }

      watchers = [watcher(one, room), watcher(two, room)]
      joined_ms = {}
      tabs = {}
      joined_ms[ann] = wall_ms
      tabs[:ann_one] = user_client(one, ann, room: room, lesson: lesson)
      tabs[:ann_two] = user_client(two, ann, room: room, lesson: lesson)
      joined_ms[bob] = wall_ms
      tabs[:bob] = user_client(one, bob, room: room, lesson: lesson)
      tabs[:cat] = user_client(two, cat, room: room, lesson: lesson)
      eventually { expect(space.room_users(room).keys.map(&:to_i).sort).to eq uids.call(ann, bob, cat) }
      watchers.each { |w| eventually { expect(latest_uids(w, room)).to eq uids.call(ann, bob, cat) } }

      redis.stop(signal: "KILL")
      # Faye's engine lives in Redis: while it is away, every request is
      # answered at once with a 503 and advice to retry in a second (no
      # connection is held), and the processes live on.
      down_since = now
      handshake = bayeux_client_for(one).post("channel" => "/meta/handshake", "version" => "1.0",
                                              "supportedConnectionTypes" => ["long-polling"]).first
      expect(handshake).to include("successful" => false, "error" => a_string_starting_with("503:"),
                                   "advice" => { "reconnect" => "retry", "interval" => 1000 })
      expect(now - down_since).to be < 2
      tabs.delete(:cat).close
      consistently(duration: 2) { expect([one, two]).to all(be_alive) }
      outage = now - down_since

      before_ids = tabs.transform_values(&:client_id)
      redis.start
      back_at = now
      # Redis came back empty: the clients start over (a new handshake each,
      # as with any Faye engine on Redis) and a new user joins.
      tabs[:dan] = user_client(one, dan, room: room, lesson: lesson)
      expected = uids.call(ann, bob, dan)
      eventually(timeout: 15) { expect(space.room_users(room).keys.map(&:to_i).sort).to eq expected }
      watchers.each { |w| eventually(timeout: 15) { expect(latest_uids(w, room)).to eq expected } }
      recovered_in = now - back_at
      eventually { expect(sql.log_entries(cat["uid"]).map(&:first)).to eq [1, 0] }
      eventually { expect(sql.log_entries(dan["uid"]).map(&:first)).to eq [1] }
      before_ids.each do |name, id|
        eventually(timeout: 10) { expect(tabs[name].client_id).to be_a(String).and(satisfy { |now_id| now_id != id }) }
        tabs[name].connect!
      end

      left_ms = {}
      tabs.each_value(&:disconnect)
      left_ms[ann] = left_ms[bob] = wall_ms
      # Each clientId, old or new, has its login and its logout.
      [ann, bob, dan].each do |user|
        eventually(timeout: 15) do
          entries = sql.log_entries(user["uid"]).map(&:first)
          expect(entries.count(1)).to eq(entries.count(0)).and be >= 1
        end
      end
      eventually { expect(online_uids(room)).to eq [] }
      expect(space.room_users(room)).to be_empty
      [ann, bob].each do |user|
        expected_secs = (left_ms[user] - joined_ms[user]) / 1000.0
        eventually { expect(online_times(user["uid"])).not_to have_key(started_key(lesson)) }
        expect(online_times(user["uid"])[spended_key(lesson)]).to be_within(1.5).of(expected_secs),
          "#{user['uname']}: credited #{online_times(user['uid']).inspect}, online #{expected_secs.round(2)}s"
      end
      puts "    Redis away #{outage.round(1)} s; presence right again #{recovered_in.round(2)} s after its return"
    ensure
      space&.redis&.close
      redis&.stop
    end

    sql_server = configuration.postgresql? ? "PostgreSQL" : "MariaDB"
    it "serves while #{sql_server} is away for 30 s under load, and writes everything when it returns" do
      server_class = configuration.postgresql? ? FayeOnlineSpec::PrivatePostgres : FayeOnlineSpec::PrivateMariadb
      database_server = server_class.new.start
      database = "faye_online_faults_#{Process.pid}"
      database_server.create_database(database)
      FayeOnline::Migrator.migrate!(database_server.url(database))
      records = FayeOnlineSpec::SqlDatabase.open(database_server.url(database))
      env = configuration.server_env(namespace: "#{namespace}_sql", timeout: 2, gc: 1)
                         .merge("DATABASE_URL" => database_server.url(database))
      host = start_server(env)
      room = new_room
      lesson = new_lesson
      stayers = Array.new(5) { new_user }
      stayers.each { |user| user_client(host, user, room: room, lesson: lesson) }
      watch = watcher(host, room)
      eventually { expect(Array(records.online_uids(room)).size).to eq 5 }

      records.close
      database_server.stop(signal: "KILL")
      killed_at = now
      cycles = []
      # Load for 30 s: users come and go; each change must still reach the
      # watcher at once, though nothing can be written meanwhile.
      while now - killed_at < 30
        user = new_user
        tab = bayeux_client_for(host).handshake!
        joined = wall_ms
        expect(tab.connect(auth: auth_for(user, room: room, lesson: lesson))).to include("successful" => true)
        eventually { expect(latest_uids(watch, room)).to include(user["uid"]) }
        expect(tab.disconnect).to include("successful" => true)
        cycles << [user, tab.client_id, (wall_ms - joined) / 1000.0]
        eventually { expect(latest_uids(watch, room)).not_to include(user["uid"]) }
      end
      expect(host).to be_alive

      database_server.start
      back_at = now
      records = FayeOnlineSpec::SqlDatabase.open(database_server.url(database))
      eventually(timeout: 30) do
        expect(records.count("faye_user_login_logs")).to eq 5 + cycles.size * 2
      end
      written_in = now - back_at
      cycles.each do |user, client_id, seconds|
        expect(records.log_entries(user["uid"])).to eq [[1, client_id], [0, client_id]]
        expect(records.online_times(user["uid"])[spended_key(lesson)]).to be_within(1).of(seconds)
      end
      expect(records.online_uids(room)).to eq stayers.map { |u| u["uid"] }.sort
      expect(File.read(host.log_path)).not_to match(/dropped/)
      puts "    #{sql_server} away 30 s: #{cycles.size} users came and went meanwhile " \
           "(#{cycles.size * 2} log rows); all written #{written_in.round(2)} s after its return, rows lost: 0"
    ensure
      records&.close
      database_server&.destroy
      # Its server used a namespace of its own: leave nothing in Redis.
      @servers.each(&:stop)
      configuration.redis_space("#{namespace}_sql")&.tap(&:clear!)&.close
    end

    def bayeux_client_for(server)
      FayeOnlineSpec::BayeuxClient.new(server.url)
    end
  end
end
