# frozen_string_literal: true

# 6. Publishing from the app: FayeOnline.publish over HTTP to a Faye server
#    with a server-only channel, as a Rails request or job would, one at a
#    time and from 4 threads; publications per second, and the latency from
#    the call to the delivery to a subscriber (a Faye client in this
#    process). The path through Faye's Redis engine comes with it.
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
      { count: count, one_thread: one, four_threads: four }
    ensure
      EM.stop if EM.reactor_running?
      reactor&.join(5)
      Bench::CostToFaye.stop_server(pid) if pid
      FileUtils.rm_rf(dir) if dir
    end

    def measure(count, threads:, latencies:)
      seconds = Bench.time do
        Array.new(threads) do
          Thread.new { (count / threads).times { FayeOnline.publish(CHANNEL, { "sent" => Bench.now }) } }
        end.each(&:join)
      end
      sent = (count / threads) * threads
      got = Array.new(sent) { latencies.pop }
      { per_s: sent / seconds, p50_ms: Bench.median(got), p99_ms: Bench.percentile(got, 99) }
    end

    def report(r, out = $stdout)
      out.puts "## 6. Publishing from the app (#{r[:count]} publications, HTTP to one Faye server)"
      out.puts
      out.puts "| callers | publications per s | latency to delivery p50 / p99, ms |"
      out.puts "|---|---|---|"
      [["1 thread", r[:one_thread]], ["4 threads", r[:four_threads]]].each do |name, w|
        out.puts format("| %s | %.0f | %.1f / %.1f |", name, w[:per_s], w[:p50_ms], w[:p99_ms])
      end
      out.puts
      out.puts "Through Faye's Redis engine: not measured yet (the app publishes over HTTP only)."
      out.puts
    end
  end
end

if $PROGRAM_NAME == __FILE__
  result = Bench::Publish.run(count: 1000)
  Bench::Publish.report(result)
end
