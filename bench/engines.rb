# frozen_string_literal: true

# Benchmark 10: the memory engines side by side, in this process, with
# nothing else on the path: faye-online's memory engine (NativeEngine, the
# default) against Faye's own (MemoryEngine, engine: :faye_memory), both
# behind Faye's engine proxy on the reactor, as Faye's server drives them.
# Each client has a socket (as over WebSocket), so that a delivery is a
# call, not a timer.
#
#   steady: every client pings (as a poll does) and publishes on its own
#           channel, which delivers to itself; once a round a message on a
#           wildcard channel every client subscribed to (fan-out);
#   cycles: clients are made, subscribe twice, publish once and are
#           destroyed.
#
# Rounds alternate the engines; the medians of the CPU time per operation
# are compared. `ruby -Ilib bench/engines.rb` runs it alone.
require_relative "support"
require "faye"
require "faye_online"
require "eventmachine"

module Bench
  module Engines
    ENGINES = { native: FayeOnline::NativeEngine, faye: FayeOnline::MemoryEngine }.freeze

    # Takes deliveries as a WebSocket would.
    class Sink
      attr_reader :count

      def initialize
        @count = 0
      end

      def send(_message)
        @count += 1
      end

      def close; end
    end

    module_function

    def cpu
      Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
    end

    def client(proxy)
      made = nil
      proxy.create_client { |id| made = id }
      made
    end

    # One round on one engine: CPU seconds for the steady part and for the
    # cycles, and the deliveries made (both engines must make the same).
    def round(type, clients:, polls:, cycles:)
      out = nil
      EM.run do
        proxy = Faye::Engine::Proxy.new(type: type, timeout: 25)
        sink = Sink.new
        ids = Array.new(clients) { client(proxy) }
        ids.each_with_index do |id, i|
          proxy.open_socket(id, sink)
          proxy.subscribe(id, "/own/#{i}") { nil }
          proxy.subscribe(id, "/room/*") { nil }
        end
        GC.start
        started = cpu
        polls.times do |n|
          ids.each_with_index do |id, i|
            proxy.ping(id)
            proxy.publish("channel" => "/own/#{i}", "data" => { "n" => n }, "clientId" => id, "id" => n.to_s)
          end
          proxy.publish("channel" => "/room/a", "data" => { "to" => "all" })
        end
        steady = cpu - started
        delivered = sink.count
        GC.start
        started = cpu
        cycles.times do |n|
          id = client(proxy)
          proxy.open_socket(id, sink)
          proxy.subscribe(id, "/cycle/#{n}") { nil }
          proxy.subscribe(id, "/cycles/**") { nil }
          proxy.publish("channel" => "/cycle/#{n}", "data" => { "n" => n }, "clientId" => id, "id" => "1")
          proxy.destroy_client(id) { nil }
        end
        cycled = cpu - started
        ids.each { |id| proxy.destroy_client(id) { nil } }
        proxy.disconnect
        out = { steady: steady, cycles: cycled, delivered: delivered, cycle_deliveries: sink.count - delivered }
        EM.stop
      end
      out
    end

    def run(clients: 200, polls: 50, cycles: 5_000, rounds: 5)
      runs = ENGINES.keys.to_h { |name| [name, []] }
      ENGINES.each_value { |type| round(type, clients: 20, polls: 5, cycles: 100) } # warm-up
      rounds.times do
        ENGINES.each { |name, type| runs[name] << round(type, clients: clients, polls: polls, cycles: cycles) }
      end
      steady_ops = clients * polls * 2 + polls
      summary = runs.transform_values do |list|
        { steady_us: Bench.median(list.map { |r| r[:steady] }) * 1e6 / steady_ops,
          cycle_us: Bench.median(list.map { |r| r[:cycles] }) * 1e6 / cycles,
          delivered: list.map { |r| [r[:delivered], r[:cycle_deliveries]] }.uniq }
      end
      { clients: clients, polls: polls, cycles: cycles, rounds: rounds, engines: summary,
        same: summary[:native][:delivered] == summary[:faye][:delivered] && summary[:native][:delivered].size == 1 }
    end

    def report(r, out = $stdout)
      n = r[:engines][:native]
      f = r[:engines][:faye]
      out.puts "## 10. The memory engines, in-process"
      out.puts
      out.puts format("%d clients, %d rounds of a ping and a publication each plus one fan-out to all; then %d " \
                      "cycles (client made, two subscriptions, a publication, destroyed). Medians of %d alternating " \
                      "rounds, CPU µs per operation:", r[:clients], r[:polls], r[:cycles], r[:rounds])
      out.puts
      out.puts "| work | faye-online's memory engine | Faye's memory engine | ratio |"
      out.puts "|---|---|---|---|"
      out.puts format("| steady (a ping or a publication) | %.2f | %.2f | %.2f× |", n[:steady_us], f[:steady_us],
                      f[:steady_us] / n[:steady_us])
      out.puts format("| cycle | %.2f | %.2f | %.2f× |", n[:cycle_us], f[:cycle_us], f[:cycle_us] / n[:cycle_us])
      out.puts
      out.puts format("Deliveries: %s (%s).", n[:delivered].first.inspect,
                      r[:same] ? "the same from both engines" : "DIFFERENT between the engines")
      out.puts
    end
  end
end

Bench::Engines.report(Bench::Engines.run) if $PROGRAM_NAME == __FILE__
