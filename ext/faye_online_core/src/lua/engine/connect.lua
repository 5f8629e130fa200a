-- A /meta/connect's one call: whether the client exists (seen after the
-- cutoff), and if it does, its ping (as Faye's engine does for a connect)
-- and everything queued for it, with its grants when there is something.
-- ARGV: namespace, clientId, cutoff (ms), now (ms), how long the grants
-- outlive this connect (ms). Returns {1 or 0, messages, grants}.
local ns, id = ARGV[1], ARGV[2]
local clients = ns .. '/clients'
local score = redis.call('ZSCORE', clients, id)
if not score or tonumber(score) <= tonumber(ARGV[3]) then
  return {0, {}, {}}
end
redis.call('ZADD', clients, 'XX', ARGV[4], id)
local base = clients .. '/' .. id
local messages = redis.call('LRANGE', base .. '/messages', 0, -1)
local grants = {}
if #messages > 0 then
  redis.call('DEL', base .. '/messages')
  grants = redis.call('SMEMBERS', base .. '/grants')
end
redis.call('PEXPIRE', base .. '/grants', ARGV[5])
return {1, messages, grants}
