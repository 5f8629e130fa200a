# frozen_string_literal: true

require "faye"
require "eventmachine"

module FayeOnline
  # faye-online's memory engine, for one process (`engine: :memory`, the
  # default without Redis): Faye's memory engine with its bookkeeping in
  # the Rust core (Native::MemoryEngine). Which clients exist, what each
  # subscribed to, the subscribers of each channel with wildcards expanded,
  # and when each client times out live there; a ping stores one number
  # instead of cancelling and making an EventMachine timer, and one timer
  # a second collects the clients whose time ran out. The message queues
  # stay here, as Faye's objects.
  #
  # It keeps Faye's engine contract (spec/integration/engine_contract_spec.rb
  # runs it beside Faye's own engine and the engine on Redis) and, like
  # MemoryEngine, authorizes every delivery: a publication on a channel
  # that +options[:guard]+ protects reaches only the subscribers the guard
  # allows.
  class NativeEngine
    # The longest clientId kept (Faye's are 31 characters).
    MAX_CLIENT_ID = 128

    def self.create(proxy, options)
      engine = new(proxy, options)
      options[:created]&.call(proxy, engine)
      engine
    end

    def initialize(proxy, options)
      @server = proxy
      @guard = options[:guard]
      @state = Native::MemoryEngine.new
      @messages = {} # clientId => messages waiting for its next connection
      @sweeper = nil
    end

    # How many clients exist (for stats and tests).
    def size
      @state.size
    end

    def create_client(&callback)
      client_id = @server.generate_id
      client_id = @server.generate_id until @state.create(client_id)
      ping(client_id)
      @server.trigger(:handshake, client_id)
      callback&.call(client_id)
    end

    def destroy_client(client_id, &callback)
      channels = client_id?(client_id) ? @state.destroy(client_id) : nil
      if channels
        channels.each { |channel| @server.trigger(:unsubscribe, client_id, channel) }
        @messages.delete(client_id)
        @server.trigger(:disconnect, client_id)
        @server.trigger(:close, client_id)
      end
      callback&.call
    end

    def client_exists(client_id, &callback)
      callback.call(client_id?(client_id) && @state.exists?(client_id))
    end

    # The client times out twice Faye's timeout from now.
    def ping(client_id)
      timeout = @server.timeout
      return unless timeout.is_a?(Numeric) && client_id?(client_id)

      @state.ping(client_id, (2000 * timeout).round)
      sweep_every_second
    end

    def subscribe(client_id, channel, &callback)
      @server.trigger(:subscribe, client_id, channel) if names?(client_id, channel) && @state.subscribe(client_id, channel)
      callback&.call(true)
    end

    def unsubscribe(client_id, channel, &callback)
      @server.trigger(:unsubscribe, client_id, channel) if names?(client_id, channel) && @state.unsubscribe(client_id, channel)
      callback&.call(true)
    end

    # Queues a copy of +message+ for each client it reaches (the core
    # expands the channel itself, as Faye does in +channels+), and
    # delivers at once to those with an open connection.
    def publish(message, _channels)
      channel = message["channel"]
      # A page's state is the server's alone (the extension handled it).
      return if channel == PAGE_STATE_CHANNEL || !channel.is_a?(String) || !channel.valid_encoding?

      guarded = @guard&.protected?(channel)
      @state.recipients(channel).each do |client_id|
        next if guarded && !@guard.allowed?(client_id, channel)

        (@messages[client_id] ||= []) << Faye.copy_object(message)
        empty_queue(client_id)
      end
      @server.trigger(:publish, message["clientId"], channel, message["data"])
    end

    def empty_queue(client_id)
      return unless @server.has_connection?(client_id)

      messages = @messages.delete(client_id)
      @server.deliver(client_id, messages) if messages
    end

    # Whether a client of this process subscribed to +channel+ or to a
    # pattern matching it.
    def subscribers?(channel)
      channel.is_a?(String) && channel.valid_encoding? && @state.subscribers?(channel)
    end

    def disconnect
      @sweeper&.cancel
      @sweeper = nil
      @state.clear
      @messages.clear
    end

    private

    def client_id?(client_id)
      client_id.is_a?(String) && client_id.bytesize <= MAX_CLIENT_ID && client_id.valid_encoding?
    end

    def names?(client_id, channel)
      client_id?(client_id) && channel.is_a?(String) && channel.valid_encoding?
    end

    # Destroys, once a second, the clients whose time ran out (Faye's
    # memory engine destroys each at its own timer; a second later at most
    # changes nothing a client can see, as Faye's timeout is 2 × its poll).
    def sweep_every_second
      return if @sweeper

      @sweeper = EM::PeriodicTimer.new(1) { collect }
    end

    # Destroys each timed-out client on its own: a listener of Faye's
    # events that raises for one (the client is gone by then) neither
    # stops the reactor nor leaves the others uncollected.
    def collect
      @state.expired.each do |client_id|
        destroy_client(client_id)
      rescue StandardError => e
        @server.error("faye-online: collecting #{client_id}: #{e.class}: #{e.message}") if @server.respond_to?(:error)
      end
    end
  end
end
