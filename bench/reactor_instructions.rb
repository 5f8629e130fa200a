# frozen_string_literal: true

# Benchmark 8: instructions per message on the reactor, counted by
# valgrind's callgrind, which counts instructions rather than time: the
# same binary, script and settings give the same count whatever else the
# machine is doing. The script is benchmark 2's (joins, polls, leaves),
# given to the tracker's `incoming` on this thread as Faye's reactor
# would; only the instructions inside `incoming` (and what it calls) are
# counted, on the embedded default (memory store, scratch SQLite).
#
#   ruby -Ilib bench/reactor_instructions.rb          # runs itself under valgrind twice
#   ruby -Ilib bench/reactor_instructions.rb --drive  # the script alone
require_relative "support"
require "open3"
require "tmpdir"

module Bench
  module ReactorInstructions
    # What callgrind counts: the binding's `incoming` and all it calls.
    COLLECT = "faye_online::tracker::RbTracker::incoming"
    USERS = 100
    POLLS = 3

    module_function

    # Runs the script under callgrind +runs+ times; nil when valgrind is
    # not installed.
    def run(runs: 2)
      return nil unless system("command -v valgrind >/dev/null 2>&1")

      results = Array.new(runs) { count }
      counts = results.map(&:first)
      { messages: messages, counts: counts, per_message: counts.first.fdiv(messages), runs: runs,
        allocated_per_message: results.first.last.fdiv(messages) }
    end

    def messages
      tabs = USERS * 2
      tabs * (POLLS + 2)
    end

    # One run under callgrind: the instructions inside `incoming`.
    def count
      Dir.mktmpdir("faye-online-callgrind-") do |dir|
        out = File.join(dir, "callgrind.out")
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=#{out}", "--toggle-collect=#{COLLECT}",
                   Gem.ruby, "-I#{File.join(Bench::ROOT, 'lib')}", __FILE__, "--drive", dir]
        output, status = Open3.capture2e(*command, chdir: Bench::ROOT)
        raise "callgrind failed:\n#{output[-2000..] || output}" unless status.success?

        totals = File.foreach(out).find { |line| line.start_with?("totals:", "summary:") }
        raise "callgrind wrote no totals" unless totals

        [Integer(totals.split[1]), Integer(File.read(File.join(dir, "allocated")))]
      end
    end

    # The script itself, in the process valgrind runs.
    def drive(dir)
      require "faye_online"
      require "faye_online/migrator"
      require_relative "native_vs_ruby"
      config = FayeOnline::Configuration.new({ store: :memory, database_url: "sqlite3:#{dir}/records.sqlite3",
                                               logger: Logger.new(File::NULL) }, env: {})
      # As the server migrates: ActiveRecord stays out of this process.
      FayeOnline::Migrator.migrate_apart!(config.database_url, root: config.root)
      tracker = FayeOnline::Native::Tracker.new(config.native_options)
      steps = Bench::NativeVsRuby.script(users: USERS, rooms: 10, polls: POLLS)
      steps.each { |kind, cid, _| tracker._handshake(cid) if kind == :join }
      callback = ->(_message) {}
      messages = steps.map { |kind, cid, auth| Bench::NativeVsRuby.message(kind, cid, auth) }
      # Ruby's collector stays off while the script runs, so that the count
      # is the same in every run: the Ruby objects `incoming` allocates,
      # which is what it costs the collector, are counted apart.
      GC.start
      GC.disable
      allocated = GC.stat(:total_allocated_objects)
      messages.each do |message|
        tracker.incoming(message, callback)
        raise "refused: #{message['error']}" if message["error"]
      end
      allocated = GC.stat(:total_allocated_objects) - allocated
      GC.enable
      File.write(File.join(dir, "allocated"), allocated.to_s)
      tracker._close(60) or raise "the tracker did not finish writing"
    end

    def report(r, out = $stdout)
      out.puts "## 8. Instructions per message on the reactor (callgrind)"
      out.puts
      unless r
        out.puts "valgrind is not installed: skipped."
        out.puts
        return
      end
      out.puts format("Benchmark 2's script (%d users, two tabs each, %d polls per tab: %d messages) given to the " \
                      "tracker's `incoming` on the embedded default; callgrind counts the instructions inside it.",
                      USERS, POLLS, r[:messages])
      out.puts
      out.puts "| run | instructions inside `incoming` | per message |"
      out.puts "|---|---|---|"
      r[:counts].each_with_index do |c, i|
        out.puts format("| %d | %d | %.0f |", i + 1, c, c.fdiv(r[:messages]))
      end
      out.puts
      spread = (r[:counts].max - r[:counts].min).fdiv(r[:counts].min) * 100
      out.puts format("Spread between runs: %.2f%%. Ruby's collector is off while the script runs (a collection " \
                      "started by one message would count the whole heap's marking against it); what `incoming` " \
                      "costs the collector is the Ruby objects it allocates: %.1f per message. The rest of the " \
                      "spread: the core's tables hash with a random seed per process, against flooding, and its " \
                      "worker threads take the same locks at moments that differ between runs.",
                      spread, r[:allocated_per_message])
      out.puts
    end
  end
end

if $PROGRAM_NAME == __FILE__
  if ARGV.first == "--drive"
    Bench::ReactorInstructions.drive(ARGV.fetch(1))
  else
    Bench::ReactorInstructions.report(Bench::ReactorInstructions.run)
  end
end
