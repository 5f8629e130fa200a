-- Destroys one Faye client: its subscriptions, its queue, its grants and
-- its entry.
-- ARGV: namespace, clientId. Returns {1 if it existed, its channels, its
-- last ping (ms, 0 if none)}.
-- Everyone listening on <ns>/notifications/close learns of it.
local ns, id = ARGV[1], ARGV[2]
local own = ns .. '/clients/' .. id .. '/channels'
local channels = redis.call('SMEMBERS', own)
for _, channel in ipairs(channels) do
  redis.call('SREM', ns .. '/channels' .. channel, id)
end
redis.call('DEL', own, ns .. '/clients/' .. id .. '/messages', ns .. '/clients/' .. id .. '/grants')
local pinged = redis.call('ZSCORE', ns .. '/clients', id) or '0'
local existed = redis.call('ZREM', ns .. '/clients', id)
redis.call('PUBLISH', ns .. '/notifications/close', id)
return {existed, channels, pinged}
