# frozen_string_literal: true

require "rspec/expectations"

module FayeOnlineSpec
  # Waiting on conditions with a deadline instead of sleeping: the server does
  # its storage work on its own threads, so effects show up a little later.
  module Waiting
    POLL_INTERVAL = 0.02

    class TimeoutError < StandardError; end

    module_function

    def monotonic_now
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    # Polls the block every 20 ms until it returns a truthy value, which is
    # returned. Fails with the block's source line and its last value.
    def wait_for(timeout: 5, message: nil, &condition)
      deadline = monotonic_now + timeout
      last = nil
      loop do
        last = condition.call
        return last if last
        break if monotonic_now >= deadline

        sleep POLL_INTERVAL
      end
      what = message || Waiting.describe_block(condition)
      raise TimeoutError, "timed out after #{timeout}s waiting for: #{what} (last value: #{last.inspect})"
    end

    # Retries a block of expectations every 20 ms until it passes; at the
    # deadline the last expectation failure is raised, prefixed with the wait.
    def eventually(timeout: 5, &expectations)
      deadline = monotonic_now + timeout
      begin
        expectations.call
      rescue RSpec::Expectations::ExpectationNotMetError => e
        if monotonic_now < deadline
          sleep POLL_INTERVAL
          retry
        end
        raise e.class, "still failing after #{timeout}s (#{Waiting.describe_block(expectations)}):\n#{e.message}"
      end
    end

    # Checks a block of expectations every 20 ms for the whole duration: used
    # to show that something does NOT happen (no new row, no new message).
    def consistently(duration: 0.5, &expectations)
      deadline = monotonic_now + duration
      loop do
        begin
          expectations.call
        rescue RSpec::Expectations::ExpectationNotMetError => e
          raise e.class, "stopped holding within #{duration}s (#{Waiting.describe_block(expectations)}):\n#{e.message}"
        end
        break if monotonic_now >= deadline

        sleep POLL_INTERVAL
      end
      true
    end

    # Lets wall-clock time pass, for tests that measure lesson time. This is the
    # one place where the suite waits on the clock itself rather than on an effect.
    def let_time_pass(seconds)
      target = monotonic_now + seconds
      wait_for(timeout: seconds + 1, message: "#{seconds}s to pass") { monotonic_now >= target }
    end

    def self.describe_block(block)
      file, line = block.source_location
      return "block" unless file && File.file?(file)

      source = File.readlines(file)[line - 1].to_s.strip
      "#{File.basename(file)}:#{line} #{source}"
    rescue StandardError
      "block"
    end
  end
end
