-- Takes every message queued for one client, with the client's grants
-- when there are messages (what it may receive of protected channels).
-- ARGV: namespace, clientId. Returns {messages, grants}.
local base = ARGV[1] .. '/clients/' .. ARGV[2]
local queue = base .. '/messages'
local messages = redis.call('LRANGE', queue, 0, -1)
local grants = {}
if #messages > 0 then
  redis.call('DEL', queue)
  grants = redis.call('SMEMBERS', base .. '/grants')
end
return {messages, grants}
