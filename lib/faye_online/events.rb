# frozen_string_literal: true

require_relative "clock"

module FayeOnline
  # Presence events for the app's own code:
  #
  #   FayeOnline.on(:left) { |event| Attendance.left(event["user"]["uid"], event["room"]) }
  #
  # The kinds are :joined and :left (a user came online in a room, or went
  # offline: their first tab came, their last one left or vanished),
  # :occupied and :vacated (a room's first user came, its last one left),
  # :time_credited (a user's session in a lesson ended and its time is
  # written to SQL; "seconds" says how much; it comes once the row is in,
  # so after what presence told meanwhile), and :any for all of them. Each
  # event is a Hash: "event", "room", "lesson", "user" ({"uid", "uname"}),
  # "at" (ISO 8601, UTC) and "at_ms"; :time_credited adds "started_at",
  # "started_ms" and "seconds". Events are frozen: one callback cannot
  # change what the next one sees.
  #
  # The Rust core makes each event once, in the process whose presence
  # worker applied the change. The reactor only queues it: callbacks run on
  # a thread of their own, one event after another, in order. A callback
  # that raises is logged and the others still run; a slow one delays only
  # the events after it. Past MAX_QUEUED waiting events new ones are
  # dropped, and the drops are logged (the first, then every 10,000th).
  class Events
    KINDS = %i[joined left occupied vacated time_credited].freeze
    MAX_QUEUED = 100_000

    attr_accessor :logger

    def initialize(logger: nil)
      @logger = logger
      @lock = Mutex.new
      @handlers = [] # [kind, callable]
      @queue = Queue.new
      @thread = nil
      @dropped = 0
      @pushed = 0 # events queued, and handled, so far
      @handled = 0
    end

    # Calls +callable+ (or the block) with each event of +kind+ (one of
    # KINDS, or :any). Returns the callable, for #off.
    def on(kind, callable = nil, &block)
      kind = kind.to_sym
      unless kind == :any || KINDS.include?(kind)
        raise ArgumentError, "unknown event #{kind.inspect}; known: #{(KINDS + [:any]).map(&:inspect).join(', ')}"
      end

      handler = callable || block
      raise ArgumentError, "FayeOnline.on(#{kind.inspect}) needs a block or a callable" unless handler.respond_to?(:call)

      @lock.synchronize { @handlers = @handlers + [[kind, handler]] }
      handler
    end

    # Stops calling +handler+.
    def off(handler)
      @lock.synchronize { @handlers = @handlers.reject { |_, h| h.equal?(handler) } }
      nil
    end

    def listening?
      !@handlers.empty?
    end

    # Queues an event (a Hash with "event") for the callbacks; never blocks.
    # Called on the reactor.
    def push(event)
      return unless listening?

      if @queue.size >= MAX_QUEUED
        @dropped += 1
        log(:error, "faye-online: event callbacks are #{MAX_QUEUED} events behind; dropped #{@dropped} so far") if
          @dropped == 1 || (@dropped % 10_000).zero?
        return
      end
      @queue << deep_freeze(event)
      @pushed += 1
      start
    end

    # Waits up to +timeout+ seconds for the queued events to be handled.
    def drain(timeout = 5)
      deadline = Clock.monotonic + timeout
      sleep 0.01 while @handled < @pushed && Clock.monotonic < deadline
      @handled >= @pushed
    end

    private

    # Every callback (and the webhook) gets the same event: none may change
    # what the others see.
    def deep_freeze(value)
      case value
      when Hash then value.each_value { |v| deep_freeze(v) }
      when Array then value.each { |v| deep_freeze(v) }
      end
      value.freeze
    end

    def start
      return if @thread&.alive?

      @lock.synchronize do
        next if @thread&.alive?

        @thread = Thread.new { run }
        @thread.name = "faye-online events" if @thread.respond_to?(:name=)
      end
    end

    def run
      loop do
        event = @queue.pop
        begin
          dispatch(event)
        ensure
          @handled += 1
        end
      end
    end

    def dispatch(event)
      kind = event["event"].to_s.to_sym
      @handlers.each do |on, handler|
        next unless on == :any || on == kind

        begin
          handler.call(event)
        rescue Exception => e # a callback must never end the thread
          log(:error, "faye-online: a #{kind} callback raised #{e.class}: #{e.message} " \
                      "(#{Array(e.backtrace).first(3).join(' < ')})")
        end
      end
    end

    def log(level, text)
      (@logger || default_logger).public_send(level, text)
    end

    def default_logger
      @default_logger ||= begin
        require "logger"
        Logger.new($stderr).tap { |l| l.progname = "faye-online" }
      end
    end
  end
end
