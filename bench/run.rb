# frozen_string_literal: true

# Runs every benchmark in turn and prints one report (see bench/README.md).
require_relative "support"
require_relative "native_vs_ruby"
require_relative "big_rooms"
require_relative "cost_to_faye"
require_relative "writer"
require_relative "publish"
require_relative "engine"
require_relative "reactor_instructions"
require_relative "page_states"
require_relative "engines"
require "etc"

quick = ENV["BENCH_QUICK"] == "1"
started = Bench.now
puts "# faye-online benchmarks"
puts
puts "#{Etc.nprocessors} cores, #{RUBY_DESCRIPTION.split(' [').first}, #{quick ? 'quick run' : 'full run'}, " \
     "#{Time.now.utc.strftime('%Y-%m-%d')}."
puts

cost = Bench::CostToFaye.run(clients: quick ? 10 : 20, seconds: quick ? 3 : 8, rounds: quick ? 2 : 5,
                             rate: 1000, presence_seconds: quick ? 4 : 10)
Bench::CostToFaye.report(cost)
$stdout.flush

native = Bench::NativeVsRuby.run(users: quick ? 100 : 500, rooms: 10, polls: 3)
Bench::NativeVsRuby.report(native)
$stdout.flush

big = Bench::BigRooms.run(sizes: quick ? [100, 1000] : [100, 1000, 10_000], changes: quick ? 50 : 200,
                          spread: quick ? 10_000 : 100_000)
Bench::BigRooms.report(big)
$stdout.flush

writer = Bench::Writer.run(cycles: quick ? 300 : 1000)
Bench::Writer.report(writer)
$stdout.flush

publish = Bench::Publish.run(count: quick ? 300 : 1000)
Bench::Publish.report(publish)
$stdout.flush

engine = Bench::Engine.run(subscribers: 10, messages: quick ? 200 : 600)
Bench::Engine.report(engine)
$stdout.flush

Bench::ReactorInstructions.report(Bench::ReactorInstructions.run(runs: quick ? 2 : 3))
$stdout.flush

Bench::PageStates.report(Bench::PageStates.run(users: quick ? 100 : 500))
$stdout.flush

Bench::Engines.report(Bench::Engines.run(rounds: quick ? 3 : 5))

puts format("Whole run: %.0f s.", Bench.now - started)
