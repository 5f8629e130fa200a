# frozen_string_literal: true

# 5. The SQL writer: the same join/leave records written to MariaDB and to
#    PostgreSQL, one transaction per record and in batches of up to 256
#    (what the writer does when records queue up), side by side in one run.
#    Runs the core's `writer` example (ext/faye_online_core/examples/writer.rs).
#    A third run adds each cycle's interval-ledger rows, for the SQL cost
#    of an interval (section 9's other figure).
require_relative "support"
require "open3"

module Bench
  module Writer
    module_function

    DATABASES = {
      "MariaDB" => -> { Bench.fresh_database("faye_online_bench_writer").sub("mysql2://", "mysql://") },
      "PostgreSQL" => -> { Bench.fresh_postgres_database("faye_online_bench_writer") }
    }.freeze

    # { "MariaDB" => figures, "PostgreSQL" => figures }
    def run(cycles:)
      DATABASES.to_h do |name, fresh|
        out, status = Open3.capture2e("cargo", "run", "--quiet", "--release", "--example", "writer", "--",
                                      fresh.call, cycles.to_s, chdir: File.join(Bench::ROOT, "ext/faye_online_core"))
        raise "writer benchmark on #{name} failed: #{out}" unless status.success?

        [name, JSON.parse(out.lines.last, symbolize_names: true)]
      end
    end

    def report(results, out = $stdout)
      first = results.values.first
      out.puts "## 5. The SQL writer (#{first[:cycles]} join/leave cycles, #{first[:records]} records)"
      out.puts
      out.puts "| database | way | records per s | server CPU per cycle, ms |"
      out.puts "|---|---|---|---|"
      results.each do |database, r|
        [["one transaction per record", r[:one_by_one]], ["batches of up to 256", r[:in_batches]]].each do |way, w|
          cpu = w[:db_cpu_seconds] ? format("%.2f", w[:db_cpu_seconds] * 1000 / r[:cycles]) : "n/a"
          out.puts format("| %s | %s | %.0f | %s |", database, way, r[:records] / w[:seconds], cpu)
        end
      end
      out.puts
      results.each do |database, r|
        out.puts format("%s: batches write %.1f× the records per second of one transaction per record.",
                        database, r[:one_by_one][:seconds] / r[:in_batches][:seconds])
      end
      if results.size == 2
        a, b = results.values.map { |r| r[:records] / r[:in_batches][:seconds] }
        out.puts format("In batches, %s writes %.2f× the records per second of %s.",
                        results.keys[1], b / a, results.keys[0])
      end
      out.puts
      out.puts "The interval ledger (two clocks): the same cycles in batches with each cycle's three interval rows " \
               "(attended, and engaged twice); the median of 3 alternating rounds each:"
      out.puts
      out.puts "| database | intervals | batches without, s | with the ledger, s | µs per interval | server CPU µs per interval |"
      out.puts "|---|---|---|---|---|---|"
      results.each do |database, r|
        without = r[:in_batches]
        with = r[:with_ledger]
        cpu = with[:db_cpu_seconds] && without[:db_cpu_seconds] ? format("%.1f", (with[:db_cpu_seconds] - without[:db_cpu_seconds]) * 1e6 / r[:intervals]) : "n/a"
        out.puts format("| %s | %d | %.2f | %.2f | %.1f | %s |", database, r[:intervals], without[:seconds], with[:seconds],
                        (with[:seconds] - without[:seconds]) * 1e6 / r[:intervals], cpu)
      end
      out.puts
    end
  end
end

if $PROGRAM_NAME == __FILE__
  result = Bench::Writer.run(cycles: 1000)
  Bench::Writer.report(result)
end
