-- Shared by every script of the Redis hot store, and put before each.
-- ARGV[1] is the key prefix, "/<namespace>/"; the keys are listed in
-- redis_store.rs.
local p = ARGV[1]

local function clients_key() return p .. 'clients' end
local function info_key() return p .. 'clients:info' end
local function room_key(room, what) return p .. 'room:' .. room .. ':' .. what end
local function time_key(time, what) return p .. 'time:' .. time .. ':' .. what end

-- A live clientId's values, packed in one field of clients:info. Rooms and
-- times are channel names, which hold no '|'; the name comes last and may
-- hold anything.
local function pack(uid, room, time, joined, uname)
  return uid .. '|' .. room .. '|' .. time .. '|' .. joined .. '|' .. uname
end

-- uid, room, time, joined, uname; nothing if the value is not packed.
local function unpack_client(packed)
  return string.match(packed, '^(%d+)|([^|]*)|([^|]*)|(%d+)|(.*)$')
end

-- Page states: clients:pages holds clientId -> "<a|i|h>|<since ms>|<latest
-- report ms>";
-- room:<room>:pages counts, per user, the tabs in each state
-- ("<uid>:a", "<uid>:i", "<uid>:h").
local function pages_key() return p .. 'clients:pages' end

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
