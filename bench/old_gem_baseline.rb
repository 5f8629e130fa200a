# frozen_string_literal: true

# The baseline: faye-online's bookkeeping done the way the pure-Ruby gem
# did it, written here for the benchmark. It runs inside Faye's `incoming`
# hook, so every Redis round trip and SQL query below blocks the reactor:
#
# - Redis holds JSON documents that are read, changed and written back
#   (the room's list of online uids, each user's list of clientIds, each
#   clientId's user), with no atomicity between processes;
# - every /meta/connect, a repeated poll too, looks the client, the room
#   and the user up again, in Redis and in SQL;
# - SQL goes through ActiveRecord: the channel rows, the room's online list
#   (a JSON array), the user's online_times (a JSON object) and a log row
#   per login and logout, in the old gem's tables.
require "active_record"
require "json"
require "redis"

module Bench
  class OldGemBaseline
    class Channel < ActiveRecord::Base
      self.table_name = "faye_channels"
    end

    class OnlineList < ActiveRecord::Base
      self.table_name = "faye_channel_online_lists"
    end

    class OnlineTime < ActiveRecord::Base
      self.table_name = "faye_user_online_times"
    end

    class LoginLog < ActiveRecord::Base
      self.table_name = "faye_user_login_logs"
    end

    def initialize(redis_url:, namespace:, database_url:)
      @redis = Redis.new(url: redis_url)
      @ns = "/#{namespace}/"
      uri = URI(database_url)
      ActiveRecord::Base.establish_connection(adapter: "mysql2", host: uri.host, port: uri.port || 3306,
                                              username: uri.user, database: uri.path.delete_prefix("/"))
    end

    # The Faye extension hook.
    def incoming(message, callback)
      case message["channel"]
      when "/meta/connect" then connect(message) if message["auth"]
      when "/meta/disconnect" then disconnect(message["clientId"])
      end
      callback.call(message)
    end

    private

    def key(*parts)
      @ns + parts.join("/")
    end

    def read_json(key, empty)
      text = @redis.get(key)
      text ? JSON.parse(text) : empty
    end

    def channel(name)
      Channel.find_by(name: name) || Channel.create!(name: name)
    end

    def connect(message)
      auth = message["auth"]
      cid = message["clientId"]
      user = auth["current_user"]
      uid = Integer(user["uid"])
      room = auth["room_channel"]
      time = auth["time_channel"]

      # Every poll: who is this client, is the user on the room's list, what
      # do the tables say.
      known = read_json(key("client", cid), nil)
      room_list = read_json(key("room", room), [])
      tabs = read_json(key("tabs", uid), [])
      room_row = channel(room)
      time_row = channel(time)
      list_row = OnlineList.find_by(channel_id: room_row.id)
      times_row = OnlineTime.find_by(user_id: uid)
      LoginLog.where(clientId: cid, status: 1).exists?
      return if known

      @redis.set(key("client", cid), JSON.generate("uid" => uid, "uname" => user["uname"], "room" => room,
                                                   "time" => time))
      first_tab = tabs.empty?
      @redis.set(key("tabs", uid), JSON.generate(tabs + [cid]))
      unless room_list.include?(uid)
        @redis.set(key("room", room), JSON.generate((room_list + [uid]).sort))
        list_row ||= OnlineList.new(channel_id: room_row.id, user_info_list: "[]")
        list_row.user_info_list = JSON.generate((JSON.parse(list_row.user_info_list || "[]") + [uid]).uniq.sort)
        list_row.save!
      end
      LoginLog.create!(status: 1, uid: uid, t: Time.now.utc, channel_id: time_row.id, clientId: cid)
      return unless first_tab

      times_row ||= OnlineTime.new(user_id: uid, online_times: "{}")
      times = JSON.parse(times_row.online_times || "{}")
      times["#{time}_started_at"] = Time.now.strftime("%Y%m%d%H%M%S")
      times_row.online_times = JSON.generate(times)
      times_row.save!
    end

    def disconnect(cid)
      known = read_json(key("client", cid), nil)
      return unless known

      uid = known["uid"]
      room = known["room"]
      time = known["time"]
      @redis.del(key("client", cid))
      tabs = read_json(key("tabs", uid), []) - [cid]
      @redis.set(key("tabs", uid), JSON.generate(tabs))
      time_row = channel(time)
      LoginLog.create!(status: 0, uid: uid, t: Time.now.utc, channel_id: time_row.id, clientId: cid)
      return unless tabs.empty?

      room_list = read_json(key("room", room), []) - [uid]
      @redis.set(key("room", room), JSON.generate(room_list))
      list_row = OnlineList.find_by(channel_id: channel(room).id)
      if list_row
        list_row.user_info_list = JSON.generate(JSON.parse(list_row.user_info_list || "[]") - [uid])
        list_row.save!
      end
      times_row = OnlineTime.find_by(user_id: uid)
      return unless times_row

      times = JSON.parse(times_row.online_times || "{}")
      started = times.delete("#{time}_started_at")
      if started
        seconds = (Time.now - Time.strptime(started, "%Y%m%d%H%M%S")).round
        times["#{time}_spended"] = times.fetch("#{time}_spended", 0) + seconds
      end
      times_row.online_times = JSON.generate(times)
      times_row.save!
    end
  end
end
