# frozen_string_literal: true

# 5. The SQL writer: the same join/leave records written to MariaDB one
#    transaction per record, and in batches of up to 256 (what the writer
#    does when records queue up), side by side in one run. Runs the core's
#    `writer` example (ext/faye_online_core/examples/writer.rs).
require_relative "support"
require "open3"

module Bench
  module Writer
    module_function

    def run(cycles:)
      database = Bench.fresh_database("faye_online_bench_writer").sub("mysql2://", "mysql://")
      out, status = Open3.capture2e("cargo", "run", "--quiet", "--release", "--example", "writer", "--",
                                    database, cycles.to_s, chdir: File.join(Bench::ROOT, "ext/faye_online_core"))
      raise "writer benchmark failed: #{out}" unless status.success?

      JSON.parse(out.lines.last, symbolize_names: true)
    end

    def report(r, out = $stdout)
      single = r[:one_by_one]
      batched = r[:in_batches]
      out.puts "## 5. The SQL writer (#{r[:cycles]} join/leave cycles, #{r[:records]} records, MariaDB)"
      out.puts
      out.puts "| way | records per s | MariaDB CPU per cycle, ms |"
      out.puts "|---|---|---|"
      [["one transaction per record", single], ["batches of up to 256", batched]].each do |name, w|
        cpu = w[:db_cpu_seconds] ? format("%.2f", w[:db_cpu_seconds] * 1000 / r[:cycles]) : "n/a"
        out.puts format("| %s | %.0f | %s |", name, r[:records] / w[:seconds], cpu)
      end
      out.puts
      out.puts format("Batches: %.1f× the records per second.", single[:seconds] / batched[:seconds])
      out.puts
    end
  end
end

if $PROGRAM_NAME == __FILE__
  result = Bench::Writer.run(cycles: 1000)
  Bench::Writer.report(result)
end
