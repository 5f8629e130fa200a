# frozen_string_literal: true

require "json"
require "rack/utils"

module FayeOnline
  # The demo classroom, served at / when get_server has demo: true (bin/dev
  # turns it on): pick a name, join a room and a lesson, and watch the live
  # roster and your lesson timer. Open it in a second window to see two
  # users at once; close one to see the leave. It is a page of the same
  # faye-online.js a site uses, with no framework.
  #
  # With a secret set, the page asks /faye-online/demo/auth for its signed
  # identity, which the demo signs for whatever a visitor asks: a demo is
  # for development, never for a server users reach.
  class Demo
    PAGE = File.expand_path("demo.html", __dir__)
    AUTH = "/faye-online/demo/auth"

    def initialize(config, fallback)
      @config = config
      @fallback = fallback
    end

    def enabled?
      @config.demo?
    end

    def call(env)
      return @fallback.call(env) unless enabled? && %w[GET HEAD].include?(env["REQUEST_METHOD"])

      case env["PATH_INFO"]
      when "/", "" then page
      when AUTH then auth(env)
      else @fallback.call(env)
      end
    end

    private

    def page
      body = File.read(PAGE).sub("__FAYE_MOUNT__", Rack::Utils.escape_html(@config.mount))
                            .sub("__SIGNED__", @config.secret ? "true" : "false")
      [200, { "Content-Type" => "text/html; charset=utf-8", "Cache-Control" => "no-store",
              "Content-Length" => body.bytesize.to_s }, [body]]
    end

    # auth_opts for ?uid=&uname=&room=&lesson=, signed with the server's
    # secret; 400 with the reason for a claim the server would refuse.
    def auth(env)
      query = Rack::Utils.parse_query(env["QUERY_STRING"].to_s)
      opts = FayeOnline.auth_opts(uid: query["uid"], uname: query["uname"], room_channel: query["room"],
                                  time_channel: query["lesson"], expires_in: 3600, secret: @config.secret)
      json(200, opts)
    rescue ArgumentError, TypeError, ConfigurationError => e
      json(400, "error" => e.message)
    end

    def json(status, data)
      body = JSON.generate(data)
      [status, { "Content-Type" => "application/json", "Cache-Control" => "no-store",
                 "Content-Length" => body.bytesize.to_s }, [body]]
    end
  end
end
