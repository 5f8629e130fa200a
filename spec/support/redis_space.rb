# frozen_string_literal: true

require "redis"

module FayeOnlineSpec
  # The keys of one faye-online namespace in the test Redis database.
  class RedisSpace
    attr_reader :namespace, :redis

    def initialize(url, namespace)
      @redis = Redis.new(url: url)
      @namespace = namespace
    end

    # "/<ns>/<rest>"
    def key(rest)
      "/#{namespace}/#{rest}"
    end

    def keys
      redis.scan_each(match: "#{key('')}*").to_a
    end

    # The keys of Faye's engine on Redis: "<ns>/clients", "<ns>/channels/…"
    # (faye-redis's layout, with no leading slash).
    def engine_keys
      redis.scan_each(match: "#{namespace}/*").to_a
    end

    def clear!
      found = keys + engine_keys
      redis.del(*found) unless found.empty?
    end

    # The bucket of a clientId's entries (`clients:info:<b>`,
    # `clients:pages:<b>`), computed here as the README gives it.
    def bucket(client_id)
      client_id.each_byte.reduce(0) { |h, byte| (h * 31 + byte) % 2048 }
    end

    # A live clientId's values, unpacked from its field of
    # `clients:info:<b>` (`uid|room|time|joined|seen|uname`, the times in
    # base 36); empty when it is not live.
    def client_hash(client_id)
      packed = redis.hget(key("clients:info:#{bucket(client_id)}"), client_id)
      return {} unless packed

      uid, room, time, joined, seen, uname = packed.split("|", 6)
      { "uid" => uid, "uname" => uname, "room" => room, "time" => time, "joined" => joined.to_i(36).to_s,
        "seen" => seen.to_i(36) }
    end

    def room_users(room)
      redis.hgetall(key("room:#{room}:users"))
    end

    # How many of the user's clientIds are in the room (0 when none).
    def room_tabs(room, uid)
      redis.hget(key("room:#{room}:tabs"), uid.to_s).to_i
    end

    def time_tabs(time_channel, uid)
      redis.hget(key("time:#{time_channel}:tabs"), uid.to_s).to_i
    end

    def time_started(time_channel)
      redis.hgetall(key("time:#{time_channel}:started"))
    end

    # When the clientId was last seen (ms), or nil when it is not live.
    def client_last_seen(client_id)
      client_hash(client_id)["seen"]
    end

    def close
      redis.close
    end
  end
end
