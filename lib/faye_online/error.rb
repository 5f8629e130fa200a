# frozen_string_literal: true

module FayeOnline
  # Base class of every error faye-online raises (never from inside Faye's
  # message handling, which refuses bad input with a Bayeux error instead).
  class Error < StandardError; end

  # An option or environment variable has a value faye-online cannot use.
  class ConfigurationError < Error; end

  # Redis or the SQL database could not answer a query.
  class StoreError < Error; end
end
