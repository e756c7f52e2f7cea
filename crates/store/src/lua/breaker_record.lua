-- Records how a call of the tool went. KEYS[1] breaker hash {state, until}, KEYS[2] sorted
-- set of recent failures. ARGV[1] now, ARGV[2] 1 for success / 0 for failure, ARGV[3] failures
-- that open the breaker, ARGV[4] window (ms), ARGV[5] cool-down (ms), ARGV[6] a unique id of
-- this failure. Returns the breaker's state after it: closed, open or half_open.
local now, ok = tonumber(ARGV[1]), ARGV[2] == '1'
local threshold, window, cooldown = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if ok then
  if state ~= 'closed' then redis.call('DEL', KEYS[1], KEYS[2]) end
  return 'closed'
end
if state == 'half_open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + cooldown)
  return 'open'
end
if state == 'open' then return 'open' end
redis.call('ZADD', KEYS[2], now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('PEXPIRE', KEYS[2], window)
if redis.call('ZCARD', KEYS[2]) >= threshold then
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + cooldown)
  redis.call('DEL', KEYS[2])
  return 'open'
end
return 'closed'
