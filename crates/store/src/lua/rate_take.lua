-- Takes one token from a tenant's submit bucket. KEYS[1] bucket hash {tokens, at}.
-- ARGV[1] now (ms), ARGV[2] rate (tokens per second), ARGV[3] burst (bucket size),
-- ARGV[4] tokens that must remain after the take (0 normally; more for a low-priority submit).
-- Returns {1, tokens left} when taken, or {0, ms until enough tokens} when refused.
local now, rate, burst, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(b[1] or burst), tonumber(b[2] or now)
if now > at then tokens = math.min(burst, tokens + (now - at) * rate / 1000) end
local need = 1 + keep
if tokens < need then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
  return {0, math.ceil((need - tokens) * 1000 / rate)}
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {1, math.floor(tokens)}
