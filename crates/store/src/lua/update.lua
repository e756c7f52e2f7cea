-- Compare-and-set a checkpoint of a run nobody is executing (cancel, timer wake, deadline,
-- requeue). Refused if a lease is held or anyone claimed or updated since the read at ARGV[1].
-- KEYS[1] run hash, KEYS[2] lease, KEYS[3] fence counter, KEYS[4] event stream.
-- ARGV: expected fence, state, status, step, attempt, now_ms, retention_ms (0 = keep), events...
-- Returns 'ok', 'leased' or 'conflict'.
if redis.call('EXISTS', KEYS[2]) == 1 then return 'leased' end
if tonumber(redis.call('GET', KEYS[3]) or '0') ~= tonumber(ARGV[1]) then return 'conflict' end
local fence = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'status', ARGV[3], 'step', ARGV[4], 'attempt', ARGV[5],
  'fence', fence, 'updated_ms', ARGV[6])
redis.call('HDEL', KEYS[1], 'stop')
for i = 8, #ARGV do
  redis.call('XADD', KEYS[4], '*', 'e', ARGV[i])
end
local retention = tonumber(ARGV[7])
for i = 1, 4 do
  if i ~= 2 then
    if retention > 0 then redis.call('PEXPIRE', KEYS[i], retention) else redis.call('PERSIST', KEYS[i]) end
  end
end
return 'ok'
