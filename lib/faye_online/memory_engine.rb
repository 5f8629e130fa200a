# frozen_string_literal: true

require "faye"
require "set"

module FayeOnline
  # Faye's memory engine, given to Faye as its engine type so that the
  # server gets what it needs without reaching into Faye's objects: the
  # engine proxy (to publish and deliver from the reactor), handed to
  # +options[:created]+ when Faye builds the engine, and whether a channel
  # has a subscriber in this process.
  #
  # It also authorizes every delivery: a publication on a channel that
  # +options[:guard]+ protects reaches only the subscribers the guard
  # allows, whatever form of subscription brought it to them (a wildcard,
  # a pattern, a long list). Checking at delivery cannot be walked around,
  # as checking subscriptions alone can.
  class MemoryEngine < Faye::Engine::Memory
    def self.create(proxy, options)
      engine = super
      options[:created]&.call(proxy, engine)
      engine
    end

    def initialize(proxy, options)
      super
      @guard = options[:guard]
    end

    # Whether a client of this process subscribed to +channel+ or to a
    # pattern matching it.
    def subscribers?(channel)
      Faye::Channel.expand(channel).any? { |name| @channels.key?(name) }
    end

    def publish(message, channels)
      channel = message["channel"]
      # A page's state is the server's alone (the extension handled it).
      return if channel == PAGE_STATE_CHANNEL
      return super unless @guard&.protected?(channel)

      @server.debug("Publishing message ?", message)
      clients = Set.new
      channels.each { |name| @channels[name]&.each { |client_id| clients << client_id } }
      clients.each do |client_id|
        next unless @guard.allowed?(client_id, channel)

        (@messages[client_id] ||= []) << Faye.copy_object(message)
        empty_queue(client_id)
      end
      @server.trigger(:publish, message["clientId"], channel, message["data"])
    end
  end
end
