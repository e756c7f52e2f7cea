-- Commit a checkpoint under fence ARGV[2] (lease token ARGV[1]); rejected if anyone claimed since.
-- KEYS[1] run hash, KEYS[2] lease, KEYS[3] fence counter, KEYS[4] event stream.
-- ARGV: token, fence, then the checkpoint and events of write_checkpoint (checkpoint.lua).
-- Returns 'ok' or 'fenced'.
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
if current ~= tonumber(ARGV[2]) then return 'fenced' end
-- One commit per claim: a repeated commit under the same fence must not append events twice.
if tonumber(redis.call('HGET', KEYS[1], 'fence') or '0') >= current then return 'fenced' end
local lease = redis.call('GET', KEYS[2])
if lease and lease ~= ARGV[1] then return 'fenced' end
-- A pending stop request stays: the next claim turns it into the run's end.
write_checkpoint(3, current)
redis.call('DEL', KEYS[2])
return 'ok'
