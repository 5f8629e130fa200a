# frozen_string_literal: true

require "json"
require "set"
require "rack/utils"
require_relative "deferred"

module FayeOnline
  # A live dashboard served by the Faye server, for those who want to watch
  # rather than read: rooms with their online users, lessons with running
  # timers, and online users over the last hours. Off unless a token is set
  # (dashboard: or FAYE_ONLINE_DASHBOARD_TOKEN).
  #
  #   GET /faye-online/dashboard?token=T        sets the token in a cookie and
  #                                             redirects to the address without it
  #   GET /faye-online/dashboard                the page (with the cookie)
  #   GET /faye-online/dashboard.json           what it shows, as JSON (with the
  #                                             cookie, an "Authorization: Bearer T"
  #                                             header, or ?token=T)
  #
  # The token leaves the address after the first visit, so that it does not
  # sit in access logs and browser history. Nothing served over HTTP holds
  # a clientId: a clientId is all it takes to act as that client.
  #
  # The page subscribes to CHANNEL (with the token in the subscription's
  # `ext`); the server publishes there whenever a room's list changes, and
  # the page fetches the JSON again. Nothing on the reactor waits on Redis or
  # SQL: the JSON is built on EventMachine's thread pool and sent when ready.
  class Dashboard
    CHANNEL = "/faye_online/dashboard"
    COOKIE = "faye_online_dashboard"
    PAGE = File.expand_path("dashboard.html", __dir__)
    # Online users over six hours: a point a minute, and one at each change
    # the dashboard saw (at most MAX_POINTS).
    SAMPLE_EVERY = 60
    HISTORY_MS = 6 * 3600 * 1000
    MAX_POINTS = 2000

    def initialize(server, fallback)
      @server = server
      @fallback = fallback
      @token = server.config.dashboard_token
      @history = []
      @members = Set.new # clientIds subscribed to CHANNEL with the token
      @engine = nil
      @lock = Mutex.new
      start_sampler if @token
    end

    def enabled?
      !@token.nil?
    end

    def call(env)
      return @fallback.call(env) unless enabled?

      case env["PATH_INFO"]
      when "/faye-online/dashboard" then page(env)
      when "/faye-online/dashboard.json" then data(env)
      else @fallback.call(env)
      end
    end

    # True when `token` opens the dashboard.
    def allowed?(token)
      enabled? && token.is_a?(String) && Rack::Utils.secure_compare(token, @token)
    end

    # Faye's :subscribe event: a subscription to exactly CHANNEL got past
    # #check, so it carried the token.
    def subscribed(client_id, channel)
      @members << client_id if enabled? && channel == CHANNEL
    end

    def unsubscribed(client_id, channel)
      @members.delete(client_id) if channel == CHANNEL
    end

    # Faye's engine on Redis (a RedisEngine), where a holder of the token
    # is recorded for every process; nil on one process.
    attr_writer :engine

    # Whether the dashboard's publications may reach +client_id+.
    def member?(client_id)
      @members.include?(client_id)
    end

    # Tells the dashboards that a room's list changed (on the reactor).
    def changed(room, data)
      return unless enabled?

      @server.engine.publish("channel" => CHANNEL, "data" => { "room" => room, "count" => data["count"] })
    end

    # The Faye extension that keeps the dashboard's channel to holders of
    # the token, and to the server's own publications. Never raises.
    def guard
      dashboard = self
      Module.new do
        define_singleton_method(:incoming) do |message, callback|
          dashboard.check(message)
          callback.call(message)
        end
      end
    end

    def check(message)
      channel = message["channel"]
      if channel == "/meta/subscribe" && Array(message["subscription"]).include?(CHANNEL)
        token = message["ext"].is_a?(Hash) ? message["ext"]["dashboard_token"] : nil
        if allowed?(token)
          # Its publications may reach the client through another process.
          @engine&.grant(message["clientId"], ["dashboard"])
        else
          message["error"] = "403:#{CHANNEL}:the dashboard needs its token"
        end
      elsif channel == CHANNEL
        message["error"] = "403:#{CHANNEL}:only the server publishes here"
      end
    rescue StandardError => e
      message["error"] = "500::#{e.class}"
    end

    # Lessons whose scheduled window ended this long ago at most are shown
    # with each student's status.
    FINISHED_WITHIN_MS = 12 * 3600 * 1000
    MAX_FINISHED = 10

    # What the page shows. Runs off the reactor (it reads Redis and SQL).
    def snapshot
      now = Time.now
      status = @server.query.status
      status["rooms"].each { |room| room["users"].each { |user| tabs_for(user) } }
      times = @server.query.lessons_times(status["lessons"].map { |lesson| lesson["lesson"] })
      status["lessons"].each do |lesson|
        by_uid = times.fetch(lesson["lesson"], []).to_h { |row| [row["uid"], row] }
        lesson["users"].each do |user|
          tabs_for(user)
          user["seconds"] = FayeOnline::Reports.running_seconds(user["started_ms"], now)
          user["total_seconds"] = @server.query.online_time(user["uid"], lesson["lesson"])
          row = by_uid[user["uid"]] || {}
          user["state"] = row["state"]
          user["attended_ms"] = row.fetch("attended_ms", 0)
          user["engaged_ms"] = row.fetch("engaged_ms", 0)
        end
      end
      online = status["rooms"].sum { |room| room["count"] }
      record(online)
      { "now_ms" => (now.to_f * 1000).round, "online" => online,
        "rooms" => status["rooms"], "lessons" => status["lessons"], "finished" => finished(now),
        "history" => @lock.synchronize { @history.dup } }
    end

    # The scheduled lessons that ended in the last FINISHED_WITHIN_MS, latest
    # first, with each student's attendance.
    def finished(now)
      now_ms = (now.to_f * 1000).round
      @server.query.schedules(now_ms - FINISHED_WITHIN_MS - (24 * 3600 * 1000), now_ms)
             .select { |s| s["ends_ms"] <= now_ms && s["ends_ms"] > now_ms - FINISHED_WITHIN_MS }
             .max_by(MAX_FINISHED) { |s| s["ends_ms"] }
             .map { |s| Attendance.lesson(@server.query, s["lesson"], thresholds: @server.config.attendance) }
    end

    private

    # How many tabs (clientIds) a user has, in place of the clientIds.
    def tabs_for(user)
      user["tabs"] = Array(user.delete("client_ids")).size
    end

    def page(env)
      query_token = query_token(env)
      return remember(env, query_token) if allowed?(query_token)
      return forbidden unless allowed?(cookie_token(env))

      body = File.read(PAGE).sub("__FAYE_MOUNT__", Rack::Utils.escape_html(@server.config.mount))
                            .sub("__DASHBOARD_TOKEN__", Rack::Utils.escape_html(@token))
      [200, { "Content-Type" => "text/html; charset=utf-8", "Cache-Control" => "no-store",
              "Content-Length" => body.bytesize.to_s, "Referrer-Policy" => "no-referrer" }, [body]]
    end

    # The first visit: the token goes into a cookie for the dashboard's own
    # paths, and the browser comes back to the address without it.
    def remember(env, token)
      cookie = "#{COOKIE}=#{Rack::Utils.escape(token)}; Path=/faye-online; HttpOnly; SameSite=Strict"
      cookie += "; Secure" if https?(env)
      [303, { "Location" => "/faye-online/dashboard", "Set-Cookie" => cookie, "Cache-Control" => "no-store",
              "Content-Type" => "text/plain; charset=utf-8", "Referrer-Policy" => "no-referrer" },
       ["See /faye-online/dashboard\n"]]
    end

    def https?(env)
      env["rack.url_scheme"] == "https" || env["HTTP_X_FORWARDED_PROTO"].to_s.split(",").first&.strip == "https"
    end

    def data(env)
      unless [cookie_token(env), bearer_token(env), query_token(env)].any? { |t| allowed?(t) }
        return [403, { "Content-Type" => "application/json" }, [%({"error":"the dashboard needs its token"})]]
      end

      Deferred.call(env) { [200, Deferred::JSON_HEADERS.dup, [JSON.generate(snapshot)]] }
    end

    def query_token(env)
      token = Rack::Utils.parse_query(env["QUERY_STRING"].to_s)["token"]
      token.is_a?(String) ? token : nil
    end

    def cookie_token(env)
      token = Rack::Utils.parse_cookies_header(env["HTTP_COOKIE"].to_s)[COOKIE]
      token.is_a?(String) ? token : nil
    end

    def bearer_token(env)
      env["HTTP_AUTHORIZATION"].to_s[/\ABearer (.+)\z/, 1]
    end

    def forbidden
      [403, { "Content-Type" => "text/plain; charset=utf-8" },
       ["This dashboard needs its token: add ?token=... to the address.\n"]]
    end

    def record(online)
      now = (Time.now.to_f * 1000).round
      @lock.synchronize do
        last = @history.last
        # The same count within the minute only moves the latest point on.
        if last && last[1] == online && @history.size > 1 && @history[-2][1] == online &&
           now - @history[-2][0] < SAMPLE_EVERY * 1000
          last[0] = now
        else
          @history << [now, online]
        end
        @history.shift while @history.any? && (@history.size > MAX_POINTS || @history.first[0] < now - HISTORY_MS)
      end
    end

    def start_sampler
      Thread.new do
        Thread.current.name = "faye-online-dashboard"
        loop do
          begin
            snapshot
          rescue StandardError => e
            @server.logger.warn("faye-online: dashboard sample failed: #{e.class}: #{e.message}")
          end
          sleep SAMPLE_EVERY
        end
      end
    end
  end
end
