-- Puts back lost clientIds: ARGV is the prefix, then seven values per
-- clientId (id, uid, uname, room, time, joined, last seen). A clientId
-- still recorded is left alone; a rebuilt timer starts at the earliest
-- join and is marked restored. Returns the rooms whose user lists changed.
local rooms = {}
for i = 2, #ARGV - 6, 7 do
  local cid, uid, uname, room, time, joined, seen = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6]
  if redis.call('HEXISTS', info_key(cid), cid) == 0 then
    redis.call('HSET', info_key(cid), cid, pack(uid, room, time, joined, seen, uname))
    bound_bucket(cid, seen)
    redis.call('HINCRBY', room_key(room, 'tabs'), uid, 1)
    if redis.call('HSET', room_key(room, 'users'), uid, uname) == 1 then
      rooms[#rooms + 1] = room
    end
    redis.call('HINCRBY', time_key(time, 'tabs'), uid, 1)
    local sk = time_key(time, 'started')
    local started = tonumber(redis.call('HGET', sk, uid) or '')
    if not started then
      redis.call('HSET', sk, uid, joined)
      redis.call('HSET', time_key(time, 'restored'), uid, 1)
    elseif tonumber(joined) < started then
      redis.call('HSET', sk, uid, joined)
    end
  end
end
return rooms
