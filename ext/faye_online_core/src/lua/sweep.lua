-- Finds clientIds last seen before a time. ARGV: prefix, before (ms),
-- limit, how many due buckets to read at most, and the lease (ms). Returns
-- a flat list of clientId and last seen (ms), at most limit of them, then,
-- last, 1 if due buckets are left unread, else 0. Each bucket read is
-- bounded again by the clientIds it keeps, or leaves the index when it
-- keeps none. A returned clientId is the caller's to end; if it is still
-- there when the lease runs out (the caller failed, or stopped), its
-- bucket is due again and the next sweep returns it again.
local before, limit, lease = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
local buckets = redis.call('ZRANGE', due_key(), '-inf', '(' .. ARGV[2], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[4]))
local out, found = {}, 0
for _, b in ipairs(buckets) do
  if found >= limit then break end
  local all = redis.call('HGETALL', p .. 'clients:info:' .. b)
  local low, claimed = nil, false
  for i = 1, #all, 2 do
    local seen = select(5, unpack_client(all[i + 1]))
    if seen then
      if seen < before and found < limit then
        out[#out + 1] = all[i]
        out[#out + 1] = string.format('%.0f', seen)
        found = found + 1
        claimed = true
      elseif not low or seen < low then
        low = seen
      end
    end
  end
  if claimed and (not low or low > before + lease) then low = before + lease end
  if low then
    redis.call('ZADD', due_key(), string.format('%.0f', low), b)
  else
    redis.call('ZREM', due_key(), b)
  end
end
local left = redis.call('ZCOUNT', due_key(), '-inf', '(' .. ARGV[2])
out[#out + 1] = left > 0 and 1 or 0
return out
