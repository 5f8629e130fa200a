# frozen_string_literal: true

module FayeOnline
  VERSION = "0.2.0"
end
