# frozen_string_literal: true

require "json"
require "faye"
require_relative "clock"

module FayeOnline
  # Faye's engine on Redis, given to Faye as its engine type when Redis is
  # configured: clients, subscriptions and message queues live in Redis in
  # the layout of Faye's own Redis engines (faye-redis for Ruby and
  # Node.js), so that every Faye process of a site, of either kind, serves
  # any client. The work is the Rust core's (`Native::Tracker#_engine_*`):
  # each call here only queues an operation, and the answers come back on
  # the reactor through the tracker's wake-up socket (#reply).
  #
  # Every delivery is authorized here as in MemoryEngine: a message on a
  # protected channel reaches a client only if +options[:guard]+ allows it.
  # What a client showed a token for in any process (its grants) is kept
  # in Redis beside it (#grant), and comes with its messages, so that the
  # process that delivers them knows it without waiting on Redis.
  class RedisEngine
    # The longest clientId taken from a message (Faye's are 31 characters;
    # faye-redis for Node.js makes ids of the same kind).
    MAX_CLIENT_ID = 128

    def self.create(proxy, options)
      engine = new(proxy, options)
      options[:created]&.call(proxy, engine)
      engine
    end

    def initialize(proxy, options)
      @server = proxy
      @tracker = options.fetch(:tracker)
      @guard = options[:guard]
      @collected = options[:collected]
      @logger = options[:logger]
      @callbacks = {}
      @ticket = 0
      @connecting = {} # clientIds whose /meta/connect is on its way in
      @pinged = nil # the clientId whose connect's check pinged it, while Faye connects it
      @taken = {} # clientId => messages taken with its connect's check
      @held = {} # [clientId, id, channel] => publications on their way to Redis (see #publish)
      proxy.bind("connection:open") { |client_id| @tracker._engine_connection(client_id, true) }
      proxy.bind("connection:close") { |client_id| @tracker._engine_connection(client_id, false) }
    end

    # Callbacks waiting for Redis (for stats and tests).
    def waiting
      @callbacks.size
    end

    def create_client(&callback)
      client_id = @server.generate_id
      submit(callback, :create) { |ticket| @tracker._engine_create_client(ticket, client_id) }
    end

    # A /meta/connect's check also pings the client and takes what waits
    # for it, in one call, so that its answer carries it (even a poll that
    # asks for no wait).
    def client_exists(client_id, &callback)
      return callback&.call(false) unless client_id?(client_id)

      take = !@connecting.delete(client_id).nil?
      submit(callback, take ? :connect : :exists) { |ticket| @tracker._engine_client_exists(ticket, client_id, take) }
    end

    # As a Faye extension (after faye-online's own): notes which clientIds
    # are connecting, for #client_exists. What Faye does not go on to check
    # is forgotten on the next tick.
    def incoming(message, callback)
      if message["channel"] == "/meta/connect" && !message.key?("error") && client_id?(message["clientId"])
        EM.next_tick { @connecting.clear } if @connecting.empty?
        @connecting[message["clientId"]] = true
      end
      callback.call(message)
    end

    # Publications whose answers wait for Redis, before old ones are
    # looked for and forgotten.
    MAX_HELD = 10_000

    UNAVAILABLE = "503::Redis is unavailable; try again in a moment"
    RETRY = { "reconnect" => "retry", "interval" => 1000 }.freeze

    # As a Faye extension: an answer Faye made from an operation that
    # could not reach Redis says so (503, with advice to retry in a second),
    # rather than "unknown client" (which would make the client start over
    # as a new one) or a handshake without a clientId.
    def outgoing(message, callback)
      return if hold(message, callback)

      channel = message["channel"]
      failed = if channel == "/meta/handshake"
                 message["successful"] && message["clientId"].nil?
               else
                 message["error"].to_s.start_with?("401:") && @tracker._engine_down?
               end
      if failed
        message["successful"] = false
        message["error"] = UNAVAILABLE
        message["advice"] = RETRY.dup
        message.delete("clientId") if channel == "/meta/handshake"
      end
      callback.call(message)
    end

    def destroy_client(client_id, &callback)
      return callback&.call unless client_id?(client_id)

      submit(callback, :destroy) { |ticket| @tracker._engine_destroy_client(ticket, client_id) }
    end

    # Faye pings a client as it connects, right after its check: a
    # connect's check has pinged it already.
    def ping(client_id)
      return if client_id == @pinged
      return unless client_id?(client_id) && @server.timeout.is_a?(Numeric)

      @tracker._engine_ping(client_id)
    end

    def subscribe(client_id, channel, &callback)
      return callback&.call unless client_id?(client_id) && channel.is_a?(String)

      submit(callback, :subscribe) { |ticket| @tracker._engine_subscribe(ticket, client_id, channel) }
    end

    def unsubscribe(client_id, channel, &callback)
      return callback&.call unless client_id?(client_id) && channel.is_a?(String)

      submit(callback, :subscribe) { |ticket| @tracker._engine_unsubscribe(ticket, client_id, channel) }
    end

    def publish(message, channels)
      # A page's state is the server's alone (the extension handled it).
      return if message["channel"] == PAGE_STATE_CHANNEL

      @server.debug("Publishing message ?", message)
      json = JSON.generate(message)
      names = channels.map(&:to_s)
      key = answer_key(message)
      if key
        # A client's publication: Faye answers it right after this call;
        # #outgoing holds that answer until the message is in Redis, so
        # that the client's next publication, through whichever process,
        # is queued after it.
        forget_unanswered if @held.size > MAX_HELD
        publication = { done: nil, answer: nil, at: Clock.monotonic }
        (@held[key] ||= []) << publication
        submit(->(ok = true) { published(publication, ok) }, :publish) { |ticket| @tracker._engine_publish(ticket, json, names) }
      elsif !@tracker._engine_publish(0, json, names)
        @logger&.warn("faye-online: a message on #{message['channel']} was not published: Faye's engine is behind or stopped")
      end
      @server.trigger(:publish, message["clientId"], message["channel"], message["data"])
    rescue JSON::GeneratorError, EncodingError => e
      @logger&.warn("faye-online: a message on #{message['channel']} could not be published: #{e.message}")
    end

    # Queues +messages+ for one client, wherever it polls (presence's
    # snapshots for a new subscriber).
    def enqueue(client_id, messages)
      @tracker._engine_enqueue(client_id, messages.map { |m| JSON.generate(m) })
    end

    def empty_queue(client_id)
      return unless @server.has_connection?(client_id)

      taken = @taken.delete(client_id)
      deliver(taken) if taken
      @tracker._engine_empty_queue(client_id)
    end

    def disconnect; end

    # Records, for every process, what +client_id+ showed a valid token
    # for ("channel:<name>", "uid:<uid>", "dashboard"; the tracker records
    # "room:<room>" itself). Called before Faye subscribes the client, so
    # the grant is in Redis before any message the subscription brings.
    def grant(client_id, grants)
      return false unless client_id?(client_id) && !grants.empty?

      @tracker._engine_grant(client_id, grants.map(&:to_s))
    end

    # Yields +client_id+'s grants (an Array of String) once Redis answers,
    # or nil if it cannot be asked now. Never waits on the reactor.
    def grants(client_id, &block)
      return block.call([]) unless client_id?(client_id)

      submit(block, :grants) { |ticket| @tracker._engine_grants(ticket, client_id) }
    end

    # Whether a client of this process subscribed to +channel+: subscribers
    # live in Redis, so any publication may have some.
    def subscribers?(_channel)
      true
    end

    # An answer from the core (Native::EngineReply), on the reactor.
    def reply(reply)
      case reply.kind
      when :messages then deliver(reply)
      when :closed then @server.trigger(:close, reply.client_id)
      when :failed then failed(reply)
      else answer(reply)
      end
    end

    private

    # The key that pairs a client's publication with Faye's answer to it.
    def answer_key(message)
      id = message["id"]
      client_id = message["clientId"]
      return nil unless id && client_id?(client_id)

      [client_id, id, message["channel"]]
    end

    # Holds Faye's answer to a publication until the publication is in
    # Redis. True when it did (the answer goes now or once Redis took it);
    # false for any other message.
    def hold(message, callback)
      return false if message["channel"].to_s.start_with?("/meta/")

      key = answer_key(message)
      list = key && @held[key]
      return false unless list

      publication = list.shift
      @held.delete(key) if list.empty?
      return answer_publication(message, publication[:done], callback) unless publication[:done].nil?

      publication[:answer] = -> { answer_publication(message, publication[:done], callback) }
      true
    end

    # Publications whose answer never came this way (another extension
    # dropped it) are forgotten after a minute.
    def forget_unanswered
      stale = Clock.monotonic - 60
      @held.delete_if do |_, list|
        list.reject! { |publication| publication[:at] < stale }
        list.empty?
      end
    end

    def published(publication, ok)
      publication[:done] = ok
      publication[:answer]&.call
    end

    # The answer to a publication once Redis took it, or a 503 (with advice
    # to retry) when it could not.
    def answer_publication(message, ok, callback)
      unless ok
        message["successful"] = false
        message["error"] = UNAVAILABLE
        message["advice"] = RETRY.dup
      end
      callback.call(message)
      true
    end

    def client_id?(client_id)
      client_id.is_a?(String) && !client_id.empty? && client_id.bytesize <= MAX_CLIENT_ID
    end

    # Queues an op with a ticket for its callback (+kind+ says how to
    # answer it if it fails). An op the core cannot take now fails at once.
    def submit(callback, kind)
      @ticket += 1
      ticket = @ticket
      @callbacks[ticket] = [callback, kind] if callback
      return if yield(ticket)

      @logger&.warn("faye-online: Faye's engine is behind or stopped; an operation was refused")
      fail_ticket(ticket)
    end

    def failed(reply)
      @logger&.warn("faye-online: Faye's engine: #{reply.error}") unless @tracker._engine_down?
      fail_ticket(reply.ticket)
    end

    # Answers a callback whose op failed so that Faye answers its client
    # at once; #outgoing turns that answer into a 503.
    def fail_ticket(ticket)
      callback, kind = @callbacks.delete(ticket)
      return unless callback

      case kind
      when :publish then callback.call(false)
      when :create, :grants then callback.call(nil)
      when :exists, :connect then callback.call(false)
      else callback.call
      end
    end

    def answer(reply)
      callback, kind = reply.ticket.zero? ? nil : @callbacks.delete(reply.ticket)
      client_id = reply.client_id
      case reply.kind
      when :created
        return create_client(&callback) unless reply.flag

        @server.debug("Created new client ?", client_id)
        @server.trigger(:handshake, client_id)
        callback&.call(client_id)
      when :exists
        keep_taken(reply) if reply.flag
        # Faye's connect pings the client from within the callback.
        @pinged = client_id if reply.flag && kind == :connect
        begin
          callback&.call(reply.flag)
        ensure
          @pinged = nil
        end
      when :subscribed
        @server.trigger(:subscribe, client_id, reply.channel) if reply.flag
        callback&.call(true)
      when :unsubscribed
        @server.trigger(:unsubscribe, client_id, reply.channel) if reply.flag
        callback&.call(true)
      when :grants
        callback&.call(reply.grants)
      when :published
        callback&.call(true)
      when :destroyed
        reply.channels.each { |channel| @server.trigger(:unsubscribe, client_id, channel) }
        # The collector's: the client stopped polling every process.
        @collected&.call(client_id, reply.last_ping) if reply.ticket.zero? && reply.flag && reply.last_ping
        if reply.flag
          @server.debug("Destroyed client ?", client_id)
          @server.trigger(:disconnect, client_id)
        end
        callback&.call
      end
    end

    # Messages taken with a connect's check wait for the connection Faye
    # opens right after (#empty_queue); if none opens in this tick, they
    # go back to the front of the client's queue.
    def keep_taken(reply)
      return if reply.messages.empty?

      client_id = reply.client_id
      @taken[client_id] = reply
      EM.next_tick do
        left = @taken.delete(client_id)
        @tracker._engine_requeue(left) if left
      end
    end

    # Messages taken from Redis for a client connected here. One it may
    # not receive (by this process's tables and the grants that came with
    # the messages) is dropped; if its connection closed meanwhile, they
    # go back to the front of its queue for its next poll, here or
    # elsewhere.
    def deliver(reply)
      client_id = reply.client_id
      messages = reply.messages
      if @guard
        grants = nil
        messages.select! do |m|
          next true unless @guard.protected?(m["channel"])

          grants ||= reply.grants
          @guard.allowed?(client_id, m["channel"], grants)
        end
      end
      return if messages.empty?
      return if @server.deliver(client_id, messages)

      @tracker._engine_requeue(reply)
    end
  end
end
