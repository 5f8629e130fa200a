# frozen_string_literal: true

require "json"
require "net/http"
require "securerandom"
require "uri"
require "faye"
require_relative "error"
require_relative "clock"

module FayeOnline
  # The message could not be handed over to the Faye server.
  class PublishError < Error; end

  # Publishes from the app (a Rails request, a job) to the Faye server over
  # HTTP, with the server token that lets it publish on the server_publish:
  # channels. It waits at most +timeout+ seconds (connecting and the
  # answer together), and raises PublishError, saying why, when the server
  # is away, slow, or refuses the message.
  class Publisher
    CHANNEL = %r{\A(/[A-Za-z0-9_-]+)+\z}

    def initialize(faye_url:, token:, timeout: 5)
      raise ConfigurationError, "FayeOnline.publish needs the Faye server's URL: faye_url: or FAYE_URL" if
        faye_url.to_s.empty?

      @uri = URI(faye_url.to_s)
      @token = token
      @timeout = Float(timeout)
    end

    # The message for +channel+ and +data+; ArgumentError if +channel+ is
    # not one to publish on or +data+ is nil.
    def self.message(channel, data)
      channel = channel.to_s
      unless channel.match?(CHANNEL) && !channel.start_with?("/meta/", "/service/")
        raise ArgumentError, "#{channel.inspect} is not a channel to publish on (such as /broadcast/news)"
      end
      raise ArgumentError, "FayeOnline.publish needs data (not nil)" if data.nil?

      { "channel" => channel, "data" => data, "id" => SecureRandom.hex(8) }
    end

    # true once the server took the message; raises PublishError otherwise.
    def publish(channel, data)
      message = Publisher.message(channel, data)
      channel = message["channel"]
      message["ext"] = { PublishGuard::EXT_KEY => @token } if @token
      body = JSON.generate([message])
      reply = post(body)
      answer = Array(reply).find { |r| r.is_a?(Hash) && r["channel"] == channel }
      raise PublishError, "the Faye server at #{@uri} gave no answer for #{channel}" unless answer
      raise PublishError, "the Faye server at #{@uri} refused the message: #{answer['error']}" unless answer["successful"]

      true
    end

    private

    def post(body)
      deadline = Clock.monotonic + @timeout
      response = Net::HTTP.start(@uri.host, @uri.port, use_ssl: @uri.scheme == "https",
                                                       open_timeout: @timeout, read_timeout: @timeout) do |http|
        http.read_timeout = [deadline - Clock.monotonic, 0.1].max
        http.post(@uri.request_uri, body, "Content-Type" => "application/json")
      end
      raise PublishError, "the Faye server at #{@uri} answered HTTP #{response.code}" unless response.code == "200"

      JSON.parse(response.body)
    rescue JSON::ParserError
      raise PublishError, "the Faye server at #{@uri} answered something that is not Bayeux JSON"
    rescue SystemCallError, IOError, Timeout::Error, SocketError, OpenSSL::SSL::SSLError => e
      raise PublishError, "could not reach the Faye server at #{@uri} within #{@timeout} s: #{e.class}: #{e.message}"
    end
  end

  # Publishes from the app straight into Faye's engine on Redis, as the
  # Faye processes' own engine does: no HTTP hop and no Faye process in the
  # request's path, and every process delivers it to its subscribers. It
  # waits at most +timeout+ seconds for Redis, and raises PublishError,
  # saying why, when Redis cannot take the message.
  class RedisPublisher
    # faye_timeout: the Faye servers' timeout (seconds): a client not seen
    # for 1.6 times it is gone, and gets nothing.
    def initialize(redis_url:, namespace:, faye_timeout:, timeout: 5)
      @redis_url = redis_url
      @namespace = namespace
      @faye_timeout = Float(faye_timeout)
      @timeout = Float(timeout)
    end

    # true once Redis took the message (for however many subscribers).
    def publish(channel, data)
      message = Publisher.message(channel, data)
      cutoff = (Time.now.to_f * 1000).round - (1600 * @faye_timeout).round
      Native._engine_publish(@redis_url, @namespace, JSON.generate(message),
                             Faye::Channel.expand(message["channel"]), cutoff, @timeout)
      true
    rescue StoreError => e
      raise PublishError, "could not hand the message to Redis at #{Database.redact(@redis_url)} " \
                          "within #{@timeout} s: #{e.message}"
    end
  end
end
