-- Queues one message (JSON) for every client subscribed to any of the
-- channels it matches, and tells each client's process that it has mail.
-- A client past its timeout gets nothing (and its stale queue goes).
-- ARGV: namespace, message, cutoff (ms), then the channel names.
-- Returns how many clients it was queued for.
local ns, message, cutoff = ARGV[1], ARGV[2], tonumber(ARGV[3])
local keys = {}
for i = 4, #ARGV do
  keys[#keys + 1] = ns .. '/channels' .. ARGV[i]
end
if #keys == 0 then return 0 end
local clients = redis.call('SUNION', unpack(keys))
local queued = 0
for _, id in ipairs(clients) do
  local queue = ns .. '/clients/' .. id .. '/messages'
  local seen = tonumber(redis.call('ZSCORE', ns .. '/clients', id) or 0)
  if seen > cutoff then
    redis.call('RPUSH', queue, message)
    redis.call('PUBLISH', ns .. '/notifications/messages', id)
    queued = queued + 1
  else
    redis.call('DEL', queue)
  end
end
return queued
