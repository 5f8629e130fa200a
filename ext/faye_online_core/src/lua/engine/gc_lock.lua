-- Takes the garbage collector's lock, as every process of the cluster
-- does (the value is the lock's expiry in ms): free, or expired.
-- ARGV: namespace, now (ms), expiry (ms). Returns 1 if taken.
local key = ARGV[1] .. '/locks/gc'
if redis.call('SETNX', key, ARGV[3]) == 1 then return 1 end
local held = redis.call('GET', key)
if not held or tonumber(ARGV[2]) < (tonumber(held) or 0) then return 0 end
redis.call('SET', key, ARGV[3])
return 1
