# frozen_string_literal: true

require "json"
require "net/http"
require "uri"

module FayeOnlineSpec
  # A Bayeux client speaking raw JSON over HTTP POST, one request per call, so
  # a test controls exactly which message the server sees and when. Its
  # /meta/connect asks for an immediate answer (advice timeout 0).
  class BayeuxClient
    NO_AUTH = Object.new.freeze

    attr_reader :client_id, :deliveries

    # +url+: a server's Bayeux URL, or several (each request then goes to
    # one picked at random, as behind a balancer with no stickiness).
    def initialize(url)
      @uris = Array(url).map { |u| URI(u) }
      @uri = @uris.first
      @message_id = 0
      @deliveries = []
    end

    # Posts messages and returns the server's replies. Messages delivered to
    # this client's subscriptions along the way are kept in #deliveries.
    def post(*messages)
      messages = messages.map { |message| { "id" => next_id }.merge(message) }
      uri = @uris.sample
      response = Net::HTTP.start(uri.host, uri.port, open_timeout: 2, read_timeout: 10) do |http|
        http.post(uri.path, JSON.generate(messages), "Content-Type" => "application/json")
      end
      unless response.code == "200"
        raise "POST #{uri} answered #{response.code}: #{response.body.to_s[0, 500]}"
      end

      replies = JSON.parse(response.body)
      @deliveries.concat(replies.select { |r| r.key?("data") && !r.key?("successful") })
      replies
    end

    # Posts a body as given (bytes that need not be valid JSON or UTF-8);
    # returns the status code and the body of the answer.
    def post_raw(body)
      response = Net::HTTP.start(@uri.host, @uri.port, open_timeout: 2, read_timeout: 10) do |http|
        http.post(@uri.path, body, "Content-Type" => "application/json")
      end
      [response.code, response.body]
    end

    # Sends what the block sends through +url+ only (another process of
    # the cluster, say); returns what the block returns.
    def through(url)
      saved = @uris
      @uris = [URI(url)]
      yield self
    ensure
      @uris = saved
    end

    def handshake!
      reply = request("channel" => "/meta/handshake", "version" => "1.0",
                      "supportedConnectionTypes" => ["long-polling"])
      raise "handshake failed: #{reply.inspect}" unless reply["successful"]

      @client_id = reply["clientId"]
      self
    end

    # One /meta/connect, with `auth` added unless NO_AUTH (any value, even a
    # malformed one, is sent as given), asking the server to answer at once
    # or, with +timeout_ms+, to hold the poll open as long for messages.
    # Returns the /meta/connect reply.
    def connect(auth: NO_AUTH, timeout_ms: 0)
      message = { "channel" => "/meta/connect", "clientId" => client_id,
                  "connectionType" => "long-polling", "advice" => { "timeout" => timeout_ms } }
      message["auth"] = auth unless auth.equal?(NO_AUTH)
      request(message)
    end

    def disconnect
      request("channel" => "/meta/disconnect", "clientId" => client_id)
    end

    def subscribe(channel, auth: NO_AUTH)
      message = { "channel" => "/meta/subscribe", "clientId" => client_id, "subscription" => channel }
      message["auth"] = auth unless auth.equal?(NO_AUTH)
      request(message)
    end

    def publish(channel, data)
      request("channel" => channel, "clientId" => client_id, "data" => data)
    end

    private

    def request(message)
      replies = post(message)
      sent_id = @message_id.to_s
      reply = replies.find { |r| r["id"] == sent_id && r["channel"] == message["channel"] }
      raise "no reply to #{message.inspect} in #{replies.inspect}" unless reply

      reply
    end

    def next_id
      (@message_id += 1).to_s
    end
  end
end
