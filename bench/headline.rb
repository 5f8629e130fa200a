# frozen_string_literal: true

# The headline figures in one run, for a before/after table: section 1
# (Faye alone against the servers named), Redis bytes per online clientId
# at 100,000 (section 4's measure), and instructions per message on the
# reactor (section 8).
#
#   ruby -Ilib bench/headline.rb plain embedded embedded_faye_engine redis_mariadb
require_relative "support"
require_relative "cost_to_faye"
require_relative "big_rooms"
require_relative "reactor_instructions"

servers = ARGV.map(&:to_sym)
servers = Bench::CostToFaye::SERVERS.keys if servers.empty?
servers = [:plain] + (servers - [:plain])
cost = Bench::CostToFaye.run(clients: 20, seconds: 8, rounds: 5, rate: 1000, presence_seconds: 5, servers: servers)
Bench::CostToFaye.report(cost)
$stdout.flush
big = Bench::BigRooms.run(sizes: [100], changes: 20, spread: 100_000)
puts format("Redis bytes per online clientId at %d: %.1f", big[:spread], big[:bytes_per_client])
puts
$stdout.flush
Bench::ReactorInstructions.report(Bench::ReactorInstructions.run(runs: 2))
