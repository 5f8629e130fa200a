# frozen_string_literal: true

require "rack/utils"

module FayeOnline
  # Keeps the channels that match server_publish: patterns to the app's
  # own publications (FayeOnline.publish), which carry the server token in
  # ext; a client's publication there gets
  # "403:<channel>:only the app publishes here". Patterns are written as
  # Faye's subscriptions: "*" is one segment anywhere ("/users/*/notes"),
  # "**" at the end is one or more ("/broadcast/**" is every channel under
  # /broadcast, not /broadcast itself). The token is taken out of every
  # message it arrives in, so that no subscriber (and no log) ever sees
  # it. Never raises.
  class PublishGuard
    EXT_KEY = "faye_online_server_token"
    PATTERN = %r{\A(/([A-Za-z0-9_-]+|\*))*(/([A-Za-z0-9_-]+|\*|\*\*))\z}

    # The patterns that are not well formed (for the configuration's check).
    def self.invalid(patterns)
      Array(patterns).reject { |pattern| pattern.is_a?(String) && pattern.match?(PATTERN) }
    end

    # Whether +channel+ is one that +pattern+ names.
    def self.match?(pattern, channel)
      want = pattern.split("/").drop(1)
      have = channel.split("/").drop(1)
      want.each_with_index do |segment, i|
        return have.size > i if segment == "**"
        return false unless i < have.size && (segment == "*" || segment == have[i])
      end
      want.size == have.size
    end

    # +private_channels+ (a PrivateChannels, or nil): its channels take
    # publications from their members and from the app only.
    def initialize(patterns, token, private_channels = nil)
      @patterns = Array(patterns).map(&:to_s).uniq
      @token = token
      @private = private_channels
    end

    # A publication on a private channel from a client this process has
    # no grant for waits (only it) while Redis is asked whether another
    # process granted it (Faye's engine on Redis).
    def incoming(message, callback)
      return callback.call(message) unless check(message) == :ask

      client_id = message["clientId"]
      @private.lookup(client_id) do |found|
        channel = message["channel"]
        if !found
          message["error"] = PrivateChannels::UNAVAILABLE
        elsif !@private.granted?(client_id, channel)
          message["error"] = members_only(channel)
        end
        callback.call(message)
      end
    end

    # Whether +channel+ matches one of the patterns.
    def server_only?(channel)
      @patterns.any? { |pattern| self.class.match?(pattern, channel) }
    end

    def check(message)
      ext = message["ext"]
      given = nil
      if ext.is_a?(Hash) && ext.key?(EXT_KEY)
        given = ext.delete(EXT_KEY)
        message.delete("ext") if ext.empty?
      end
      channel = message["channel"]
      return unless channel.is_a?(String) && !Faye::Channel.meta?(channel) && !Faye::Channel.service?(channel)
      return if @token && given.is_a?(String) && Rack::Utils.secure_compare(given, @token)

      if server_only?(channel)
        message["error"] = "403:#{channel}:only the app publishes here"
      elsif @private&.private?(channel) && !@private.granted?(message["clientId"], channel)
        return :ask if @private.shared? && message["clientId"].is_a?(String)

        message["error"] = members_only(channel)
      end
      nil
    rescue StandardError => e
      message["error"] = "500::#{e.class}"
      nil
    end

    private

    def members_only(channel)
      "403:#{channel}:only the channel's members publish here"
    end
  end
end
