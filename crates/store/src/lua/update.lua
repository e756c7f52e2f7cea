-- Compare-and-set a checkpoint of a run nobody is executing (cancel, timer wake, deadline,
-- requeue). Refused if a lease is held or anyone claimed or updated since the read at ARGV[1].
-- KEYS[1] run hash, KEYS[2] lease, KEYS[3] fence counter, KEYS[4] event stream, KEYS[5] step list,
-- KEYS[6] spec.
-- ARGV: expected fence, then the checkpoint and events of write_checkpoint (checkpoint.lua).
-- Returns 'ok', 'leased' or 'conflict'.
if redis.call('EXISTS', KEYS[2]) == 1 then return 'leased' end
if tonumber(redis.call('GET', KEYS[3]) or '0') ~= tonumber(ARGV[1]) then return 'conflict' end
write_checkpoint(2, redis.call('INCR', KEYS[3]))
redis.call('HDEL', KEYS[1], 'stop')
return 'ok'
