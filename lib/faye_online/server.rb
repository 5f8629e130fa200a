# frozen_string_literal: true

require "json"
require "logger"
require "faye"
require "eventmachine"
require_relative "client_scripts"
require_relative "dashboard"
require_relative "api"
require_relative "demo"
require_relative "memory_engine"
require_relative "native_engine"
require_relative "redis_engine"
require_relative "delivery_guard"
require_relative "publish_guard"
require_relative "private_channels"

module FayeOnline
  # Wires a native tracker into a Faye::RackAdapter: the tracker is the
  # extension (its incoming hook runs in Rust), Faye's engine events tell it
  # which clientIds live here and who subscribed to what, and publications
  # the tracker queues are sent from the reactor when its wake-up socket
  # becomes readable. This class makes every call of the tracker's; the
  # read API is #query's (a Reader).
  class Server
    attr_reader :adapter, :tracker, :query, :config, :logger, :dashboard

    # Faye before 1.2.5 handled some channels as meta channels without
    # running extensions on them (CVE-2020-11020).
    MINIMUM_FAYE = Gem::Version.new("1.2.5")

    def initialize(config)
      if Gem::Version.new(Faye::VERSION) < MINIMUM_FAYE
        raise ConfigurationError, "faye-online needs Faye #{MINIMUM_FAYE} or later, not #{Faye::VERSION}"
      end

      @config = config
      @logger = config.logger || default_logger
      @tracker = Native::Tracker.new(config.native_options)
      @query = Reader.new(@tracker._query)
      @dashboard = Dashboard.new(self, Demo.new(config, ClientScripts.new))
      @api = Api.new(self, @dashboard)
      may_receive = ->(client_id, channel) { @tracker._may_receive(client_id, channel) }
      @private_channels = PrivateChannels.new(config.private_channels, config.secret)
      guard = DeliveryGuard.new(may_receive, @dashboard, secret: config.secret, private_channels: @private_channels)
      created = ->(proxy, faye_engine) { @engine, @faye_engine = proxy, faye_engine }
      engine = if config.engine == :redis
                 { type: RedisEngine, tracker: @tracker, guard: guard, logger: @logger, created: created,
                   collected: ->(client_id, last_ping) { @tracker._client_vanished(client_id, last_ping) } }
               elsif config.engine == :faye_memory
                 { type: MemoryEngine, guard: guard, created: created }
               else
                 { type: NativeEngine, guard: guard, created: created }
               end
      @adapter = Faye::RackAdapter.new(@api, mount: config.mount, timeout: config.timeout, engine: engine)
      if @faye_engine.is_a?(RedisEngine)
        @private_channels.engine = @faye_engine
        @dashboard.engine = @faye_engine
      end
      @pending = {} # clientId => [[message, queued at], ...], awaiting a connection
      @closed = false
      @events = FayeOnline.events
      @events.logger ||= @logger
      start_webhook
      attach
    end

    # The webhook sender, when webhook_url: is set.
    attr_reader :webhook

    # The Faye engine (Faye::Engine::Proxy) behind the adapter.
    attr_reader :engine

    # The engine the proxy drives: a NativeEngine, a MemoryEngine or a
    # RedisEngine.
    attr_reader :faye_engine

    # Waits until every change so far is in the hot store and in SQL.
    def flush(timeout = 10)
      @tracker._flush(timeout)
    end

    # Flushes and stops the tracker's threads; later messages pass untracked.
    def close(timeout = 10)
      return true if @closed

      @closed = true
      ok = @tracker._close(timeout)
      drain
      @logger.warn("faye-online: closed before every record was written") unless ok
      close_webhook
      ok
    end

    private

    def start_webhook
      return unless @config.webhook_url

      @webhook = Webhook.new(url: @config.webhook_url, secret: @config.webhook_secret,
                             delay: @config.webhook_delay, logger: @logger)
      @events.on(:any, @webhook)
    end

    # The events already made are handed over and sent (up to 5 s each).
    def close_webhook
      return unless @webhook

      @events.drain(5)
      @webhook.close(5)
      @events.off(@webhook)
    end

    # The log goes to standard output unbuffered: a server whose output is
    # a file or a pipe (systemd, Docker, `bin/dev > log`) says what goes
    # wrong at once, not when it exits (or never, when it is killed). The
    # logger writes through its own descriptor, so the app's $stdout is
    # left as it was.
    def default_logger
      out = $stdout.dup
      out.sync = true
      logger = Logger.new(out)
      logger.progname = "faye-online"
      logger
    end

    def attach
      @adapter.add_extension(@tracker)
      @adapter.add_extension(@private_channels) if @private_channels.any?
      if @config.server_token || @config.server_publish.any? || @private_channels.any?
        @adapter.add_extension(PublishGuard.new(@config.server_publish, @config.server_token, @private_channels))
      end
      @adapter.add_extension(@dashboard.guard) if @dashboard.enabled?
      @adapter.add_extension(RefusalAdvice)
      @adapter.add_extension(@faye_engine) if @faye_engine.is_a?(RedisEngine)
      @adapter.bind(:handshake) { |client_id| safely { @tracker._handshake(client_id) } }
      @adapter.bind(:subscribe) do |client_id, channel|
        safely do
          @tracker._subscribed(client_id, channel)
          @dashboard.subscribed(client_id, channel)
        end
      end
      @adapter.bind(:unsubscribe) do |client_id, channel|
        safely do
          @tracker._unsubscribed(client_id, channel)
          @dashboard.unsubscribed(client_id, channel)
        end
      end
      @adapter.bind(:disconnect) do |client_id|
        safely do
          # Faye has already sent :unsubscribe for each of its channels.
          @pending.delete(client_id)
          @private_channels.forget(client_id)
          @tracker._session_ended(client_id)
        end
      end
      watch_waker
      at_exit { close }
    end

    # Runs a handler of Faye's events, which Faye calls on the reactor:
    # nothing may escape from it, or Faye stops serving.
    def safely
      yield
    rescue StandardError => e
      @logger.error("faye-online: #{e.class}: #{e.message}")
    end

    # Registers the wake-up socket with EventMachine once the reactor runs
    # (thin starts it after loading faye.ru).
    def watch_waker
      fd = @tracker._waker_fd
      return unless fd

      io = IO.for_fd(fd, autoclose: true)
      server = self
      EM.next_tick do
        engine.bind("connection:open") { |client_id| deliver_pending(client_id) }
        # With Faye's engine on Redis, a client destroyed by any process is
        # closed everywhere; that process ended its presence (at its
        # /meta/disconnect, or its last poll anywhere for the collector's).
        if @faye_engine.is_a?(RedisEngine)
          engine.bind(:close) do |client_id|
            safely do
              @tracker._forget_client(client_id)
              @private_channels.forget(client_id)
              @dashboard.unsubscribed(client_id, Dashboard::CHANNEL)
            end
          end
        end
        conn = EM.watch(io, Waker, server)
        conn.notify_readable = true
        drain
      end
    end

    # Reads every wake-up byte, then does what the tracker queued.
    # (It runs for every wake-up, so it reads without raising.)
    def on_readable(io)
      loop do
        chunk = io.read_nonblock(4096, exception: false)
        break unless chunk.is_a?(String) && chunk.bytesize == 4096
      end
      drain
    end

    public :on_readable

    def drain
      @tracker._drain.each { |notification| handle(notification) }
      expire_pending
    rescue StandardError => e
      # Nothing may escape into the reactor: it would stop every client.
      @logger.error("faye-online: #{e.class}: #{e.message}")
    end

    def handle(notification)
      case notification
      when Native::Publication then publish(notification)
      when Native::Delivery then deliver(notification)
      when Native::LogLine then @logger.public_send(notification.level, notification.text)
      when Native::Event then @events.push(notification.data) if @events.listening?
      when Native::EngineReply then @faye_engine.reply(notification)
      end
    end

    def publish(publication)
      channel = publication.channel
      ping = @dashboard.enabled? && channel.end_with?("/user_changes")
      # Most changes have no subscriber in a given process: skip the work.
      return unless ping || subscribed_here?(channel)

      data = publication.data
      engine.publish("channel" => channel, "data" => data)
      @dashboard.changed(channel.delete_suffix("/user_changes"), data) if ping
    end

    def deliver(delivery)
      message = { "channel" => delivery.channel, "data" => delivery.data }
      client_id = delivery.client_id
      return @faye_engine.enqueue(client_id, [message]) if @faye_engine.is_a?(RedisEngine)

      (@pending[client_id] ||= []) << [message, Time.now] unless engine.deliver(client_id, [message])
    end

    # Whether a client of this process subscribed to `channel` (or to a
    # pattern matching it).
    def subscribed_here?(channel)
      @faye_engine.subscribers?(channel)
    end

    # Snapshots for a client between two polls wait for its next poll, all
    # of them, in order.
    def deliver_pending(client_id)
      entries = @pending.delete(client_id)
      engine.deliver(client_id, entries.map(&:first)) if entries
    rescue StandardError => e
      @logger.error("faye-online: #{e.class}: #{e.message}")
    end

    def expire_pending
      return if @pending.empty?

      limit = Time.now - 2 * @config.timeout
      @pending.delete_if do |_, entries|
        entries.reject! { |(_, at)| at < limit }
        entries.empty?
      end
    end

    # EventMachine handler for the wake-up socket.
    module Waker
      def initialize(server)
        @server = server
      end

      def notify_readable
        @server.on_readable(@io)
      end
    end
  end
end
