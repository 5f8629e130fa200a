# frozen_string_literal: true

# Benchmarks 1 and 3, against real servers (thin) on loopback, driven by
# bench/load_generator.rb in a process of its own.
#
# 1. Cost to Faye: the same load against (a) Faye alone and (b) Faye with
#    faye-online on Redis + MariaDB, in alternating rounds, over long-polling
#    and WebSocket: cycles per second, and message latency (p99 and max: a
#    stalled reactor shows there).
# 3. Presence latency: joins and leaves at a fixed rate against (b); the
#    time from a join's /meta/connect to the watcher's list naming it.
require_relative "support"
require "open3"
require "socket"
require "net/http"

module Bench
  module CostToFaye
    module_function

    def free_port
      server = TCPServer.new("127.0.0.1", 0)
      server.addr[1]
    ensure
      server&.close
    end

    def start_server(rackup, env = {})
      port = free_port
      log = File.join(Bench::ROOT, "tmp", "bench", "server-#{port}.log")
      FileUtils.mkdir_p(File.dirname(log))
      pid = Process.spawn({ "RUBYOPT" => "-I#{File.join(Bench::ROOT, 'lib')}" }.merge(env),
                          Gem.ruby, "-S", "thin", "start", "-R", rackup, "-p", port.to_s, "-e", "production",
                          "-a", "127.0.0.1", chdir: Bench::ROOT, out: log, err: %i[child out], pgroup: true)
      deadline = Bench.now + 30
      until answering?(port)
        raise "#{rackup} did not start (see #{log})" if Bench.now > deadline

        sleep 0.1
      end
      [pid, "http://127.0.0.1:#{port}/faye"]
    end

    def answering?(port)
      Net::HTTP.get_response(URI("http://127.0.0.1:#{port}/faye?message=%5B%5D&jsonp=x"))
      true
    rescue SystemCallError, EOFError
      false
    end

    def stop_server(pid)
      Process.kill("TERM", pid)
      Process.wait(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end

    def generator(*args)
      out, status = Open3.capture2e(Gem.ruby, "-I#{File.join(Bench::ROOT, 'lib')}",
                                    File.join(__dir__, "load_generator.rb"), *args.map(&:to_s))
      raise "load generator failed: #{out}" unless status.success?

      JSON.parse(out.lines.last, symbolize_names: true)
    end

    # Waits (up to a minute) until the server has written what the rounds
    # before queued, so that the presence figures measure presence rather
    # than the tail of the writer's backlog.
    def settle(database_url)
      client = Mysql2::Client.new(**Bench::MYSQL, database: database_url.split("/").last)
      last = nil
      deadline = Bench.now + 60
      loop do
        count = client.query("SELECT COUNT(*) AS n FROM faye_user_login_logs").first["n"]
        break if count == last || Bench.now > deadline

        last = count
        sleep 1
      end
    ensure
      client&.close
    end

    def run(clients:, seconds:, rounds:, rate:, presence_seconds:)
      database = Bench.fresh_database("faye_online_bench_load")
      redis = Redis.new(url: Bench::REDIS_URL)
      Bench.clear_namespace(redis, "bench_load")
      plain_pid, plain_url = start_server("bench/plain_faye.ru")
      online_pid, online_url = start_server("bench/faye_online.ru", "BENCH_REDIS_URL" => Bench::REDIS_URL,
                                                                  "BENCH_DATABASE_URL" => database)
      redis_pid = Bench.redis_pid(redis)
      pids = { plain: plain_pid, online: online_pid }
      # CPU seconds so far of the Faye server, Redis and MariaDB (from /proc).
      cpu_now = lambda do |server|
        { faye: Bench.cpu_seconds(pids[server]).to_f, redis: redis_pid ? Bench.cpu_seconds(redis_pid).to_f : 0.0,
          db: Bench.mariadb_cpu_seconds.to_f }
      end
      transports = %w[steady cycles].product(%w[long-polling websocket]).map do |workload, transport|
        rate_key = workload == "steady" ? :messages_per_s : :cycles_per_s
        runs = { plain: [], online: [] }
        # The same clients, sending the same messages (auth included; Faye
        # alone ignores it), so that only the server differs. A warm-up
        # round each, not counted.
        generator(workload, plain_url, transport, clients, 1, 1)
        generator(workload, online_url, transport, clients, 1, 1)
        cpu = { plain: Hash.new(0.0), online: Hash.new(0.0) }
        rounds.times do
          %i[plain online].each do |server|
            before = cpu_now.call(server)
            runs[server] << generator(workload, server == :plain ? plain_url : online_url, transport, clients, seconds, 1)
            cpu_now.call(server).each { |k, v| cpu[server][k] += v - before[k] }
          end
        end
        summary = runs.transform_values do |list|
          { per_s: Bench.median(list.map { |r| r[rate_key] }),
            p99_ms: Bench.median(list.map { |r| r[:latency_p99_ms] }),
            max_ms: list.map { |r| r[:latency_max_ms] }.max, errors: list.sum { |r| r[:errors] } }
        end
        # CPU seconds per 1,000 messages (steady) or cycles, by process.
        %i[plain online].each do |server|
          units = runs[server].sum { |r| r[rate_key] * seconds }
          summary[server][:cpu_per_1000] = cpu[server].transform_values { |v| v * 1000 / units } if units.positive?
        end
        # MariaDB's CPU per cycle: what the SQL writes cost the machine.
        if workload == "cycles"
          cycles = runs[:online].sum { |r| r[rate_key] * seconds }
          summary[:online][:db_ms_per_cycle] = cpu[:online][:db] * 1000 / cycles if cycles.positive?
        end
        { workload: workload, transport: transport, ratio: summary[:online][:per_s] / summary[:plain][:per_s], **summary }
      end
      settle(database)
      presence = generator("presence", online_url, rate, presence_seconds)
      { clients: clients, seconds: seconds, rounds: rounds, transports: transports, presence: presence }
    ensure
      stop_server(plain_pid) if plain_pid
      stop_server(online_pid) if online_pid
      Bench.clear_namespace(redis, "bench_load") if redis
      redis&.close
    end

    def report(r, out = $stdout)
      out.puts "## 1. Cost to Faye (#{r[:clients]} clients, #{r[:rounds]} alternating rounds of #{r[:seconds]} s each)"
      out.puts
      out.puts "| workload | transport | Faye alone, per s | with faye-online, per s | ratio (target ≥ 0.95) | " \
               "p99 / max latency alone, ms | p99 / max latency with faye-online, ms |"
      out.puts "|---|---|---|---|---|---|---|"
      r[:transports].each do |t|
        out.puts format("| %s | %s | %.0f | %.0f | %.2f (%s) | %.1f / %.1f | %.1f / %.1f |", t[:workload], t[:transport],
                        t[:plain][:per_s], t[:online][:per_s], t[:ratio], t[:ratio] >= 0.95 ? "met" : "missed",
                        t[:plain][:p99_ms], t[:plain][:max_ms], t[:online][:p99_ms], t[:online][:max_ms])
      end
      out.puts
      out.puts "CPU seconds per 1,000 messages (steady) or cycles, by process (from /proc; the load generator's own " \
               "not counted):"
      out.puts
      out.puts "| workload | transport | Faye alone: thin / Redis / MariaDB | with faye-online: thin / Redis / MariaDB |"
      out.puts "|---|---|---|---|"
      r[:transports].each do |t|
        a = t[:plain][:cpu_per_1000] || {}
        b = t[:online][:cpu_per_1000] || {}
        out.puts format("| %s | %s | %.3f / %.3f / %.3f | %.3f / %.3f / %.3f |", t[:workload], t[:transport],
                        a[:faye].to_f, a[:redis].to_f, a[:db].to_f, b[:faye].to_f, b[:redis].to_f, b[:db].to_f)
      end
      db = r[:transports].filter_map { |t| t[:online][:db_ms_per_cycle] }
      if db.any?
        out.puts
        out.puts format("MariaDB's CPU per join/leave cycle with faye-online: %s ms (long-polling, websocket).",
                        db.map { |v| format("%.2f", v) }.join(", "))
      end
      out.puts
      out.puts "steady: the clients (users, with faye-online) are in; each publishes and receives its own messages " \
               "(messages per second). cycles: each client over and over handshakes, connects, subscribes, publishes, " \
               "receives and disconnects (cycles per second); with faye-online every cycle is a user joining and " \
               "leaving a room, two presence changes written to Redis and MariaDB."
      out.puts
      p = r[:presence]
      out.puts "## 3. Presence latency"
      out.puts
      out.puts format("%d joins and as many leaves at %.0f changes per second (asked: %.0f): from a join's " \
                      "/meta/connect to the watcher's user_list naming it, p50 %.1f ms, p99 %.1f ms, max %.1f ms " \
                      "(target p99 < 50 ms: %s).", p[:joins], p[:changes_per_s], p[:target_rate], p[:latency_p50_ms],
                      p[:latency_p99_ms], p[:latency_max_ms], p[:latency_p99_ms] < 50 ? "met" : "missed")
      out.puts
    end
  end
end

if $PROGRAM_NAME == __FILE__
  result = Bench::CostToFaye.run(clients: 20, seconds: 5, rounds: 2, rate: 1000, presence_seconds: 5)
  Bench::CostToFaye.report(result)
end
