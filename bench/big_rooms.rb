# frozen_string_literal: true

# Benchmark 4: big rooms in one process. A room is filled to 100, 1,000 and
# 10,000 users; then users join and leave it one by one. For each size:
# the reactor time per message, the time the core's threads take per change
# until it is written (hot store, SQL, publication), and the bytes published
# per change on <room>/user_list. Then 100,000 clientIds across rooms, and
# Redis memory per online clientId. Records go to a scratch SQLite file, so
# that what is measured is presence, not the SQL server.
require_relative "support"
require "faye_online"
require "fileutils"
require "securerandom"

module Bench
  module BigRooms
    module_function

    def auth(uid, room)
      { "room_channel" => room, "time_channel" => "#{room}/lesson",
        "current_user" => { "uid" => uid, "uname" => "user#{uid}" } }
    end

    def connect(tracker, cid, uid, room)
      tracker._handshake(cid)
      msg = { "channel" => "/meta/connect", "clientId" => cid, "connectionType" => "long-polling",
              "auth" => auth(uid, room) }
      t = Bench.now
      tracker.incoming(msg, ->(_) {})
      raise "refused: #{msg['error']}" if msg["error"]

      Bench.now - t
    end

    def leave(tracker, cid)
      msg = { "channel" => "/meta/disconnect", "clientId" => cid }
      t = Bench.now
      tracker.incoming(msg, ->(_) {})
      Bench.now - t
    end

    def flush!(timeout = 600)
      FayeOnline.flush(timeout) or raise "the core did not finish within #{timeout}s"
    end

    # Sizes of the publications on `channel` among drained notifications.
    def bytes_on(drained, channel)
      drained.select { |n| n.is_a?(FayeOnline::Native::Publication) && n.channel == channel }
             .map { |n| JSON.generate(n.data).bytesize }
    end

    # The clientIds are the benchmark's own, not made by Faye's engine: a
    # memory engine, since presence on the engine on Redis records only
    # the clientIds that engine knows.
    def start(db, full_lists:)
      FayeOnline.get_server(redis_url: Bench::REDIS_URL, namespace: "bench_big", database_url: "sqlite3:#{db}",
                            migrate: true, full_lists: full_lists, engine: :memory, logger: Logger.new(File::NULL))
      FayeOnline.server.tracker
    end

    # Joins and leaves in each room, on the tracker as it is configured.
    def churn(tracker, sizes, changes, uid, label)
      sizes.map do |size|
        room = "/big/#{size}"
        tracker._drain
        reactor = []
        wall = Bench.time do
          changes.times do |i|
            reactor << connect(tracker, "churn#{label}#{size}x#{i}", uid += 1, room)
            reactor << leave(tracker, "churn#{label}#{size}x#{i}")
          end
          flush!
        end
        # The listener hands publications over a moment after they are sent.
        deadline = Bench.now + 10
        lists = []
        alone = []
        while (lists.size < changes * 2 && alone.size < changes * 2) && Bench.now < deadline
          drained = tracker._drain
          lists.concat(bytes_on(drained, "#{room}/user_list"))
          alone.concat(bytes_on(drained, "#{room}/user_changes"))
          sleep 0.05
        end
        { size: size, reactor_us: Bench.median(reactor) * 1e6, core_us: wall / (changes * 2) * 1e6,
          list_bytes: Bench.median(lists), change_bytes: Bench.median(alone) }
      end
    end

    def run(sizes:, changes:, spread:)
      redis = Redis.new(url: Bench::REDIS_URL)
      Bench.clear_namespace(redis, "bench_big")
      dir = File.join(Bench::ROOT, "tmp", "bench")
      FileUtils.mkdir_p(dir)
      db = File.join(dir, "big_rooms.sqlite3")
      FileUtils.rm_f([db, "#{db}-wal", "#{db}-shm"])
      # Fill the rooms with changes alone (whole lists would make the
      # filling itself quadratic), then measure both ways on the same rooms.
      tracker = start(db, full_lists: false)
      uid = 0
      sizes.each do |size|
        size.times { |i| connect(tracker, "fill#{size}x#{i}", uid += 1, "/big/#{size}") }
      end
      flush!
      alone = churn(tracker, sizes, changes, uid, "a")
      uid += sizes.size * changes
      FayeOnline.server.close
      tracker = start(db, full_lists: true)
      full = churn(tracker, sizes, changes, uid, "f")
      uid += sizes.size * changes
      FayeOnline.server.close

      # Many clientIds across rooms, and what each costs Redis.
      tracker = start(db, full_lists: false)
      before = namespace_bytes(redis)
      base = Bench.now
      # Real clientIds, as Faye makes them: 160 random bits in base 36
      # (about 31 characters). Their length is most of what they cost.
      ids = Array.new(spread) { SecureRandom.random_number(2**160).to_s(36) }
      ids.each_with_index { |cid, i| connect(tracker, cid, uid += 1, "/many/#{i % 1000}") }
      flush!
      spread_s = Bench.now - base
      per_client = (namespace_bytes(redis) - before).to_f / spread
      FayeOnline.server.close
      Bench.clear_namespace(redis, "bench_big")
      { alone: alone, full: full, spread: spread, spread_s: spread_s, bytes_per_client: per_client }
    ensure
      redis&.close
    end

    # The memory Redis reports for every key of the namespace.
    def namespace_bytes(redis)
      keys = redis.scan_each(match: "/bench_big/*", count: 1000).to_a
      keys.each_slice(1000).sum do |slice|
        redis.pipelined { |p| slice.each { |k| p.call("MEMORY", "USAGE", k, "SAMPLES", "0") } }.compact.sum
      end
    end

    def report(r, out = $stdout)
      out.puts "## 4. Big rooms (one process, Redis; records in SQLite)"
      out.puts
      out.puts "| users in the room | reactor µs per message | core µs per change, changes alone | " \
               "core µs per change, whole lists | bytes per change on user_changes | bytes per change on user_list |"
      out.puts "|---|---|---|---|---|---|"
      r[:alone].zip(r[:full]).each do |a, f|
        out.puts format("| %d | %.1f | %.0f | %.0f | %d | %d |", a[:size], a[:reactor_us], a[:core_us], f[:core_us],
                        a[:change_bytes], f[:list_bytes])
      end
      first = r[:alone].first
      last = r[:alone].last
      growth = last[:core_us] / first[:core_us]
      out.puts
      out.puts format("Reactor time per message stays at %.1f–%.1f µs whatever the room's size. With changes alone " \
                      "(`full_lists: false`), the core's time per change goes from %.0f to %.0f µs between %d and %d " \
                      "users (%.1f×; target: flat, %s), and each change publishes %d bytes (target: changes only: met). " \
                      "With whole lists (the old contract, the default) a change at %d users publishes %d bytes.",
                      r[:alone].map { |x| x[:reactor_us] }.min, r[:alone].map { |x| x[:reactor_us] }.max,
                      first[:core_us], last[:core_us], first[:size], last[:size], growth,
                      growth < 2 ? "met" : "missed", last[:change_bytes], last[:size], r[:full].last[:list_bytes])
      out.puts format("%d clientIds across 1,000 rooms joined in %.1f s (%.0f per second, written to Redis and SQLite); " \
                      "Redis holds %.0f bytes per online clientId (target < 200: %s).",
                      r[:spread], r[:spread_s], r[:spread] / r[:spread_s], r[:bytes_per_client],
                      r[:bytes_per_client] < 200 ? "met" : "missed")
      out.puts
    end
  end
end

if $PROGRAM_NAME == __FILE__
  quick = ARGV.include?("--quick")
  result = Bench::BigRooms.run(sizes: quick ? [100, 1000] : [100, 1000, 10_000], changes: quick ? 50 : 200,
                               spread: quick ? 10_000 : 100_000)
  Bench::BigRooms.report(result)
end
