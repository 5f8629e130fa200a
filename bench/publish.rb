# frozen_string_literal: true

# 6. Publishing from the app: FayeOnline.publish over HTTP to a Faye server
#    with a server-only channel, as a Rails request or job would, one at a
#    time and from 4 threads; publications per second, and the latency from
#    the call to the delivery to a subscriber (a Faye client in this
#    process). Then the same straight into Faye's engine on Redis, to a
#    server on it.
require_relative "support"
require_relative "cost_to_faye"
require "faye"
require "faye-online"
require "tmpdir"

module Bench
  module Publish
    SECRET = "bench-publish-secret-0123456789"
    CHANNEL = "/broadcast/bench"

    module_function

    def run(count:)
      dir = Dir.mktmpdir("faye-online-bench-publish-")
      pid, url = Bench::CostToFaye.start_server("bench/publish.ru", "BENCH_SECRET" => SECRET,
                                                                    "BENCH_DATABASE_URL" => "sqlite3:#{dir}/bench.sqlite3")
      FayeOnline.configure(store: :memory, database_url: "sqlite3:#{dir}/query.sqlite3", faye_url: url, secret: SECRET)
      latencies = Queue.new
      subscribed = Queue.new
      reactor = Thread.new do
        EM.run do
          client = Faye::Client.new(url)
          subscription = client.subscribe(CHANNEL) do |data|
            latencies << (Bench.now - data["sent"]) * 1000
          end
          subscription.callback { subscribed << true }
        end
      end
      subscribed.pop
      FayeOnline.publish(CHANNEL, { "sent" => Bench.now }) # warm-up
      latencies.pop
      one = measure(count, threads: 1, latencies: latencies)
      four = measure(count, threads: 4, latencies: latencies)
      redis = through_redis(count, dir)
      { count: count, one_thread: one, four_threads: four, redis_one: redis[0], redis_four: redis[1] }
    ensure
      EM.stop if EM.reactor_running?
      reactor&.join(5)
      Bench::CostToFaye.stop_server(pid) if pid
      FileUtils.rm_rf(dir) if dir
    end

    # The same publications straight into Faye's engine on Redis, to a
    # faye-online server on it (bench/engine.ru).
    def through_redis(count, dir)
      namespace = "bench_publish"
      redis = Redis.new(url: Bench::REDIS_URL)
      Bench.clear_namespace(redis, namespace)
      pid, url = Bench::CostToFaye.start_server("bench/engine.ru", "BENCH_ENGINE" => "redis",
                                                                   "BENCH_REDIS_URL" => Bench::REDIS_URL,
                                                                   "BENCH_NAMESPACE" => namespace,
                                                                   "BENCH_DATABASE_URL" => "sqlite3:#{dir}/redis.sqlite3")
      FayeOnline.configure(redis_url: Bench::REDIS_URL, namespace: namespace, engine: :redis,
                           database_url: "sqlite3:#{dir}/query.sqlite3")
      latencies = Queue.new
      subscribed = Queue.new
      client = nil
      EM.schedule do
        client = Faye::Client.new(url)
        client.subscribe(CHANNEL) { |data| latencies << (Bench.now - data["sent"]) * 1000 }
              .callback { subscribed << true }
      end
      subscribed.pop
      FayeOnline.publish(CHANNEL, { "sent" => Bench.now }, via: :redis) # warm-up
      latencies.pop
      [measure(count, threads: 1, latencies: latencies, via: :redis),
       measure(count, threads: 4, latencies: latencies, via: :redis)]
    ensure
      # The server stops once its clients are gone.
      EM.schedule { client&.disconnect }
      Bench::CostToFaye.stop_server(pid) if pid
      Bench.clear_namespace(redis, namespace) if redis
      redis&.close
    end

    def measure(count, threads:, latencies:, via: :http)
      seconds = Bench.time do
        Array.new(threads) do
          Thread.new { (count / threads).times { FayeOnline.publish(CHANNEL, { "sent" => Bench.now }, via: via) } }
        end.each(&:join)
      end
      sent = (count / threads) * threads
      got = Array.new(sent) { latencies.pop }
      { per_s: sent / seconds, p50_ms: Bench.median(got), p99_ms: Bench.percentile(got, 99) }
    end

    def report(r, out = $stdout)
      out.puts "## 6. Publishing from the app (#{r[:count]} publications)"
      out.puts
      out.puts "| path | callers | publications per s | latency to delivery p50 / p99, ms |"
      out.puts "|---|---|---|---|"
      [["HTTP to the Faye server", "1 thread", r[:one_thread]], ["HTTP to the Faye server", "4 threads", r[:four_threads]],
       ["straight into Redis", "1 thread", r[:redis_one]], ["straight into Redis", "4 threads", r[:redis_four]]]
        .each do |path, name, w|
        out.puts format("| %s | %s | %.0f | %.1f / %.1f |", path, name, w[:per_s], w[:p50_ms], w[:p99_ms])
      end
      out.puts
      out.puts format("Straight into Redis ÷ HTTP, one caller: %.2f", r[:redis_one][:per_s] / r[:one_thread][:per_s])
      out.puts
    end
  end
end

if $PROGRAM_NAME == __FILE__
  result = Bench::Publish.run(count: 1000)
  Bench::Publish.report(result)
end
