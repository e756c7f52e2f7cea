-- Take or keep the lease KEYS[1] on one index shard for member ARGV[1], for ARGV[2] ms: granted
-- if nobody holds it or ARGV[1] already does. Returns 1 if ARGV[1] holds it now.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
