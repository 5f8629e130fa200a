-- A clientId reports its page state. ARGV: prefix, clientId, state
-- letter (a, i or h), at (ms). Returns {0} for an unknown clientId, or for
-- a report older than the latest one it applied (two processes may apply
-- one client's reports out of order), else
-- {1, uid, uname, room, time, previous letter or '', since or '', the
-- user's state before, after}.
local cid, letter, at = ARGV[2], ARGV[3], ARGV[4]
local packed = redis.call('HGET', info_key(cid), cid)
if not packed then return {0} end
local uid, room, time, _, _, uname = unpack_client(packed)
if not uid then return {0} end
local prev, since, last = '', '', ''
local current = redis.call('HGET', pages_key(cid), cid)
if current then prev, since, last = string.match(current, '^(%a)|(%d+)|?(%d*)$') end
prev, since, last = prev or '', since or '', last or ''
if last == '' then last = since end
if last ~= '' and tonumber(last) > tonumber(at) then return {0} end
local before = user_state(room, uid)
if prev ~= letter then
  redis.call('HSET', pages_key(cid), cid, letter .. '|' .. at .. '|' .. at)
  if prev ~= '' then count_page(room, uid, prev, -1) end
  count_page(room, uid, letter, 1)
else
  redis.call('HSET', pages_key(cid), cid, letter .. '|' .. since .. '|' .. at)
end
return {1, uid, uname, room, time, prev, since, before, user_state(room, uid)}
