# frozen_string_literal: true

module FayeOnline
  # What counts as "not set" wherever faye-online reads settings: nil, or a
  # string of nothing but spaces. An unset variable in config/faye_online.yml
  # (`secret: <%= ENV["X"] %>`) expands to "", and an exported but empty
  # environment variable reads as "": both mean "not given", not "the empty
  # value". Plain Ruby, so that nothing has to load ActiveSupport for it.
  module Blank
    module_function

    def blank?(value)
      value.nil? || value.to_s.strip.empty?
    end

    def present?(value)
      !blank?(value)
    end
  end
end
