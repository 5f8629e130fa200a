# frozen_string_literal: true

module FayeOnline
  # Seconds on a clock that only goes forward, for deadlines and delays
  # (not the time of day: a clock set back must not stretch a wait).
  module Clock
    def self.monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
