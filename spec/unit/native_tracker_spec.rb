# frozen_string_literal: true

require "tmpdir"

# Waiting on the tracker: flush and close never hold Ruby's global lock
# while they wait, and a timeout that is not a number is an ArgumentError,
# not a crash of the process.
RSpec.describe "FayeOnline::Native::Tracker waits" do
  before(:all) do
    FayeOnlineSpec.load_gem!
    @dir = Dir.mktmpdir("faye-online-waits")
    # A database that can never be opened: every write waits and retries.
    url = "sqlite3:#{File.join(@dir, 'missing-dir', 'records.sqlite3')}"
    options = FayeOnline::Configuration.new({ database_url: url, migrate: false, store: :memory },
                                            env: {}, root: @dir).native_options
    @tracker = FayeOnline::Native::Tracker.new(options)
    @tracker._handshake("waiting0client")
    auth = { "room_channel" => "/classes/4", "time_channel" => "/courses/5/lessons/1",
             "current_user" => { "uid" => 1, "uname" => "ann" } }
    @tracker.incoming({ "channel" => "/meta/connect", "clientId" => "waiting0client", "auth" => auth },
                      ->(_) {})
  end

  after(:all) do
    @tracker&._close(0.2)
    FileUtils.rm_rf(@dir) if @dir
  end

  # How many times another Ruby thread got to run while +block+ ran.
  def ticks_during
    ticks = 0
    ticker = Thread.new do
      loop do
        ticks += 1
        sleep 0.005
      end
    end
    # The ticker runs before the measure starts.
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
    Thread.pass until ticks.positive? || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    before = ticks
    yield
    ticks - before
  ensure
    ticker&.kill
  end

  it "lets other Ruby threads run while flush waits" do
    result = nil
    ticks = ticks_during { result = @tracker._flush(0.6) }
    expect(result).to be false
    expect(ticks).to be >= 20
  end

  it "refuses a timeout that is not a number with an ArgumentError" do
    expect { @tracker._flush(Float::NAN) }.to raise_error(ArgumentError, /timeout/)
    expect { @tracker._close(Float::NAN) }.to raise_error(ArgumentError, /timeout/)
  end

  it "lets other Ruby threads run while close waits" do
    tracker = FayeOnline::Native::Tracker.new(
      FayeOnline::Configuration.new({ database_url: "sqlite3:#{File.join(@dir, 'missing', 'x.sqlite3')}",
                                      migrate: false, store: :memory }, env: {}, root: @dir).native_options
    )
    tracker._handshake("closing0client")
    auth = { "room_channel" => "/classes/4", "time_channel" => "/courses/5/lessons/1",
             "current_user" => { "uid" => 2, "uname" => "bob" } }
    tracker.incoming({ "channel" => "/meta/connect", "clientId" => "closing0client", "auth" => auth }, ->(_) {})
    result = nil
    ticks = ticks_during { result = tracker._close(0.6) }
    expect(result).to be false
    expect(ticks).to be >= 20
  end
end
