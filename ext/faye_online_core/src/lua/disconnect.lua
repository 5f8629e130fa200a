-- Removes a clientId. ARGV: prefix, clientId, at (ms). Its interval (join
-- to at) is merged into the spans of its user's running session, kept as
-- "s:e,s:e" sorted and disjoint; when it was the last clientId, the
-- session's union is credited. Returns {0} for an unknown clientId, else
-- {1, uid, uname, room, time, left the room, timer started at (or ''),
-- session end, credited ms, restored, joined, page state letter or '',
-- its since or '', the user's state in the room after or '-' when
-- unchanged}; left the room is 0, 1, or 2 when the user was the room's
-- last.
local cid, at = ARGV[2], tonumber(ARGV[3])
local packed = redis.call('HGET', info_key(cid), cid)
if not packed then return {0} end
redis.call('HDEL', info_key(cid), cid)
-- An empty bucket leaves the sweep's index: when everyone left, nothing is left.
if redis.call('EXISTS', info_key(cid)) == 0 then redis.call('ZREM', due_key(), bucket(cid)) end
local puid, proom, ptime, pjoined, _, puname = unpack_client(packed)
if not puid then return {0} end
local c = {puid, puname, proom, ptime, pjoined}
local uid, room, time = c[1], c[3], c[4]
local state_before = user_state(room, uid)
local page, page_since = '', ''
local current = redis.call('HGET', pages_key(cid), cid)
if current then
  redis.call('HDEL', pages_key(cid), cid)
  page, page_since = string.match(current, '^(%a)|(%d+)')
  page, page_since = page or '', page_since or ''
  if page ~= '' then count_page(room, uid, page, -1) end
end
local rk = room_key(room, 'tabs')
local left = 0
if redis.call('HINCRBY', rk, uid, -1) <= 0 then
  redis.call('HDEL', rk, uid)
  redis.call('HDEL', room_key(room, 'users'), uid)
  left = 1
  if redis.call('HLEN', room_key(room, 'users')) == 0 then left = 2 end
end
local tk = time_key(time, 'tabs')
local remaining = redis.call('HINCRBY', tk, uid, -1)
if remaining <= 0 then redis.call('HDEL', tk, uid) end
local joined = tonumber(c[5] or '') or at
local spk = time_key(time, 'spans')
local list = {}
for s, e in string.gmatch(redis.call('HGET', spk, uid) or '', '(%d+):(%d+)') do
  list[#list + 1] = {tonumber(s), tonumber(e)}
end
local e = at
if e < joined then e = joined end
list[#list + 1] = {joined, e}
table.sort(list, function(x, y) return x[1] < y[1] end)
local merged = {}
for _, sp in ipairs(list) do
  local last = merged[#merged]
  if last and sp[1] <= last[2] then
    if sp[2] > last[2] then last[2] = sp[2] end
  else
    merged[#merged + 1] = {sp[1], sp[2]}
  end
end
local state_now = '-'
if left == 0 then
  local after = user_state(room, uid)
  if after ~= state_before then state_now = after end
end
local tail = {string.format('%.0f', joined), page, page_since, state_now}
if remaining <= 0 then
  local sk = time_key(time, 'started')
  local started = redis.call('HGET', sk, uid) or ''
  redis.call('HDEL', sk, uid)
  redis.call('HDEL', spk, uid)
  local restored = redis.call('HDEL', time_key(time, 'restored'), uid)
  local total = 0
  for _, sp in ipairs(merged) do total = total + sp[2] - sp[1] end
  return {1, c[1], c[2], c[3], c[4], left, started, string.format('%.0f', merged[#merged][2]), string.format('%.0f', total), restored, unpack(tail)}
end
local parts = {}
for i, sp in ipairs(merged) do parts[i] = string.format('%.0f:%.0f', sp[1], sp[2]) end
redis.call('HSET', spk, uid, table.concat(parts, ','))
return {1, c[1], c[2], c[3], c[4], left, '', string.format('%.0f', e), '0', 0, unpack(tail)}
