-- Commit a checkpoint under fence ARGV[2] (lease token ARGV[1]); rejected if anyone claimed since.
-- KEYS[1] run hash, KEYS[2] lease, KEYS[3] fence counter, KEYS[4] event stream.
-- ARGV: token, fence, state, status, step, attempt, now_ms, retention_ms (0 = keep), events...
-- Returns 'ok' or 'fenced'.
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
if current ~= tonumber(ARGV[2]) then return 'fenced' end
-- One commit per claim: a repeated commit under the same fence must not append events twice.
if tonumber(redis.call('HGET', KEYS[1], 'fence') or '0') >= current then return 'fenced' end
local lease = redis.call('GET', KEYS[2])
if lease and lease ~= ARGV[1] then return 'fenced' end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'status', ARGV[4], 'step', ARGV[5], 'attempt', ARGV[6],
  'fence', ARGV[2], 'updated_ms', ARGV[7])
for i = 9, #ARGV do
  redis.call('XADD', KEYS[4], '*', 'e', ARGV[i])
end
redis.call('DEL', KEYS[2])
local retention = tonumber(ARGV[8])
if retention > 0 then
  redis.call('PEXPIRE', KEYS[1], retention)
  redis.call('PEXPIRE', KEYS[3], retention)
  redis.call('PEXPIRE', KEYS[4], retention)
end
return 'ok'
