-- Queues messages (JSON) for one client, wherever it polls: at the end of
-- its queue, or at the front when ARGV[4] is 'front' (messages taken out
-- that could not be delivered go back where they were, in order).
-- ARGV: namespace, clientId, cutoff (ms), 'back' or 'front', messages...
-- Returns 1 if queued, 0 if the client is gone.
local ns, id, cutoff, where = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local seen = tonumber(redis.call('ZSCORE', ns .. '/clients', id) or 0)
if seen <= cutoff or #ARGV < 5 then return 0 end
local queue = ns .. '/clients/' .. id .. '/messages'
if where == 'front' then
  for i = #ARGV, 5, -1 do redis.call('LPUSH', queue, ARGV[i]) end
else
  for i = 5, #ARGV do redis.call('RPUSH', queue, ARGV[i]) end
end
redis.call('PUBLISH', ns .. '/notifications/messages', id)
return 1
