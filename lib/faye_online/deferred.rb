# frozen_string_literal: true

require "json"

module FayeOnline
  # Answers an HTTP request from work that must not run on the reactor
  # (reads of Redis or SQL): the block runs on EventMachine's thread pool,
  # and thin sends its answer when it is ready. Outside a running reactor
  # (a Rack server without async answers) the block runs at once, and what
  # it raises is raised.
  module Deferred
    JSON_HEADERS = { "Content-Type" => "application/json", "Cache-Control" => "no-store" }.freeze

    module_function

    # +block+ gives a Rack response; an exception becomes a 503 in JSON.
    def call(env, &block)
      respond = env["async.callback"]
      return yield unless respond && EM.reactor_running?

      EM.defer(-> { guarded(&block) }, ->(response) { respond.call(response) })
      # Thin's way of saying "the answer comes later".
      [-1, {}, []]
    end

    def guarded
      yield
    rescue StandardError => e
      [503, JSON_HEADERS.dup, [JSON.generate("error" => "#{e.class}: #{e.message}")]]
    end
  end
end
