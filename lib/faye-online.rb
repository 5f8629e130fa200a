# frozen_string_literal: true

# The gem is called faye-online; `require "faye-online"` loads it.
require_relative "faye_online"
