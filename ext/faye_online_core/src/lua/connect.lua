-- Records a clientId's first valid connect. ARGV: prefix, clientId, uid,
-- uname, room, time, now (ms), and with Faye's engine on Redis its clients
-- key and the cutoff (ms) before which a client no longer exists there
-- (else '' and 0). Returns {3} when Faye's engine does not know the
-- clientId (nothing is recorded), {0} when the clientId is already
-- recorded with this identity, {2, uid, uname, room, time} when it is
-- recorded with another, else {1, joined the room, started the timer}:
-- joined is 0 (the user was in the room already), 1 (came online) or 2
-- (came online in an empty room).
local cid, uid, uname, room, time, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local known = redis.call('HGET', info_key(cid), cid)
if known then
  local kuid, kroom, ktime, kjoined, kseen, kuname = unpack_client(known)
  if kuid == uid and kuname == uname and kroom == room and ktime == time then
    if tonumber(now) > kseen then
      redis.call('HSET', info_key(cid), cid, pack(uid, room, time, kjoined, now, uname))
    end
    -- A sweep may have returned it: it bounds its bucket again.
    bound_bucket(cid, math.max(tonumber(now), kseen))
    return {0}
  end
  return {2, kuid or '', kuname or '', kroom or '', ktime or ''}
end
local engine_clients, cutoff = ARGV[8], tonumber(ARGV[9]) or 0
if engine_clients and engine_clients ~= '' then
  local pinged = tonumber(redis.call('ZSCORE', engine_clients, cid) or 0) or 0
  if pinged <= cutoff then return {3} end
end
redis.call('HSET', info_key(cid), cid, pack(uid, room, time, now, now, uname))
bound_bucket(cid, now)
redis.call('HSET', room_key(room, 'users'), uid, uname)
local joined = 0
if redis.call('HINCRBY', room_key(room, 'tabs'), uid, 1) == 1 then
  joined = 1
  if redis.call('HLEN', room_key(room, 'users')) == 1 then joined = 2 end
end
local started = 0
if redis.call('HINCRBY', time_key(time, 'tabs'), uid, 1) == 1 then
  redis.call('HSET', time_key(time, 'started'), uid, now)
  redis.call('HDEL', time_key(time, 'spans'), uid)
  redis.call('HDEL', time_key(time, 'restored'), uid)
  started = 1
end
return {1, joined, started}
