# frozen_string_literal: true

# Benchmark 2: reactor time per message, the native core against the
# plain-Ruby baseline (bench/old_gem_baseline.rb), on the same Redis and
# MariaDB, for the same script: USERS users join (two tabs each, in ROOMS
# rooms), every tab polls POLLS times, then every tab leaves. Each
# extension's `incoming` is called directly, on this thread, as Faye's
# reactor would; the time inside it is the reactor's cost. Afterwards the
# two databases must hold the same state.
require_relative "support"
require_relative "old_gem_baseline"
require "faye_online"

module Bench
  module NativeVsRuby
    module_function

    def script(users:, rooms:, polls:)
      tabs = Array.new(users) do |u|
        auth = { "room_channel" => "/classes/#{u % rooms}", "time_channel" => "/courses/1/lessons/#{u % rooms}",
                 "current_user" => { "uid" => 100_000 + u, "uname" => "user#{u}" } }
        Array.new(2) { |t| ["bench#{u}x#{t}", auth] }
      end.flatten(1)
      steps = tabs.map { |cid, auth| [:join, cid, auth] }
      polls.times { steps.concat(tabs.map { |cid, auth| [:poll, cid, auth] }) }
      steps.concat(tabs.map { |cid, _| [:leave, cid, nil] })
      steps
    end

    def message(kind, cid, auth)
      case kind
      when :join, :poll
        { "channel" => "/meta/connect", "clientId" => cid, "connectionType" => "long-polling", "auth" => auth }
      when :leave
        { "channel" => "/meta/disconnect", "clientId" => cid }
      end
    end

    # Seconds spent inside `extension.incoming`, per kind of step.
    def drive(extension, steps)
      times = Hash.new { |h, k| h[k] = [] }
      callback = ->(_message) {}
      steps.each do |kind, cid, auth|
        msg = message(kind, cid, auth)
        t = Bench.now
        extension.incoming(msg, callback)
        times[kind] << Bench.now - t
        raise "refused: #{msg['error']}" if msg["error"]
      end
      times
    end

    # What a database holds after the script, for comparing the two.
    def state(database)
      client = Mysql2::Client.new(**Bench::MYSQL, database: database)
      lists = client.query("SELECT c.name, l.user_info_list FROM faye_channel_online_lists l " \
                           "JOIN faye_channels c ON c.id = l.channel_id").to_h { |r| [r["name"], JSON.parse(r["user_info_list"])] }
      logs = client.query("SELECT status, uid, clientId FROM faye_user_login_logs")
                   .map { |r| [r["status"].to_i, r["uid"].to_i, r["clientId"]] }.sort
      times = client.query("SELECT user_id, online_times FROM faye_user_online_times")
                    .to_h { |r| [r["user_id"].to_i, JSON.parse(r["online_times"])] }
      client.close
      { lists: lists.reject { |_, uids| uids.empty? }, logs: logs, times: times }
    end

    def run(users:, rooms:, polls:)
      steps = script(users: users, rooms: rooms, polls: polls)
      redis = Redis.new(url: Bench::REDIS_URL)

      # Seconds credited differ with each side's own run time; the rest of
      # the state (lists, log rows, which timers exist) must be equal.
      # The native core, as get_server wires it (no reactor needed to
      # call incoming; its worker threads do the I/O).
      Bench.clear_namespace(redis, "bench_native")
      native_db = Bench.fresh_database("faye_online_bench_native")
      # Faye's memory engine, as the baseline ran beside: Faye's engine on
      # Redis (the default with Redis) records presence only for clientIds
      # it made, and these are made here.
      FayeOnline.get_server(redis_url: Bench::REDIS_URL, namespace: "bench_native", database_url: native_db,
                            engine: :memory, logger: Logger.new(File::NULL))
      tracker = FayeOnline.server.tracker
      steps.each { |kind, cid, _| tracker._handshake(cid) if kind == :join }
      native_wall = Bench.time do
        @native = drive(tracker, steps)
        FayeOnline.flush(120) or raise "the native core did not finish writing"
      end
      FayeOnline.server.close

      Bench.clear_namespace(redis, "bench_ruby")
      ruby_db = Bench.fresh_database("faye_online_bench_ruby")
      baseline = Bench::OldGemBaseline.new(redis_url: Bench::REDIS_URL, namespace: "bench_ruby", database_url: ruby_db)
      ruby_wall = Bench.time { @ruby = drive(baseline, steps) }

      native_state = state("faye_online_bench_native")
      ruby_state = state("faye_online_bench_ruby")
      same = native_state[:lists] == ruby_state[:lists] && native_state[:logs] == ruby_state[:logs] &&
             native_state[:times].keys.sort == ruby_state[:times].keys.sort &&
             native_state[:times].all? { |uid, t| t.keys.sort == ruby_state[:times][uid].keys.sort }

      rows = %i[join poll leave].map do |kind|
        n = Bench.median(@native[kind])
        r = Bench.median(@ruby[kind])
        { kind: kind, messages: @native[kind].size, native_us: n, ruby_us: r, ratio: r / n,
          native_p99_us: Bench.percentile(@native[kind], 99), ruby_p99_us: Bench.percentile(@ruby[kind], 99) }
      end
      all_native = @native.values.flatten.sum / steps.size
      all_ruby = @ruby.values.flatten.sum / steps.size
      { users: users, tabs: users * 2, messages: steps.size, rows: rows, mean_native_us: all_native * 1e6,
        mean_ruby_us: all_ruby * 1e6, ratio: all_ruby / all_native, same_state: same,
        native_wall_s: native_wall, ruby_wall_s: ruby_wall }
    ensure
      redis&.close
    end

    def report(r, out = $stdout)
      out.puts "## 2. Native vs Ruby: reactor time per message (#{r[:users]} users, #{r[:tabs]} tabs, #{r[:messages]} messages)"
      out.puts
      out.puts "| message | count | native median µs | Ruby median µs | ratio | native p99 µs | Ruby p99 µs |"
      out.puts "|---|---|---|---|---|---|---|"
      r[:rows].each do |row|
        out.puts format("| %s | %d | %.1f | %.1f | %.0f× | %.1f | %.1f |", row[:kind], row[:messages], row[:native_us] * 1e6,
                        row[:ruby_us] * 1e6, row[:ratio], row[:native_p99_us] * 1e6, row[:ruby_p99_us] * 1e6)
      end
      out.puts
      out.puts format("All messages: native %.1f µs, Ruby %.1f µs on average: %.0f× less reactor time " \
                      "(target ≥ 20×: %s). Resulting state identical (online lists, log rows, timers; the seconds differ with each side's run time): %s. " \
                      "Wall time including the native core's own threads until every record was written: %.1f s; Ruby: %.1f s.",
                      r[:mean_native_us], r[:mean_ruby_us], r[:ratio], r[:ratio] >= 20 ? "met" : "missed",
                      r[:same_state] ? "yes" : "NO", r[:native_wall_s], r[:ruby_wall_s])
      out.puts
    end
  end
end

if $PROGRAM_NAME == __FILE__
  users = Integer(ARGV[0] || 200)
  result = Bench::NativeVsRuby.run(users: users, rooms: 10, polls: 3)
  Bench::NativeVsRuby.report(result)
end
