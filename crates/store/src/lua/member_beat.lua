-- Member ARGV[1] of a control-plane role (registry KEYS[1]) is alive now, by the server's clock.
-- Members silent for ARGV[2] ms are forgotten. Returns how many members are alive.
local now = server_now_ms()
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
return redis.call('ZCARD', KEYS[1])
