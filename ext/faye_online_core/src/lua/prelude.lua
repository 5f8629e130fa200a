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
