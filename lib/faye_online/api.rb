# frozen_string_literal: true

require "json"
require "rack/utils"
require_relative "deferred"

module FayeOnline
  # A small read API over HTTP, for apps that cannot reach Redis (off
  # unless a token is set: api_token: or FAYE_ONLINE_API_TOKEN):
  #
  #   GET /faye-online/api/rooms/<room>       {"room", "count", "users": [{"uid", "uname"}]}
  #   GET /faye-online/api/lessons/<lesson>   {"lesson", "count", "users": [{"uid", "uname",
  #                                            "tabs", "started_at", "seconds", "total_seconds"}]}
  #
  # with "Authorization: Bearer <token>"; 403 without it. A lesson's users
  # are those whose timer runs: "seconds" of the running session,
  # "total_seconds" with the earlier ones. The answers are built off the
  # reactor (they read Redis or SQL) and hold no clientId.
  class Api
    PREFIX = "/faye-online/api/"
    CHANNEL = %r{\A(/[A-Za-z0-9_-]+)+\z}

    def initialize(server, fallback)
      @server = server
      @fallback = fallback
      @token = server.config.api_token
    end

    def enabled?
      !@token.nil?
    end

    def call(env)
      path = env["PATH_INFO"].to_s
      return @fallback.call(env) unless enabled? && path.start_with?(PREFIX)
      return answer(405, "error" => "only GET") unless %w[GET HEAD].include?(env["REQUEST_METHOD"])
      return answer(403, "error" => "the API needs its token: Authorization: Bearer <token>") unless allowed?(env)

      kind, channel = path.delete_prefix(PREFIX).split("/", 2)
      channel = "/#{channel}"
      return answer(404, "error" => "no such resource: use rooms/<room> or lessons/<lesson>") unless
        %w[rooms lessons].include?(kind)
      return answer(400, "error" => "#{channel.inspect} is not a channel name such as /classes/4") unless
        channel.match?(CHANNEL) && !channel.start_with?("/meta/")

      Deferred.call(env) do
        Deferred.guarded { answer(200, kind == "rooms" ? room(channel) : lesson(channel)) }
      end
    end

    private

    def allowed?(env)
      token = env["HTTP_AUTHORIZATION"].to_s[/\ABearer (.+)\z/, 1]
      token.is_a?(String) && Rack::Utils.secure_compare(token, @token)
    end

    def room(name)
      users = @server.query.online_users(name)
      { "room" => name, "count" => users.size, "users" => users }
    end

    def lesson(name)
      now = Time.now
      entry = @server.query.status["lessons"].find { |l| l["lesson"] == name }
      users = Array(entry && entry["users"]).map do |user|
        started_ms = user["started_ms"]
        { "uid" => user["uid"], "uname" => user["uname"], "tabs" => Array(user["client_ids"]).size,
          "started_at" => started_ms && Time.at(started_ms / 1000.0).utc.strftime("%Y-%m-%dT%H:%M:%S.%LZ"),
          "seconds" => Reports.running_seconds(started_ms, now),
          "total_seconds" => @server.query.online_time(user["uid"], name) }
      end
      { "lesson" => name, "count" => users.size, "users" => users }
    end

    def answer(status, body)
      [status, Deferred::JSON_HEADERS.dup, [JSON.generate(body)]]
    end
  end
end
