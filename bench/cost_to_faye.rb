# frozen_string_literal: true

# Benchmarks 1 and 3, against real servers (thin) on loopback, driven by
# bench/load_generator.rb in a process of its own.
#
# 1. Cost to Faye: the same load against Faye alone and against Faye with
#    faye-online (the embedded default with faye-online's memory engine and
#    with Faye's, and Redis + MariaDB), in alternating rounds, over
#    long-polling and WebSocket: messages or cycles per second, message
#    latency (p99 and max: a stalled reactor shows there), and each
#    process's CPU.
# 3. Presence latency: joins and leaves at a fixed rate against the Redis +
#    MariaDB server; the time from a join's /meta/connect to the watcher's
#    list naming it.
require_relative "support"
require "open3"
require "socket"
require "net/http"
require "tmpdir"
require "fileutils"

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

    # The servers side by side: Faye alone, then faye-online on the
    # embedded default (with its own memory engine, and with Faye's), and
    # on Redis + MariaDB (a memory engine: presence alone).
    SERVERS = {
      plain: { name: "Faye alone", rackup: "bench/plain_faye.ru" },
      embedded: { name: "embedded default (memory + SQLite)", setup: "embedded", engine: "memory" },
      embedded_faye_engine: { name: "embedded default, Faye's memory engine", setup: "embedded",
                              engine: "faye_memory" },
      redis_mariadb: { name: "Redis + MariaDB", setup: "redis_mariadb", engine: "memory" }
    }.freeze

    def run(clients:, seconds:, rounds:, rate:, presence_seconds:, servers: SERVERS.keys)
      database = Bench.fresh_database("faye_online_bench_load")
      redis = Redis.new(url: Bench::REDIS_URL)
      Bench.clear_namespace(redis, "bench_load")
      scratch = Dir.mktmpdir("faye-online-bench")
      started = servers.to_h do |key|
        spec = SERVERS.fetch(key)
        env = { "BENCH_SETUP" => spec[:setup].to_s, "BENCH_ENGINE" => spec[:engine].to_s,
                "BENCH_REDIS_URL" => Bench::REDIS_URL, "BENCH_DATABASE_URL" => database,
                "BENCH_SQLITE" => File.join(scratch, "#{key}.sqlite3") }
        [key, start_server(spec[:rackup] || "bench/faye_online.ru", env)]
      end
      redis_pid = Bench.redis_pid(redis)
      # CPU seconds so far of the Faye server, Redis and MariaDB (from /proc).
      cpu_now = lambda do |server|
        { faye: Bench.cpu_seconds(started[server][0]).to_f, redis: redis_pid ? Bench.cpu_seconds(redis_pid).to_f : 0.0,
          db: Bench.mariadb_cpu_seconds.to_f }
      end
      transports = %w[steady cycles].product(%w[long-polling websocket]).map do |workload, transport|
        rate_key = workload == "steady" ? :messages_per_s : :cycles_per_s
        runs = servers.to_h { |server| [server, []] }
        cpu = servers.to_h { |server| [server, Hash.new(0.0)] }
        # The same clients, sending the same messages (auth included; Faye
        # alone ignores it), so that only the server differs. A warm-up
        # round each, not counted.
        servers.each { |server| generator(workload, started[server][1], transport, clients, 1, 1) }
        rounds.times do
          servers.each do |server|
            before = cpu_now.call(server)
            runs[server] << generator(workload, started[server][1], transport, clients, seconds, 1)
            cpu_now.call(server).each { |k, v| cpu[server][k] += v - before[k] }
          end
        end
        summary = runs.transform_values do |list|
          { per_s: Bench.median(list.map { |r| r[rate_key] }),
            p99_ms: Bench.median(list.map { |r| r[:latency_p99_ms] }),
            max_ms: list.map { |r| r[:latency_max_ms] }.max, errors: list.sum { |r| r[:errors] } }
        end
        # CPU seconds per 1,000 messages (steady) or cycles, by process.
        servers.each do |server|
          units = runs[server].sum { |r| r[rate_key] * seconds }
          summary[server][:cpu_per_1000] = cpu[server].transform_values { |v| v * 1000 / units } if units.positive?
          summary[server][:ratio] = summary[server][:per_s] / summary[:plain][:per_s]
        end
        { workload: workload, transport: transport, servers: summary }
      end
      presence = if started[:redis_mariadb]
                   settle(database)
                   generator("presence", started[:redis_mariadb][1], rate, presence_seconds)
                 end
      { clients: clients, seconds: seconds, rounds: rounds, transports: transports, presence: presence }
    ensure
      started&.each_value { |(pid, _)| stop_server(pid) }
      FileUtils.rm_rf(scratch) if scratch
      Bench.clear_namespace(redis, "bench_load") if redis
      redis&.close
    end

    # What each setup must reach, as a share of Faye alone.
    def target(server, workload)
      case server
      when :embedded then 1.0
      when :redis_mariadb then workload == "steady" ? 1.0 : 0.9
      end
    end

    def report(r, out = $stdout)
      servers = r[:transports].first[:servers].keys - [:plain]
      out.puts "## 1. Cost to Faye (#{r[:clients]} clients, #{r[:rounds]} alternating rounds of #{r[:seconds]} s each)"
      out.puts
      out.puts "Messages (steady) or cycles (cycles) per second, and the ratio to Faye alone in the same rounds:"
      out.puts
      out.puts "| workload | transport | Faye alone | #{servers.map { |s| SERVERS[s][:name] }.join(' | ')} |"
      out.puts "|---|---|---|#{'---|' * servers.size}"
      r[:transports].each do |t|
        cells = servers.map do |server|
          figures = t[:servers][server]
          goal = target(server, t[:workload])
          verdict = goal ? format(" (≥ %.2f: %s)", goal, figures[:ratio] >= goal ? "met" : "missed") : ""
          format("%.0f, %.2f%s", figures[:per_s], figures[:ratio], verdict)
        end
        out.puts format("| %s | %s | %.0f | %s |", t[:workload], t[:transport], t[:servers][:plain][:per_s],
                        cells.join(" | "))
      end
      out.puts
      out.puts "p99 / max latency from publish to delivery, ms:"
      out.puts
      out.puts "| workload | transport | Faye alone | #{servers.map { |s| SERVERS[s][:name] }.join(' | ')} |"
      out.puts "|---|---|---|#{'---|' * servers.size}"
      r[:transports].each do |t|
        cells = ([:plain] + servers).map { |s| format("%.1f / %.1f", t[:servers][s][:p99_ms], t[:servers][s][:max_ms]) }
        out.puts "| #{t[:workload]} | #{t[:transport]} | #{cells.join(' | ')} |"
      end
      out.puts
      out.puts "CPU seconds per 1,000 messages (steady) or cycles, by process: thin / Redis / MariaDB (from /proc; " \
               "the load generator's own not counted; Redis and MariaDB serve only the Redis + MariaDB server):"
      out.puts
      out.puts "| workload | transport | Faye alone | #{servers.map { |s| SERVERS[s][:name] }.join(' | ')} |"
      out.puts "|---|---|---|#{'---|' * servers.size}"
      r[:transports].each do |t|
        cells = ([:plain] + servers).map do |s|
          c = t[:servers][s][:cpu_per_1000] || {}
          format("%.3f / %.3f / %.3f", c[:faye].to_f, c[:redis].to_f, c[:db].to_f)
        end
        out.puts "| #{t[:workload]} | #{t[:transport]} | #{cells.join(' | ')} |"
      end
      out.puts
      out.puts "steady: the clients (users, with faye-online) are in; each publishes and receives its own messages " \
               "(messages per second). cycles: each client over and over handshakes, connects, subscribes, publishes, " \
               "receives and disconnects (cycles per second); with faye-online every cycle is a user joining and " \
               "leaving a room, two presence changes written to the hot store and SQL."
      out.puts
      p = r[:presence]
      return unless p

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
  # ruby -Ilib bench/cost_to_faye.rb [SECONDS ROUNDS [SERVER ...]]: section 1 alone (servers: plain and any of
  # embedded, embedded_faye_engine, redis_mariadb; all by default).
  seconds = Integer(ARGV[0] || 5)
  rounds = Integer(ARGV[1] || 2)
  servers = ARGV[2..].to_a.map(&:to_sym)
  servers = Bench::CostToFaye::SERVERS.keys if servers.empty?
  servers = [:plain] + (servers - [:plain])
  result = Bench::CostToFaye.run(clients: 20, seconds: seconds, rounds: rounds, rate: 1000, presence_seconds: 5,
                                 servers: servers)
  Bench::CostToFaye.report(result)
end
