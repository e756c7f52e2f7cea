-- Member ARGV[1] of a role (registry KEYS[1]) is alive now, by the server's clock. Members
-- silent for ARGV[2] ms are forgotten, and so (ARGV[3] given) are earlier instances of the same
-- name: other members whose id begins with ARGV[3]. Returns the ids of the members alive.
local now = server_now_ms()
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
local prefix = ARGV[3]
if prefix and prefix ~= '' then
  for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if member ~= ARGV[1] and string.sub(member, 1, #prefix) == prefix then
      redis.call('ZREM', KEYS[1], member)
    end
  end
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
