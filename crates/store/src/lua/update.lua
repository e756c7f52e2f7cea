-- Compare-and-set a checkpoint of a run nobody is executing (cancel, timer wake, deadline,
-- approval, reconciliation, requeue). Refused if a lease is held, or if anyone claimed,
-- committed or updated since the read: ARGV[1] is the fence counter and ARGV[2] the event
-- sequence number the caller read, so a stale snapshot never overwrites a newer checkpoint.
-- A pending stop request ends the run: a write that would let it go on is refused ('stopped';
-- the caller reads again and commits the stop instead). The write clears the stop request and,
-- unless it leaves the run dead-lettered, the run's dead letter (a requeue takes it).
-- KEYS[1] run hash, KEYS[2] lease, KEYS[3] fence counter, KEYS[4] event stream, KEYS[5] step list,
-- KEYS[6] spec, KEYS[7] dead letter, KEYS[8] effect ledger.
-- ARGV[3..]: the checkpoint and events of write_checkpoint (checkpoint.lua).
-- Returns 'ok', 'leased', 'conflict' or 'stopped'.
if redis.call('EXISTS', KEYS[2]) == 1 then return 'leased' end
if tonumber(redis.call('GET', KEYS[3]) or '0') ~= tonumber(ARGV[1]) then return 'conflict' end
local h = redis.call('HMGET', KEYS[1], 'seq', 'stop')
if tonumber(h[1] or '0') ~= tonumber(ARGV[2]) then return 'conflict' end
local status = status_written(3)
if h[2] and not TERMINAL[status] then return 'stopped' end
write_checkpoint(3, redis.call('INCR', KEYS[3]))
redis.call('HDEL', KEYS[1], 'stop')
if status ~= 'dead_lettered' then redis.call('DEL', KEYS[7]) end
return 'ok'
