# frozen_string_literal: true

require "json"
require "net/http"
require "openssl"
require "securerandom"
require "uri"
require_relative "clock"

module FayeOnline
  # Sends presence events to the app's URL (webhook_url:) as JSON batches:
  #
  #   POST <webhook_url>
  #   Content-Type: application/json
  #   X-Faye-Online-Signature: sha256=<hex HMAC-SHA256 of the body with the secret>
  #   X-Faye-Online-Delivery: <the batch's id, the same on every retry>
  #
  #   {"id": "<the batch's id>", "events": [{"event": "left", "room": …}, …]}
  #
  # Each event waits +delay+ seconds first. A user who leaves a room and
  # comes back within it (a page reload, a tab that moved) sends neither
  # the "left" nor the "joined", and a room vacated and occupied again
  # within it sends neither the "vacated" nor the "occupied". A batch the
  # receiver does not take (an error, a status other than 2xx, no answer
  # within the timeouts) is sent again after a back-off of 1 s doubling up
  # to 30 s, with its events first, in order; the first failure and the
  # recovery are logged. Up to MAX_PENDING events wait; past that new ones
  # are dropped and counted in the log. Sending runs on a thread of its
  # own: presence never waits for the receiver.
  class Webhook
    SIGNATURE_HEADER = "X-Faye-Online-Signature"
    DELIVERY_HEADER = "X-Faye-Online-Delivery"
    MAX_PENDING = 10_000
    MAX_BATCH = 500
    MAX_BACKOFF = 30.0
    FLUSH_PAUSE = 0.2
    # A pair whose second event cancels the first when it comes within the
    # delay: the kind that comes first, for each kind.
    CANCELS = { "joined" => "left", "occupied" => "vacated" }.freeze

    # The signature header's value for +body+.
    def self.signature(body, secret)
      "sha256=#{OpenSSL::HMAC.hexdigest('SHA256', secret.to_s, body.to_s)}"
    end

    # The events of a webhook request whose signature is right, else nil:
    #
    #   events = FayeOnline::Webhook.verify(request.raw_post, request.headers["X-Faye-Online-Signature"], secret)
    #
    # The comparison takes the same time whatever the signature holds.
    def self.verify(body, signature, secret)
      return nil if secret.to_s.empty? || signature.to_s.empty?

      expected = signature(body, secret)
      return nil unless expected.bytesize == signature.to_s.bytesize &&
                        OpenSSL.fixed_length_secure_compare(expected, signature.to_s)

      events = JSON.parse(body.to_s)["events"]
      events.is_a?(Array) ? events : nil
    rescue JSON::ParserError, TypeError, NoMethodError
      nil
    end

    attr_reader :url, :delay

    def initialize(url:, secret:, delay: 3.0, logger: nil, open_timeout: 2, read_timeout: 5)
      @url = URI(url.to_s)
      raise ArgumentError, "webhook_url: must be an http:// or https:// URL" unless @url.is_a?(URI::HTTP) && @url.host

      @secret = secret.to_s
      raise ArgumentError, "webhook_url: needs a secret (secret: or webhook_secret:) to sign its requests" if @secret.empty?

      @delay = Float(delay)
      raise ArgumentError, "webhook_delay: must be zero or positive" if @delay.negative?

      @logger = logger
      @open_timeout = open_timeout
      @read_timeout = read_timeout
      @lock = Mutex.new
      @wake = ConditionVariable.new
      @pending = [] # [due (monotonic), event], oldest first
      @inflight = nil # [id, events] being sent
      @flushing = false
      @dropped = 0
      @failing = false
      @closed = false
      @thread = nil
    end

    # Takes an event (a Hash with "event") to send after the delay.
    def call(event)
      @lock.synchronize do
        return if @closed
        return if cancel_pair(event)

        if @pending.size >= MAX_PENDING
          @dropped += 1
          log(:error, "faye-online: webhook receiver #{redacted_url} is #{MAX_PENDING} events behind; " \
                      "dropped #{@dropped} so far") if @dropped == 1 || (@dropped % 10_000).zero?
          return
        end
        @pending << [Clock.monotonic + @delay, event]
        @wake.broadcast
      end
      start
    end

    # Events not sent yet (waiting for their delay, or for the receiver).
    def pending
      @lock.synchronize { @pending.size + (@inflight ? @inflight[1].size : 0) }
    end

    # Sends what is delayed at once, and tries a failing receiver again
    # without waiting for the back-off, for up to +timeout+ seconds; true
    # when nothing is left.
    def flush(timeout = 10)
      deadline = Clock.monotonic + timeout
      @lock.synchronize do
        @flushing = true
        @pending.map! { |_, event| [0, event] }
        @wake.broadcast
      end
      start
      sleep 0.02 while pending.positive? && Clock.monotonic < deadline
      pending.zero?
    ensure
      @lock.synchronize { @flushing = false }
    end

    def close(timeout = 10)
      ok = flush(timeout)
      @lock.synchronize do
        @closed = true
        @wake.broadcast
      end
      @thread&.join(1)
      ok
    end

    private

    # A "joined" that follows a pending "left" of the same user in the same
    # room (or an "occupied" a pending "vacated" of the same room) removes
    # it and is not sent either.
    def cancel_pair(event)
      first = CANCELS[event["event"]]
      return false unless first

      index = @pending.rindex do |_, e|
        e["event"] == first && e["room"] == event["room"] &&
          (first == "vacated" || e.dig("user", "uid") == event.dig("user", "uid"))
      end
      return false unless index

      @pending.delete_at(index)
      true
    end

    def start
      return if @thread&.alive?

      @lock.synchronize do
        next if @thread&.alive? || @closed

        @thread = Thread.new { run }
        @thread.name = "faye-online webhook" if @thread.respond_to?(:name=)
      end
    end

    # A batch, once taken from the queue, is sent as it is (same id, same
    # events) until the receiver takes it; events that come meanwhile wait
    # behind it, and no later event can cancel one of its events.
    def run
      loop do
        batch = next_batch
        return if batch.nil?

        backoff = 1.0
        until deliver(*batch)
          return if wait_backoff(backoff)

          backoff = [backoff * 2, MAX_BACKOFF].min
        end
        @lock.synchronize { @inflight = nil }
      end
    rescue StandardError => e
      log(:error, "faye-online: the webhook thread stopped on #{e.class}: #{e.message}; it starts again with the next event")
    end

    # [id, events]: the due events at the head of the queue (at most
    # MAX_BATCH), taken out of it, once the first is due; nil when closed.
    def next_batch
      @lock.synchronize do
        loop do
          return nil if @closed && @pending.empty?

          now = Clock.monotonic
          if @pending.empty?
            @wake.wait(@lock)
          elsif @pending.first[0] > now
            @wake.wait(@lock, @pending.first[0] - now)
          else
            due = @pending.take_while { |at, _| at <= now }.first(MAX_BATCH)
            @pending.shift(due.size)
            @inflight = [SecureRandom.uuid, due.map { |_, event| event }]
            return @inflight
          end
        end
      end
    end

    # Waits +seconds+ before the next try, or FLUSH_PAUSE when flushed (a
    # receiver that refuses at once is not hammered); true when closed
    # meanwhile (what is still unsent is given up, and logged).
    def wait_backoff(seconds)
      @lock.synchronize do
        started = Clock.monotonic
        deadline = started + seconds
        until Clock.monotonic >= deadline || (@flushing && Clock.monotonic >= started + FLUSH_PAUSE)
          if @closed
            log(:error, "faye-online: webhook receiver #{redacted_url} still fails at close; " \
                        "#{@inflight[1].size + @pending.size} events were not sent")
            return true
          end
          @wake.wait(@lock, [deadline - Clock.monotonic, FLUSH_PAUSE].min)
        end
        false
      end
    end

    def deliver(id, events)
      body = JSON.generate("id" => id, "events" => events)
      request = Net::HTTP::Post.new(@url.request_uri)
      request["Content-Type"] = "application/json"
      request["User-Agent"] = "faye-online webhook"
      request[SIGNATURE_HEADER] = self.class.signature(body, @secret)
      request[DELIVERY_HEADER] = id
      request.body = body
      response = Net::HTTP.start(@url.host, @url.port, use_ssl: @url.scheme == "https",
                                                       open_timeout: @open_timeout, read_timeout: @read_timeout) do |http|
        http.request(request)
      end
      return recovered if response.is_a?(Net::HTTPSuccess)

      failed("answered #{response.code}")
    rescue StandardError, Timeout::Error => e
      failed("#{e.class}: #{e.message}")
    end

    # Logs the first failure of a run of them; false.
    def failed(why)
      unless @failing
        @failing = true
        log(:warn, "faye-online: webhook receiver #{redacted_url} #{why}; events are kept and sent again")
      end
      false
    end

    # Logs the recovery after failures; true.
    def recovered
      if @failing
        @failing = false
        log(:info, "faye-online: webhook receiver #{redacted_url} takes events again")
      end
      true
    end

    def redacted_url
      url = @url.dup
      url.password = "***" if url.password
      url.query = nil
      url.to_s
    end

    def log(level, text)
      @logger&.public_send(level, text)
    end
  end
end
