# frozen_string_literal: true

require "openssl"
require "rack/utils"
require "set"
require_relative "publish_guard"

module FayeOnline
  # Private channels (private: patterns, such as "/chats/**"): a client
  # subscribes to one only with a token the app signed for that channel and
  # for the user the client connected as (FayeOnline.subscribe_token), and
  # only clients so granted receive its messages or publish on it (the
  # PublishGuard checks publications); the app (FayeOnline.publish, with
  # the server token) publishes there too.
  #
  # The check at subscription time says why a subscription is refused; the
  # check at delivery time (DeliveryGuard) keeps a private channel's
  # messages from any client without a grant, whatever form of
  # subscription brought them (a wildcard such as /chats/** or /**, a long
  # list). Grants live in this process's memory, and end with the client.
  # With Faye's engine on Redis (#engine=), each grant and each client's
  # uid is also recorded beside the client in Redis, before Faye
  # subscribes it: the process that delivers its messages reads them with
  # the messages, and a process that has not seen the client asks Redis
  # (off the reactor, holding only that message) before it decides.
  # Never raises out of the extension.
  class PrivateChannels
    EXT_KEY = "faye_online_channel_tokens"
    TOKEN = /\A(\d{1,12})\.(\h{64})\z/
    UNAVAILABLE = "503::Redis is unavailable; try again in a moment"

    # The token for +uid+ to subscribe to +channel+ until +expires+ (Unix
    # seconds): "<expires>.<hex HMAC-SHA256>".
    def self.token(secret, channel, uid, expires)
      expires = Integer(expires)
      "#{expires}.#{OpenSSL::HMAC.hexdigest('SHA256', secret.to_s, "faye-online channel|#{channel}|#{Integer(uid)}|#{expires}")}"
    end

    def initialize(patterns, secret)
      @patterns = Array(patterns).map(&:to_s).uniq
      @secret = secret
      @uids = {}   # clientId => uid it connected as (accepted by the tracker)
      @grants = {} # clientId => channels it may receive and publish on
      @engine = nil
    end

    # Faye's engine on Redis (a RedisEngine), which shares grants between
    # processes; nil on one process.
    attr_writer :engine

    def any?
      !@patterns.empty?
    end

    def private?(channel)
      channel.is_a?(String) && @patterns.any? { |pattern| PublishGuard.match?(pattern, channel) }
    end

    # Whether +client_id+ showed a token for +channel+.
    def granted?(client_id, channel)
      @grants[client_id]&.include?(channel) || false
    end

    # Faye's :disconnect: the client's identity and grants go with it.
    def forget(client_id)
      @uids.delete(client_id)
      @grants.delete(client_id)
    end

    def incoming(message, callback)
      unless unknown_subscriber?(message)
        check(message)
        return callback.call(message)
      end

      lookup(message["clientId"]) do |found|
        if found
          check(message)
        else
          message["error"] = UNAVAILABLE
        end
        callback.call(message)
      end
    end

    # Yields once this process knows what +client_id+ showed any process:
    # true, or false if Redis could not be asked. Without Faye's engine on
    # Redis, at once.
    def lookup(client_id)
      return yield(true) unless @engine

      @engine.grants(client_id) do |grants|
        found = begin
          adopt(client_id, grants) if grants
          !grants.nil?
        rescue StandardError
          false
        end
        yield found
      end
    end

    # Whether grants are shared with other processes (Faye's engine on
    # Redis), so that a #lookup may find one this process has not seen.
    def shared?
      !@engine.nil?
    end

    def check(message)
      return if message["error"] || !any?

      case message["channel"]
      when "/meta/connect" then remember(message)
      when "/meta/subscribe" then subscribe(message)
      end
    rescue StandardError => e
      message["error"] = "500::#{e.class}"
    end

    private

    # A /meta/connect the tracker accepted: its uid is the client's.
    def remember(message)
      uid = message.dig("auth", "current_user", "uid")
      client_id = message["clientId"]
      return unless client_id.is_a?(String) && uid.is_a?(Integer) && !@uids.key?(client_id)

      @uids[client_id] = uid
      @engine&.grant(client_id, ["uid:#{uid}"])
    end

    # A subscription to a private channel from a client whose uid this
    # process has not seen (it connected through another process).
    def unknown_subscriber?(message)
      return false unless @engine && any? && !message["error"] && message["channel"] == "/meta/subscribe"

      client_id = message["clientId"]
      client_id.is_a?(String) && !@uids.key?(client_id) &&
        Array(message["subscription"]).any? { |c| c.is_a?(String) && !c.include?("*") && private?(c) }
    end

    # What Redis holds for a client: its uid, and its grants.
    def adopt(client_id, grants)
      grants.each do |grant|
        kind, value = grant.split(":", 2)
        case kind
        when "uid" then @uids[client_id] ||= Integer(value, exception: false)
        when "channel" then (@grants[client_id] ||= Set.new) << value
        end
      end
      @uids.delete(client_id) if @uids[client_id].nil?
    end

    def subscribe(message)
      client_id = message["clientId"]
      tokens = message["ext"].is_a?(Hash) ? message["ext"].delete(EXT_KEY) : nil
      message.delete("ext") if message["ext"].is_a?(Hash) && message["ext"].empty?
      tokens = {} unless tokens.is_a?(Hash)
      granted = []
      Array(message["subscription"]).each do |channel|
        # A wildcard names no channel to hold a token for: it is taken,
        # and delivery brings it no private message.
        next if !channel.is_a?(String) || channel.include?("*") || !private?(channel)

        error = refusal(client_id, channel, tokens[channel])
        if error
          message["error"] = "403:#{channel}:#{error}"
          return
        end
        granted << channel
      end
      return if granted.empty?

      (@grants[client_id] ||= Set.new).merge(granted)
      @engine&.grant(client_id, granted.map { |channel| "channel:#{channel}" })
    end

    def refusal(client_id, channel, token)
      uid = @uids[client_id]
      return "a private channel needs a client that connected with an identity" unless uid
      return "a private channel needs a token from the app (FayeOnline.subscribe_token)" unless token.is_a?(String)

      match = TOKEN.match(token)
      return "the token is not one of the app's" unless match
      return "the token has expired" if Integer(match[1]) < Time.now.to_i
      return "the token is not for this channel and user" unless
        Rack::Utils.secure_compare(self.class.token(@secret, channel, uid, match[1]), token)

      nil
    end

  end
end
