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

    # A live clientId's values, unpacked from its field of `clients:info`
    # (`uid|room|time|joined|uname`); empty when it is not live.
    def client_hash(client_id)
      packed = redis.hget(key("clients:info"), client_id)
      return {} unless packed

      uid, room, time, joined, uname = packed.split("|", 5)
      { "uid" => uid, "uname" => uname, "room" => room, "time" => time, "joined" => joined }
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

    def client_last_seen(client_id)
      redis.zscore(key("clients"), client_id)
    end

    def close
      redis.close
    end
  end
end
