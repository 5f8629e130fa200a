# frozen_string_literal: true

require "json"
require "logger"
require "faye"
require "eventmachine"
require_relative "client_scripts"
require_relative "dashboard"

module FayeOnline
  # Wires a native tracker into a Faye::RackAdapter: the tracker is the
  # extension (its incoming hook runs in Rust), Faye's engine events tell it
  # which clientIds live here and who subscribed to what, and publications the tracker queues are sent
  # from the reactor when its wake-up socket becomes readable.
  class Server
    attr_reader :adapter, :tracker, :config, :logger, :dashboard

    def initialize(config)
      @config = config
      @logger = config.logger || default_logger
      @tracker = Native::Tracker.new(config.native_json)
      @dashboard = Dashboard.new(self, ClientScripts.new)
      @adapter = Faye::RackAdapter.new(@dashboard, mount: config.mount, timeout: config.timeout)
      @pending = {} # clientId => [message, queued at], awaiting a connection
      @closed = false
      attach
    end

    # The Faye engine (Faye::Engine::Proxy) behind the adapter.
    def engine
      @engine ||= @adapter.instance_variable_get(:@server).engine
    end

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
      ok
    end

    private

    def default_logger
      logger = Logger.new($stdout)
      logger.progname = "faye-online"
      logger
    end

    def attach
      @adapter.add_extension(@tracker)
      @adapter.add_extension(@dashboard.guard) if @dashboard.enabled?
      @adapter.bind(:handshake) { |client_id| @tracker._handshake(client_id) }
      @adapter.bind(:subscribe) { |client_id, channel| @tracker._subscribed(client_id, channel) }
      @adapter.bind(:disconnect) do |client_id|
        @pending.delete(client_id)
        @tracker._session_ended(client_id)
      end
      watch_waker
      at_exit { close }
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
        conn = EM.watch(io, Waker, server)
        conn.notify_readable = true
        drain
      end
    end

    # Reads every wake-up byte, then does what the tracker queued.
    def on_readable(io)
      loop { io.read_nonblock(4096) }
    rescue IO::WaitReadable, EOFError
      drain
    end

    public :on_readable

    def drain
      @tracker._drain.each { |kind, target, data| handle(kind, target, data) }
      expire_pending
    rescue StandardError => e
      # Nothing may escape into the reactor: it would stop every client.
      @logger.error("faye-online: #{e.class}: #{e.message}")
    end

    def handle(kind, target, data)
      case kind
      when "publish"
        ping = @dashboard.enabled? && target.end_with?("/user_changes")
        # Most changes have no subscriber in a given process: skip the work.
        return unless ping || subscribed_here?(target)

        parsed = JSON.parse(data)
        engine.publish("channel" => target, "data" => parsed)
        @dashboard.changed(target.delete_suffix("/user_changes"), parsed) if ping
      when "deliver"
        client_id, channel = target.split(" ", 2)
        message = { "channel" => channel, "data" => JSON.parse(data) }
        @pending[client_id] = [message, Time.now] unless engine.deliver(client_id, [message])
      when "info", "warn", "error"
        @logger.public_send(kind, target)
      end
    end

    # Whether a client of this process subscribed to `channel` (or to a
    # pattern matching it). True when the engine is not Faye's memory
    # engine, whose subscriptions cannot be seen.
    def subscribed_here?(channel)
      inner = engine.instance_variable_get(:@engine)
      channels = inner.instance_variable_get(:@channels) if inner.is_a?(Faye::Engine::Memory)
      return true unless channels.is_a?(Hash)

      Faye::Channel.expand(channel).any? { |name| channels.key?(name) }
    end

    # A snapshot for a client between two polls waits for its next poll.
    def deliver_pending(client_id)
      entry = @pending.delete(client_id)
      engine.deliver(client_id, [entry.first]) if entry
    rescue StandardError => e
      @logger.error("faye-online: #{e.class}: #{e.message}")
    end

    def expire_pending
      return if @pending.empty?

      limit = Time.now - 2 * @config.timeout
      @pending.delete_if { |_, (_, at)| at < limit }
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
