# frozen_string_literal: true

require_relative "faye_online/version"
require_relative "faye_online/error"
require_relative "faye_online/database"
require_relative "faye_online/configuration"

begin
  require_relative "faye_online/faye_online"
rescue LoadError
  # Installed as a gem, the library sits in the gem's extension directory.
  require "faye_online/faye_online"
end

require_relative "faye_online/reader"
require_relative "faye_online/events"
require_relative "faye_online/webhook"
require_relative "faye_online/publisher"
require_relative "faye_online/private_channels"
require_relative "faye_online/server"
require_relative "faye_online/attendance"
require_relative "faye_online/reports"
require_relative "faye_online/railtie" if defined?(::Rails::Railtie)

# Live presence and lesson time for Faye: who is online in each room, how
# long each user spends in each lesson, and a login/logout log per client.
#
#   # faye.ru
#   require "faye-online"
#   $faye_server = FayeOnline.get_server(host: "localhost", port: 6379, database: 1,
#                                        namespace: "faye", gc: 5)
#   run $faye_server
module FayeOnline
  # Where the browser client reports its page's state; the server handles
  # it and delivers it to nobody.
  PAGE_STATE_CHANNEL = "/faye-online/state"

  class << self
    # The tracker of the server built in this process, if any.
    attr_reader :server

    # Builds a Faye::RackAdapter with faye-online attached. Options (all
    # optional; see the README): store:, redis_url: or host:, port:,
    # database:, password:, namespace:, gc:, timeout:, mount:,
    # database_url:, migrate:, logger:.
    def get_server(options = {})
      config = Configuration.new(options)
      if config.migrate?
        require_relative "faye_online/migrator"
        Migrator.migrate_apart!(config.database_url, root: config.root)
      end
      @server&.close
      @server = Server.new(config)
      @configuration = config
      @query = nil
      @server.adapter
    end

    # Sets the options for queries in a process that runs no server (a Rails
    # app): the same options as get_server.
    def configure(options = {})
      @configuration = Configuration.new(options)
      @query = nil
      self
    end

    def configuration
      @configuration ||= Configuration.new
    end

    # Calls the block with each presence event of +kind+ (:joined, :left,
    # :occupied, :vacated, :time_credited, or :any) that the server in this
    # process makes; see FayeOnline::Events. Returns the handler, for off.
    #
    #   FayeOnline.on(:vacated) { |event| Room.find_by(channel: event["room"])&.touch(:emptied_at) }
    def on(kind, callable = nil, &block)
      events.on(kind, callable, &block)
    end

    # Stops calling a handler that on returned.
    def off(handler)
      events.off(handler)
    end

    # The registry of event callbacks (one per process).
    def events
      @events ||= Events.new
    end

    # The token that lets +user+ (a uid, a Hash with uid, or an object
    # answering id) subscribe to the private +channel+, for +expires_in+
    # seconds: give it to the page (Faye.init_online_client's
    # channel_tokens, or client.faye_online_grant(channel, token)).
    def subscribe_token(channel, user:, expires_in: 12 * 3600, secret: configuration.secret)
      raise ConfigurationError, "no secret: set secret: in FayeOnline.configure or FAYE_ONLINE_SECRET" unless secret

      uid = if user.respond_to?(:to_hash)
              user.to_hash.transform_keys(&:to_s)["uid"]
            elsif user.respond_to?(:id) && !user.is_a?(Integer)
              user.id
            else
              user
            end
      PrivateChannels.token(secret, channel.to_s, Integer(uid), Time.now.to_i + Integer(expires_in))
    end

    # Publishes +data+ on +channel+ from the app. With Faye's engine on
    # Redis (the default when Redis is configured) it goes straight into
    # Redis, where every Faye process finds it; otherwise (via: :http, or
    # engine: :memory) through the Faye server at faye_url: (FAYE_URL),
    # with the server token that lets it publish on the server_publish:
    # channels. Waits at most +timeout+ seconds; returns true once the
    # message was taken, and raises FayeOnline::PublishError (saying why)
    # when it could not be handed over.
    #
    #   FayeOnline.publish("/users/#{user.id}/notifications", { "text" => "Your essay was marked" })
    def publish(channel, data, timeout: 5, via: nil)
      via ||= configuration.engine == :redis ? :redis : :http
      case via
      when :redis
        RedisPublisher.new(redis_url: configuration.redis_url, namespace: configuration.namespace,
                           faye_timeout: configuration.timeout, timeout: timeout).publish(channel, data)
      when :http
        Publisher.new(faye_url: configuration.faye_url, token: configuration.server_token, timeout: timeout)
                 .publish(channel, data)
      else raise ArgumentError, "via: must be :redis or :http, not #{via.inspect}"
      end
    end

    # The events of a webhook request, or nil when its signature is not
    # the server's (a forged or altered request). In a Rails controller:
    #
    #   events = FayeOnline.webhook_events(request) or return head(:forbidden)
    #
    # +request+ is a Rack or Rails request (its body and its
    # X-Faye-Online-Signature header are read), or the body as a String with
    # the header's value as +signature+.
    def webhook_events(request, signature = nil, secret: configuration.webhook_secret)
      body = request
      unless request.is_a?(String)
        io = request.body
        body = io.read.to_s
        io.rewind if io.respond_to?(:rewind)
        signature ||= request.get_header("HTTP_X_FAYE_ONLINE_SIGNATURE")
      end
      Webhook.verify(body, signature, secret)
    end

    # The users online in +room_channel+, sorted by uid:
    # [{"uid" => 470700, "uname" => "mvj3"}, ...]. From Redis or this
    # process's memory; a process without either reads the SQL online list,
    # which has no names ("uname" is "").
    def online_users(room_channel)
      reader.online_users(room_channel)
    end

    # Seconds +uid+ spent in +time_channel+, counting a running session.
    def online_time(uid, time_channel)
      reader.online_time(uid, time_channel)
    end

    # A user's time in a lesson from the interval ledger, to the
    # millisecond: {"attended_ms" => n, "engaged_ms" => n}. Attended is the
    # union of the user's pages' open time, engaged the union of the time
    # one of them was active (shown and in use), counting those still
    # running; within from:...to: (Times, Dates or strings) when given.
    def lesson_time(uid, time_channel, from: nil, to: nil)
      reader.lesson_time(uid, time_channel, *range_ms(from, to))
    end

    # Every user's time in a lesson, with the intervals still running:
    # [{"uid", "uname", "attended_ms", "engaged_ms", "first_join_ms",
    # "last_leave_ms" (nil while online), "online", "state" (while online,
    # the user's state over their tabs)}]; clipped to from:...to: when
    # given.
    def lesson_times(time_channel, from: nil, to: nil)
      reader.lesson_times(time_channel, *range_ms(from, to))
    end

    # [from_ms, to_ms] of from:...to: (either may be left out), or [] for
    # no range at all.
    def range_ms(from, to)
      return [] unless from || to

      from_ms = Reports.ms(Reports.to_time(from || Time.at(0)))
      to_ms = Reports.ms(Reports.to_time(to || Time.now))
      raise ArgumentError, "from: must be before to:" unless from_ms < to_ms

      [from_ms, to_ms]
    end
    private :range_ms

    # The interval ledger's rows of a lesson (of one user with user:), in
    # order of start: hashes with "uid", "lesson", "client_id", "measure"
    # ("attended" or "engaged"), "started_ms", "ended_ms" and "ended_by".
    def intervals(time_channel, user: nil)
      reader.intervals(time_channel, user)
    end

    # Sets a lesson's scheduled window (Times, Dates, ISO 8601 strings or
    # epoch seconds; a string without an offset is read in time_zone:).
    # Attendance credits a lesson only the time inside its window.
    #
    #   FayeOnline.schedule("/courses/5/lessons/1", starts_at: "2026-12-01 09:00",
    #                       ends_at: "2026-12-01 10:30", time_zone: "Europe/Paris")
    def schedule(time_channel, starts_at:, ends_at:, time_zone: "UTC")
      channel = time_channel.to_s
      raise ArgumentError, "#{channel.inspect} is not a lesson channel such as /courses/5/lessons/1" unless
        channel.match?(%r{\A(/[A-Za-z0-9_-]+)+\z}) && !channel.start_with?("/meta/", "/service/")

      tz = Attendance.zone(time_zone)
      starts = Attendance.ms(Attendance.time(starts_at, tz, "starts_at"))
      ends = Attendance.ms(Attendance.time(ends_at, tz, "ends_at"))
      raise ArgumentError, "ends_at must be after starts_at" unless ends > starts

      reader.schedule(channel, starts, ends)
    end

    # Attendance in a scheduled lesson: per student, attended and engaged
    # seconds and percent of the lesson (time outside its window is not
    # counted), first join, last leave, and a status (present, late,
    # left_early, absent) decided by the thresholds, which the answer
    # carries. students: the uids the class should have (those who never
    # came are absent); time_zone: for the times shown; attendance: to
    # override the configured thresholds for this call.
    def attendance(time_channel, students: nil, time_zone: "UTC", attendance: nil)
      thresholds = attendance ? Attendance.thresholds(configuration.attendance.merge(attendance)) : configuration.attendance
      Attendance.lesson(reader, time_channel.to_s, thresholds: thresholds, students: students, time_zone: time_zone)
    end

    # The token that proves a page's claim, signed on the app's server with
    # the secret the Faye server verifies (see auth_opts).
    def auth_token(uid:, uname:, room_channel:, time_channel:, expires:, secret: configuration.secret)
      raise ConfigurationError, "no secret: set secret: in FayeOnline.configure or FAYE_ONLINE_SECRET" unless secret

      Native.sign(secret.to_s, Integer(uid), uname.to_s, room_channel.to_s, time_channel.to_s, Integer(expires))
    end

    # The auth_opts for Faye.init_online_client, signed when a secret is
    # configured. In a Rails view:
    #   auth_opts: <%= raw FayeOnline.auth_opts(uid: current_user.id, uname: current_user.name,
    #                     room_channel: "/classes/4", time_channel: "/courses/5/lessons/1").to_json %>
    def auth_opts(uid:, uname:, room_channel:, time_channel:, expires_in: 12 * 3600, secret: configuration.secret)
      opts = { "room_channel" => room_channel.to_s, "time_channel" => time_channel.to_s,
               "current_user" => { "uid" => Integer(uid), "uname" => uname.to_s } }
      return opts unless secret

      expires = Time.now.to_i + Integer(expires_in)
      opts.merge("expires" => expires,
                 "token" => auth_token(uid: uid, uname: uname, room_channel: room_channel,
                                       time_channel: time_channel, expires: expires, secret: secret))
    end

    # Who is online in each room with their clientIds, and whose lesson
    # timers run (see FayeOnline::Reports.status).
    def status
      Reports.status(reader)
    end

    # A user's sessions (one per clientId) and, per lesson, their time with
    # overlapping sessions merged, first join and last leave; optionally
    # within from:...to: (Times, Dates or strings).
    def log(user:, from: nil, to: nil)
      Reports.log(reader, user: user, from: from, to: to)
    end

    # Writes by_lesson.csv and by_user.csv (time from the login log), and
    # attendance.csv and attendance.json (the lessons scheduled in the
    # range, times in time_zone:) into dir:; returns their paths.
    def report(dir:, from: nil, to: nil, time_zone: "UTC")
      Reports.report(reader, dir: dir, from: from, to: to, time_zone: time_zone, thresholds: configuration.attendance)
    end

    # The records the database refused for good (a value too long for its
    # column, a name its charset cannot hold), set aside so that they block
    # nothing else: [{"id" => 1, "record" => "{...}", "error" => "...",
    # "created_at" => "..."}, ...].
    def failed_records
      reader.failed_records
    end

    # Writes the records set aside again, once their cause is fixed;
    # returns [written, still failing].
    def replay_failed
      reader.replay_failed
    end

    # Waits until every change so far is stored (true), or +timeout+ passes.
    def flush(timeout = 10)
      @server ? @server.flush(timeout) : true
    end

    private

    # The read API: the server's when this process runs one, else one on
    # the configured stores.
    def reader
      return @server.query if @server

      @query ||= Reader.new(Native::Query.new(configuration.native_options))
    end
  end
end
