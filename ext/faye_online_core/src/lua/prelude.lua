-- Shared by every script of the Redis hot store, and put before each.
-- ARGV[1] is the key prefix, "/<namespace>/"; the keys are listed in
-- redis_store.rs.
local p = ARGV[1]

-- A live clientId's own entries are spread over BUCKETS small keys of each
-- kind (clients:info:<b>, clients:pages:<b>), so that Redis keeps each in
-- its compact encoding (a listpack: by default up to 128 entries of up to
-- 64 bytes), at a third of a hash table's cost per entry. The bucket is a
-- hash of the clientId; redis_store.rs computes the same.
local BUCKETS = 2048
local function bucket(cid)
  local h = 0
  for i = 1, #cid do h = (h * 31 + string.byte(cid, i)) % BUCKETS end
  return h
end
local function info_key(cid) return p .. 'clients:info:' .. bucket(cid) end

-- The sweep's index: clients:due holds each bucket -> a time no later than
-- the last-seen time of any of its clientIds (ms), so that a sweep reads
-- only the buckets where a clientId may be stale. A clientId a sweep
-- returned is the sweeper's to end: its bucket comes due again when the
-- sweep's lease runs out, or sooner when the clientId is seen.
local function due_key() return p .. 'clients:due' end
local function bound_bucket(cid, seen)
  redis.call('ZADD', due_key(), 'LT', string.format('%.0f', tonumber(seen)), bucket(cid))
end

local function room_key(room, what) return p .. 'room:' .. room .. ':' .. what end
local function time_key(time, what) return p .. 'time:' .. time .. ':' .. what end

-- A live clientId's values, packed in one field of clients:info:<b>,
-- with when it joined and when it was last seen among them (ms, in base
-- 36: 8 characters, not 13, which keeps more values within the 64 bytes of
-- the compact encoding). Rooms and times are channel names, which hold no
-- '|'; the name comes last and may hold anything.
local DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz'
local function to36(n)
  n = math.floor(tonumber(n) or 0)
  if n <= 0 then return '0' end
  local out = ''
  while n > 0 do
    local d = n % 36
    out = string.sub(DIGITS, d + 1, d + 1) .. out
    n = (n - d) / 36
  end
  return out
end

local function pack(uid, room, time, joined, seen, uname)
  return uid .. '|' .. room .. '|' .. time .. '|' .. to36(joined) .. '|' .. to36(seen) .. '|' .. uname
end

-- uid, room, time, joined (ms), seen (ms), uname; nothing if the value is
-- not packed.
local function unpack_client(packed)
  local uid, room, time, joined, seen, uname = string.match(packed, '^(%d+)|([^|]*)|([^|]*)|(%w+)|(%w+)|(.*)$')
  if not uid then return nil end
  return uid, room, time, tonumber(joined, 36), tonumber(seen, 36), uname
end

-- Page states: clients:pages:<b> holds clientId -> "<a|i|h>|<since ms>|<latest
-- report ms>";
-- room:<room>:pages counts, per user, the tabs in each state
-- ("<uid>:a", "<uid>:i", "<uid>:h").
local function pages_key(cid) return p .. 'clients:pages:' .. bucket(cid) end

-- The user's state over their tabs in the room: a, i, h or ''.
local function user_state(room, uid)
  local counts = redis.call('HMGET', room_key(room, 'pages'), uid .. ':a', uid .. ':i', uid .. ':h')
  local letters = {'a', 'i', 'h'}
  for k = 1, 3 do
    if tonumber(counts[k] or '0') and tonumber(counts[k] or '0') > 0 then return letters[k] end
  end
  return ''
end

-- Counts one tab of the user in or out of a state's count.
local function count_page(room, uid, letter, by)
  local key, field = room_key(room, 'pages'), uid .. ':' .. letter
  if redis.call('HINCRBY', key, field, by) <= 0 then redis.call('HDEL', key, field) end
end
