-- Records when clientIds were last seen. ARGV: prefix, then pairs of
-- clientId and time (ms). A time older than the one recorded, or a
-- clientId not recorded, changes nothing.
for i = 2, #ARGV - 1, 2 do
  local cid, at = ARGV[i], ARGV[i + 1]
  local packed = redis.call('HGET', info_key(cid), cid)
  if packed then
    local uid, room, time, joined, seen, uname = unpack_client(packed)
    if uid then
      if tonumber(at) > seen then
        redis.call('HSET', info_key(cid), cid, pack(uid, room, time, joined, at, uname))
      end
      -- A clientId a sweep returned, then found alive, bounds its bucket
      -- again (a no-op otherwise).
      bound_bucket(cid, math.max(tonumber(at), seen))
    end
  end
end
return 0
