# frozen_string_literal: true

# 9. Two clocks: reactor time per page-state message, beside a poll's and
#    a join's in the same run, on the native core as get_server wires it
#    (Redis + MariaDB). USERS users join with two tabs each; every tab
#    reports STATES changes (active, idle, hidden, in turn) between polls;
#    every tab leaves. Each `incoming` is called directly on this thread, as
#    Faye's reactor would. Afterwards the interval ledger must hold each
#    tab's attended interval and one engaged interval per time it left
#    "active". SQL cost per interval is section 5's (the writer example).
require_relative "support"
require "faye_online"

module Bench
  module PageStates
    module_function

    STATES = %w[active idle active hidden active idle].freeze

    def run(users:, states: STATES.size)
      redis = Redis.new(url: Bench::REDIS_URL)
      Bench.clear_namespace(redis, "bench_states")
      database = Bench.fresh_database("faye_online_bench_states")
      # Faye's memory engine: these clientIds are made here, not by Faye's
      # engine on Redis, which would not let presence record them.
      FayeOnline.get_server(redis_url: Bench::REDIS_URL, namespace: "bench_states", database_url: database,
                            engine: :memory, logger: Logger.new(File::NULL))
      tracker = FayeOnline.server.tracker
      lesson = "/courses/1/lessons/1"
      tabs = Array.new(users) do |u|
        auth = { "room_channel" => "/classes/#{u % 10}", "time_channel" => lesson,
                 "current_user" => { "uid" => 200_000 + u, "uname" => "user#{u}" } }
        Array.new(2) { |t| ["states#{u}x#{t}", auth] }
      end.flatten(1)
      times = Hash.new { |h, k| h[k] = [] }
      callback = ->(_message) {}
      call = lambda do |kind, message|
        t = Bench.now
        tracker.incoming(message, callback)
        times[kind] << Bench.now - t
        raise "refused: #{message['error']}" if message["error"]
      end
      tabs.each do |cid, auth|
        tracker._handshake(cid)
        call.call(:join, { "channel" => "/meta/connect", "clientId" => cid, "connectionType" => "long-polling", "auth" => auth })
      end
      states.times do |k|
        tabs.each do |cid, auth|
          call.call(:poll, { "channel" => "/meta/connect", "clientId" => cid, "connectionType" => "long-polling", "auth" => auth })
          call.call(:state, { "channel" => FayeOnline::PAGE_STATE_CHANNEL, "clientId" => cid,
                              "data" => { "state" => STATES[k % STATES.size] } })
        end
      end
      tabs.each { |cid, _| call.call(:leave, { "channel" => "/meta/disconnect", "clientId" => cid }) }
      FayeOnline.flush(120) or raise "the native core did not finish writing"
      FayeOnline.server.close
      expected_engaged = tabs.size * Array.new(states) { |k| STATES[k % STATES.size] }.count("active")
      client = Mysql2::Client.new(**Bench::MYSQL, database: "faye_online_bench_states")
      counts = client.query("SELECT kind, COUNT(*) AS n FROM faye_online_intervals GROUP BY kind").to_h { |r| [r["kind"], r["n"]] }
      client.close
      { users: users, tabs: tabs.size, states: states,
        rows: %i[join poll state leave].map do |kind|
          { kind: kind, messages: times[kind].size, median_us: Bench.median(times[kind]) * 1e6,
            p99_us: Bench.percentile(times[kind], 99) * 1e6 }
        end,
        attended: counts.fetch("attended", 0), engaged: counts.fetch("engaged", 0),
        expected: [tabs.size, expected_engaged] }
    ensure
      redis&.close
    end

    def report(r, out = $stdout)
      out.puts "## 9. Two clocks: reactor time per page-state message (#{r[:users]} users, #{r[:tabs]} tabs, " \
               "#{r[:states]} states each; Redis + MariaDB)"
      out.puts
      out.puts "| message | count | median µs | p99 µs |"
      out.puts "|---|---|---|---|"
      r[:rows].each do |row|
        out.puts format("| %s | %d | %.1f | %.1f |", row[:kind], row[:messages], row[:median_us], row[:p99_us])
      end
      state = r[:rows].find { |row| row[:kind] == :state }
      poll = r[:rows].find { |row| row[:kind] == :poll }
      out.puts
      out.puts format("A page-state message costs the reactor %.1f× a poll (median). The ledger holds %d attended " \
                      "and %d engaged intervals (expected %d and %d): %s.",
                      state[:median_us] / poll[:median_us], r[:attended], r[:engaged], *r[:expected],
                      [r[:attended], r[:engaged]] == r[:expected] ? "exact" : "NOT EXACT")
      out.puts
    end
  end
end

if $PROGRAM_NAME == __FILE__
  Bench::PageStates.report(Bench::PageStates.run(users: Integer(ARGV[0] || 200)))
end
