# frozen_string_literal: true

# The suite drives real parts only: a thin process running spec/fixtures/faye.ru,
# Redis, MariaDB or SQLite, Faye::Client in an EventMachine thread, and raw
# Bayeux over HTTP. See spec/support/ for the harness.

$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))

require "json"
require "fileutils"

module FayeOnlineSpec
  ROOT = File.expand_path("..", __dir__)

  # Loads the gem (with its native extension) once; integration groups call it
  # in before(:all) so that a missing build fails them with a clear message.
  def self.load_gem!
    return if @gem_loaded

    begin
      require "faye-online"
    rescue LoadError => e
      raise LoadError, "cannot load faye-online (#{e.message}); build the native " \
                       "extension first with bin/build or bin/setup"
    end
    @gem_loaded = true
  end

  def self.tmp_path(*parts)
    File.join(ROOT, "tmp", *parts)
  end

  @counter = 0
  @counter_lock = Mutex.new

  # A number unique within this test run, for rooms, lessons, uids and namespaces.
  def self.next_number
    @counter_lock.synchronize { @counter += 1 }
  end
end

Dir[File.join(__dir__, "support", "**", "*.rb")].sort.each { |file| require file }

RSpec.configure do |config|
  config.expect_with :rspec do |expectations|
    expectations.include_chain_clauses_in_custom_matcher_descriptions = true
    expectations.max_formatted_output_length = 2_000
  end
  config.shared_context_metadata_behavior = :apply_to_host_groups
  config.example_status_persistence_file_path = File.join(__dir__, "examples.txt")
  config.disable_monkey_patching!
  config.filter_run_when_matching :focus
  config.order = :random
  Kernel.srand config.seed

  config.include FayeOnlineSpec::Waiting
end
