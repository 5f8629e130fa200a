-- Takes every message queued for one client. ARGV: namespace, clientId.
local queue = ARGV[1] .. '/clients/' .. ARGV[2] .. '/messages'
local messages = redis.call('LRANGE', queue, 0, -1)
if #messages > 0 then redis.call('DEL', queue) end
return messages
