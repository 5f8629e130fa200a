# frozen_string_literal: true

require "eventmachine"
require "faye"

module FayeOnlineSpec
  # One EventMachine reactor in a background thread for all Faye clients of
  # the test process. Work is handed to it with Reactor.run.
  module Reactor
    @errors = []
    @lock = Mutex.new

    module_function

    def ensure_running
      return if EM.reactor_running?

      @thread = Thread.new { EM.run }
      @thread.report_on_exception = true
      Waiting.wait_for(timeout: 5, message: "the EventMachine reactor to start") { EM.reactor_running? }
      EM.schedule do
        EM.error_handler { |error| @lock.synchronize { @errors << error } }
      end
    end

    # Runs the block on the reactor thread and returns its value here.
    def run(timeout: 5, &block)
      ensure_running
      box = Queue.new
      EM.schedule do
        box << [true, block.call]
      rescue Exception => e # rubocop:disable Lint/RescueException
        box << [false, e]
      end
      Waiting.wait_for(timeout: timeout, message: "the reactor to run a block") { !box.empty? }
      ok, value = box.pop
      raise value unless ok

      value
    end

    # Exceptions raised in reactor callbacks since the last call.
    def take_errors
      @lock.synchronize { @errors.slice!(0..) }
    end
  end

  # A real Faye::Client (websocket or long-polling, as Faye chooses). With
  # `auth`, an extension adds it to every /meta/connect, as the browser client
  # does. It records what arrives on each subscribed channel and the replies to
  # meta messages, for the test thread to read.
  class FayeClient
    class AuthExtension
      def initialize(auth)
        @auth = auth
      end

      def outgoing(message, callback)
        message["auth"] = @auth if message["channel"] == "/meta/connect"
        callback.call(message)
      end
    end

    class Recorder
      def initialize(owner)
        @owner = owner
      end

      def incoming(message, callback)
        @owner.record_meta(message) if message["channel"].to_s.start_with?("/meta/")
        callback.call(message)
      end
    end

    attr_reader :url

    def initialize(url, auth: nil)
      @url = url
      @lock = Mutex.new
      @messages = Hash.new { |hash, channel| hash[channel] = [] }
      @meta = []
      @subscriptions = {}
      @client = Reactor.run do
        client = Faye::Client.new(url)
        client.add_extension(AuthExtension.new(auth)) if auth
        client.add_extension(Recorder.new(self))
        client
      end
    end

    # The clientId of the latest successful handshake (nil before it).
    def client_id
      @lock.synchronize do
        @meta.reverse.find { |m| m["channel"] == "/meta/handshake" && m["successful"] }&.fetch("clientId")
      end
    end

    # Handshakes and sends the first /meta/connect; returns the clientId.
    # (Faye holds the /meta/connect reply as a long poll, so the server's
    # effects are what a test waits for next.)
    def connect!(timeout: 5)
      Reactor.run { @client.connect }
      Waiting.wait_for(timeout: timeout, message: "a handshake of the Faye client") { client_id }
    end

    # Subscribes and waits for the server to confirm; raises on refusal.
    def subscribe(channel, timeout: 5)
      Reactor.run do
        subscription = @client.subscribe(channel) { |data| record(channel, data) }
        subscription.callback { @lock.synchronize { @subscriptions[channel] = :ok } }
        subscription.errback { |error| @lock.synchronize { @subscriptions[channel] = error } }
      end
      result = Waiting.wait_for(timeout: timeout, message: "the subscription to #{channel}") do
        @lock.synchronize { @subscriptions[channel] }
      end
      raise "subscription to #{channel} refused: #{result}" unless result == :ok

      self
    end

    # Publishes and returns nil on success, or the Faye::Error of a refusal.
    def publish(channel, data, timeout: 5)
      box = Queue.new
      Reactor.run do
        publication = @client.publish(channel, data)
        publication.callback { box << [:ok] }
        publication.errback { |error| box << [:error, error] }
      end
      Waiting.wait_for(timeout: timeout, message: "the publication to #{channel}") { !box.empty? }
      status, error = box.pop
      status == :ok ? nil : error
    end

    # Sends /meta/disconnect and waits for the server's answer.
    def disconnect(timeout: 5)
      box = Queue.new
      Reactor.run do
        promise = @client.disconnect
        if promise
          promise.callback { box << :ok }
          promise.errback { |error| box << error }
        else
          box << :not_connected
        end
      end
      Waiting.wait_for(timeout: timeout, message: "the Faye client to disconnect") { !box.empty? }
      result = box.pop
      raise "disconnect failed: #{result}" unless %i[ok not_connected].include?(result)

      result
    end

    # Disconnects if still connected, ignoring a server that is already gone.
    def close
      Reactor.run { @client.disconnect }
    rescue StandardError
      nil
    end

    # Data received on a channel so far, oldest first.
    def messages(channel)
      @lock.synchronize { @messages[channel].dup }
    end

    def meta_replies(channel = nil)
      @lock.synchronize { @meta.select { |m| channel.nil? || m["channel"] == channel } }
    end

    def record(channel, data)
      @lock.synchronize { @messages[channel] << data }
    end

    def record_meta(message)
      @lock.synchronize { @meta << message.dup }
    end
  end
end
