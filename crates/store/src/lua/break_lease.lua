-- Break the lease of run KEYS[1] (lease key) if it is held by worker ARGV[1] (the lease value is
-- `<worker>/<fence>`): that worker is dead. Returns 1 if a lease was broken.
local lease = redis.call('GET', KEYS[1])
if lease and string.sub(lease, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '/' then
  return redis.call('DEL', KEYS[1])
end
return 0
