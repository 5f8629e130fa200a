# frozen_string_literal: true

# 7. Faye on Redis: messages per second and latency to delivery through
#    faye-online with Faye's memory engine (one process), with its engine on
#    Redis in one, two and three processes (subscribers spread over them,
#    the publisher on the first), and through a Node.js Faye server on
#    npm faye-redis with the same load and Redis; and the Redis commands
#    one publication costs the engine.
require_relative "support"
require_relative "cost_to_faye"
require "faye"
require "tmpdir"

module Bench
  module Engine
    CHANNEL = "/bench/room"
    ROUNDS = 3
    NODE_SERVER = File.join("spec", "fixtures", "node", "faye_redis_server.js")

    module_function

    def run(subscribers:, messages:)
      dir = Dir.mktmpdir("faye-online-bench-engine-")
      redis = Redis.new(url: Bench::REDIS_URL)
      results = {}
      # One process of each engine, in alternating rounds (the machine's
      # noise then falls on both alike); the round of the median ratio counts.
      rounds = { memory: [], redis1: [] }
      ROUNDS.times do |round|
        rounds[:memory] << with_servers(1, "memory", dir, nil, round) do |urls, pids|
          with_cpu(pids, redis, messages) { measure(urls, subscribers, messages) }
        end
        namespace = "bench_engine_1"
        Bench.clear_namespace(redis, namespace)
        rounds[:redis1] << with_servers(1, "redis", dir, namespace, round) do |urls, pids|
          before = commands(redis)
          with_cpu(pids, redis, messages) { measure(urls, subscribers, messages) }
            .merge(commands_per_publish: (commands(redis) - before).fdiv(messages))
        end
      end
      # The pair of the median ratio is shown.
      pairs = rounds[:memory].zip(rounds[:redis1]).sort_by { |m, e| e[:per_s] / m[:per_s] }
      results[:memory], results[:redis1] = pairs[pairs.size / 2]
      results[:rounds] = pairs
      [2, 3].each do |n|
        namespace = "bench_engine_#{n}"
        Bench.clear_namespace(redis, namespace)
        results[:"redis#{n}"] = with_servers(n, "redis", dir, namespace) do |urls, pids|
          before = commands(redis)
          with_cpu(pids, redis, messages) { measure(urls, subscribers, messages) }
            .merge(commands_per_publish: (commands(redis) - before).fdiv(messages))
        end
      end
      results[:node] = with_node(redis) do |urls, pids|
        with_cpu(pids, redis, messages) { measure(urls, subscribers, messages) }
      end
      results.merge(subscribers: subscribers, messages: messages)
    ensure
      redis&.close
      FileUtils.rm_rf(dir) if dir
    end

    # The block's result, with the CPU milliseconds per message that the
    # Faye processes (+pids+, all their threads) and Redis spent meanwhile.
    def with_cpu(pids, redis, messages)
      redis_pid = Bench.redis_pid(redis)
      cpu = -> { [pids.sum { |pid| Bench.cpu_seconds(pid).to_f }, redis_pid ? Bench.cpu_seconds(redis_pid).to_f : 0.0] }
      faye_before, redis_before = cpu.call
      result = yield
      faye_after, redis_after = cpu.call
      result.merge(faye_cpu_ms: (faye_after - faye_before) * 1000 / messages,
                   redis_cpu_ms: (redis_after - redis_before) * 1000 / messages)
    end

    # Every command Redis has run so far (INFO commandstats).
    def commands(redis)
      redis.info("commandstats").sum { |_, v| v.is_a?(Hash) ? v["calls"].to_i : v[/calls=(\d+)/, 1].to_i }
    end

    def with_servers(count, engine, dir, namespace = nil, round = 0)
      servers = Array.new(count) do |i|
        Bench::CostToFaye.start_server("bench/engine.ru",
                                       "BENCH_ENGINE" => engine, "BENCH_REDIS_URL" => Bench::REDIS_URL,
                                       "BENCH_NAMESPACE" => namespace.to_s,
                                       "BENCH_DATABASE_URL" => "sqlite3:#{dir}/#{engine}-#{count}-#{i}-#{round}.sqlite3")
      end
      yield servers.map(&:last), servers.map(&:first)
    ensure
      servers&.each { |(pid, _)| Bench::CostToFaye.stop_server(pid) }
    end

    def with_node(redis)
      namespace = "bench_engine_node"
      Bench.clear_namespace(redis, namespace)
      port = Bench::CostToFaye.free_port
      uri = URI(Bench::REDIS_URL)
      node = IO.popen({ "NODE_PATH" => File.join(Bench::ROOT, "node_modules") },
                      ["node", NODE_SERVER, port.to_s, Bench::REDIS_URL, namespace, "25"],
                      "r+", chdir: Bench::ROOT, err: File::NULL)
      raise "the Node.js server did not start" unless node.gets.to_s.include?("listening")

      yield ["http://127.0.0.1:#{port}/faye"], [node.pid]
    ensure
      node&.close
      Bench.clear_namespace(redis, namespace) if uri
    end

    # Subscribers (long-polling Faye clients in this process) spread over
    # +urls+; one publisher on the first sends +messages+ in waves of 20,
    # each wave when the last one was delivered to everyone.
    def measure(urls, subscribers, messages)
      latencies = []
      delivered = 0
      ready = Queue.new
      wave = 20
      reactor = Thread.new do
        EM.run do
          subscribers.times do |i|
            client = Faye::Client.new(urls[i % urls.size])
            client.disable("websocket")
            sub = client.subscribe(CHANNEL) do |data|
              latencies << (Bench.now - data["sent"]) * 1000
              delivered += 1
            end
            sub.callback { ready << true }
          end
          @publisher = Faye::Client.new(urls.first)
          @publisher.disable("websocket")
        end
      end
      subscribers.times { ready.pop }
      lost = 0
      started = Bench.now
      (messages / wave).times do |i|
        EM.schedule { wave.times { @publisher.publish(CHANNEL, { "sent" => Bench.now }) } }
        # A wave is done when everyone has it, or 5 s after: a delivery
        # missing by then is counted as lost.
        target = (i + 1) * wave * subscribers - lost
        deadline = Bench.now + 5
        sleep 0.0005 until delivered >= target || Bench.now > deadline
        lost += target - delivered if delivered < target
      end
      seconds = Bench.now - started
      sent = (messages / wave) * wave
      { per_s: sent / seconds, deliveries_per_s: (sent * subscribers - lost) / seconds, lost: lost,
        p50_ms: Bench.median(latencies), p99_ms: Bench.percentile(latencies, 99) }
    ensure
      EM.stop if EM.reactor_running?
      reactor&.join(5)
    end

    def report(r, out = $stdout)
      out.puts "## 7. Faye on Redis (#{r[:messages]} messages to #{r[:subscribers]} long-polling subscribers)"
      out.puts
      out.puts "| server | messages per s | deliveries per s | latency p50 / p99, ms | deliveries lost | " \
               "CPU ms per message: Faye processes / Redis | ÷ memory engine |"
      out.puts "|---|---|---|---|---|---|---|"
      base = r[:memory][:per_s]
      rows = [["faye-online, Faye's memory engine, 1 process", r[:memory]],
              ["faye-online, engine on Redis, 1 process", r[:redis1]],
              ["faye-online, engine on Redis, 2 processes", r[:redis2]],
              ["faye-online, engine on Redis, 3 processes", r[:redis3]],
              ["Node.js Faye on faye-redis, 1 process", r[:node]]]
      rows.each do |name, w|
        out.puts format("| %s | %.0f | %.0f | %.1f / %.1f | %d | %.2f / %.2f | %.2f |", name, w[:per_s],
                        w[:deliveries_per_s], w[:p50_ms], w[:p99_ms], w[:lost], w[:faye_cpu_ms], w[:redis_cpu_ms],
                        w[:per_s] / base)
      end
      out.puts
      ratio = r[:redis1][:per_s] / base
      out.puts format("- engine on Redis ÷ memory engine, one process: %.2f (target ≥ 0.8: %s); one process of " \
                      "each, in %d alternating rounds, the round of the median ratio shown (all: %s)",
                      ratio, ratio >= 0.8 ? "met" : "missed", ROUNDS,
                      r[:rounds].map { |m, e| format("%.0f / %.0f = %.2f", e[:per_s], m[:per_s], e[:per_s] / m[:per_s]) }
                                .join(", "))
      out.puts format("- faye-online (1 process) ÷ Node.js on faye-redis: %.2f. faye-redis takes a client's queue " \
                      "after its poll began and drops what it took if the poll was answered meanwhile: each wave " \
                      "with a lost delivery waited 5 s, which is most of its time", r[:redis1][:per_s] / r[:node][:per_s])
      out.puts format("- Redis commands per publication (engine on Redis, %d subscribers, with their polls " \
                      "and notifications): %.1f with 1 process, %.1f with 3", r[:subscribers],
                      r[:redis1][:commands_per_publish], r[:redis3][:commands_per_publish])
      out.puts
    end
  end
end

if $PROGRAM_NAME == __FILE__
  result = Bench::Engine.run(subscribers: 10, messages: 400)
  Bench::Engine.report(result)
end
