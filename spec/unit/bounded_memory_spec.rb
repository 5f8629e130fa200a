# frozen_string_literal: true

require "json"
require "open3"

# Memory must not grow with what clients do: 10,000 clients, each in a room
# of its own, join, subscribe to their room's list, unsubscribe and leave.
# Afterwards the tracker holds nothing of them (watched rooms, clientIds,
# queued events, pending records) but a bounded cache of channel ids, and
# the process's memory is flat. The cycles run in a process of their own
# (spec/fixtures/memory_cycles.rb), measured apart from the test run.
RSpec.describe "FayeOnline::Native::Tracker memory" do
  it "holds nothing of 10,000 subscribe/unsubscribe cycles over distinct rooms" do
    script = File.join(FayeOnlineSpec::ROOT, "spec", "fixtures", "memory_cycles.rb")
    out, err, status = Open3.capture3({ "CYCLES" => "10000", "WARM" => "4000" },
                                      Gem.ruby, "-I", File.join(FayeOnlineSpec::ROOT, "lib"), script)
    expect(status).to be_success, err
    result = JSON.parse(out.lines.last)
    expect(result["stats"]).to include("served_clients" => 0, "watched_rooms" => 0, "queued_events" => 0,
                                       "pending_records" => 0)
    # 20,000 distinct channels went through the writer; it keeps at most 4,096.
    expect(result["stats"]["cached_channel_ids"]).to be_between(1, 4096)
    # After the first 4,000 cycles (SQLite's page caches and the allocators'
    # arenas fill to their sizes), 6,000 more leave memory flat.
    growth_mb = (result["final_kb"] - result["warm_kb"]) / 1024.0
    expect(growth_mb).to be < 4, "memory grew #{growth_mb.round(1)} MB over the last 6,000 cycles"
  end
end
