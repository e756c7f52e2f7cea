-- Extend lease KEYS[1] to ARGV[2] ms if it is still held by token ARGV[1].
-- KEYS[2] is the run hash. Returns {held (1 or 0), pending stop request or false}.
local stop = redis.call('HGET', KEYS[2], 'stop')
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, stop}
end
return {0, stop}
