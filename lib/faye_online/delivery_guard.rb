# frozen_string_literal: true

module FayeOnline
  # Who may receive what: the guard MemoryEngine asks before each delivery
  # of a protected channel. With a secret, a room's user_list and
  # user_changes go only to clients that showed a token for the room (the
  # tracker knows, in memory); the dashboard's channel only to clients that
  # subscribed to it with the dashboard's token; a private channel's
  # messages only to clients that showed a token for it. With Faye's
  # engine on Redis, what a client showed another process comes with its
  # messages (+grants+). No I/O.
  class DeliveryGuard
    LIST_SUFFIXES = ["/user_list", "/user_changes"].freeze
    LIST_SUFFIX = %r{/user_(?:list|changes)\z}

    # may_receive: the tracker's answer for a room's lists (client_id, channel);
    # private_channels: a PrivateChannels, or nil.
    def initialize(may_receive, dashboard, secret:, private_channels: nil)
      @may_receive = may_receive
      @dashboard = dashboard
      @lists = !secret.nil?
      @private = private_channels&.any? ? private_channels : nil
    end

    def protected?(channel)
      return false unless channel.is_a?(String)

      (@lists && channel.end_with?(*LIST_SUFFIXES)) || channel == Dashboard::CHANNEL ||
        (!@private.nil? && @private.private?(channel))
    end

    # +grants+: the client's grants from Faye's engine on Redis ("room:<room>",
    # "channel:<name>", "dashboard"), or nil.
    def allowed?(client_id, channel, grants = nil)
      client_id = client_id.to_s
      return @dashboard.member?(client_id) || granted?(grants, "dashboard") if channel == Dashboard::CHANNEL

      list = @lists && channel.end_with?(*LIST_SUFFIXES)
      if @private&.private?(channel)
        return false unless @private.granted?(client_id, channel) || granted?(grants, "channel:#{channel}")
        return true unless list
      end
      @may_receive.call(client_id, channel) || (list && granted?(grants, "room:#{channel.sub(LIST_SUFFIX, '')}"))
    end

    private

    def granted?(grants, grant)
      !grants.nil? && grants.include?(grant)
    end
  end

  # The Faye extension that stops a client whose identity was refused. Faye
  # advises a client whose /meta/connect failed to handshake again, and a
  # page whose token expired would do so at once, forever, each time as a
  # new clientId. A refusal of faye-online's (400 or 403 on /meta/connect)
  # advises `reconnect: none` instead; faye-online.js tells the page, which
  # may renew its identity.
  #
  # A connect faye-online could not take now (503: its worker is behind) is
  # advised to try again in a second, with the same clientId.
  module RefusalAdvice
    REFUSALS = ["400:", "403:"].freeze
    BUSY = "503:"

    def self.outgoing(message, callback)
      error = message["error"]
      if error.is_a?(String) && message["channel"] == "/meta/connect"
        if error.start_with?(*REFUSALS)
          message["advice"] = { "reconnect" => "none" }
        elsif error.start_with?(BUSY)
          message["advice"] = { "reconnect" => "retry", "interval" => 1000 }
        end
      end
      callback.call(message)
    end
  end
end
