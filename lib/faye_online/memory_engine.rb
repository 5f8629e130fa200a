# frozen_string_literal: true

require "faye"

module FayeOnline
  # Faye's memory engine, given to Faye as its engine type so that the
  # server gets what it needs without reaching into Faye's objects: the
  # engine proxy (to publish and deliver from the reactor), handed to
  # +options[:created]+ when Faye builds the engine, and whether a channel
  # has a subscriber in this process.
  class MemoryEngine < Faye::Engine::Memory
    def self.create(proxy, options)
      engine = super
      options[:created]&.call(proxy, engine)
      engine
    end

    # Whether a client of this process subscribed to +channel+ or to a
    # pattern matching it.
    def subscribers?(channel)
      Faye::Channel.expand(channel).any? { |name| @channels.key?(name) }
    end
  end
end
