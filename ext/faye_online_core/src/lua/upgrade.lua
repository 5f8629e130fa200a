-- Moves clientIds from the layout before the buckets (one hash
-- clients:info of `uid|room|time|joined|uname`, one sorted set clients of
-- last-seen times, one hash clients:pages) to their buckets. ARGV: prefix,
-- now (ms, the last-seen time of an entry that has none), then the
-- clientIds. Each is removed from the old keys, moved or not (a clientId
-- recorded in the new layout meanwhile keeps its new entries; a value
-- that does not parse is dropped). Returns how many were moved.
local old_info, old_seen, old_pages = p .. 'clients:info', p .. 'clients', p .. 'clients:pages'
local now = ARGV[2]
local moved = 0
for i = 3, #ARGV do
  local cid = ARGV[i]
  local packed = redis.call('HGET', old_info, cid)
  local uid, room, time, joined, uname
  if packed then uid, room, time, joined, uname = string.match(packed, '^(%d+)|([^|]*)|([^|]*)|(%d+)|(.*)$') end
  if uid and redis.call('HEXISTS', info_key(cid), cid) == 0 then
    local seen = redis.call('ZSCORE', old_seen, cid)
    seen = seen and string.format('%.0f', tonumber(seen)) or now
    redis.call('HSET', info_key(cid), cid, pack(uid, room, time, joined, seen, uname))
    bound_bucket(cid, seen)
    local page = redis.call('HGET', old_pages, cid)
    if page then redis.call('HSET', pages_key(cid), cid, page) end
    moved = moved + 1
  end
  redis.call('HDEL', old_info, cid)
  redis.call('ZREM', old_seen, cid)
  redis.call('HDEL', old_pages, cid)
end
return moved
