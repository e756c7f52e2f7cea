-- Commit a checkpoint under fence ARGV[2] (lease token ARGV[1]). Rejected if anyone claimed
-- since, or if the checkpoint moved since the caller read it: ARGV[3] is the event sequence
-- number the caller's state started from, so a repeated commit never appends events twice.
-- ARGV[4] is 0 to drop the lease (the run is handed on), or a lease TTL in ms to keep it (the
-- worker goes on with the same run: the proposal commit, commit-and-continue).
-- ARGV[5] is the run's dead letter (a DeadLetter protobuf) when this commit dead-letters it,
-- else empty: the letter is written with the terminal status, atomically, never after it.
-- KEYS[1] run hash, KEYS[2] lease, KEYS[3] fence counter, KEYS[4] event stream, KEYS[5] step list,
-- KEYS[6] spec, KEYS[7] dead letter, KEYS[8] effect ledger.
-- ARGV[6..]: the checkpoint and events of write_checkpoint (checkpoint.lua).
-- Returns {'ok'}, {'fenced'}, or {'stopped', request}: a stop (cancel, deadline) is pending and
-- this commit would let the run go on (running or waiting) — the caller commits the stop instead.
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
if current ~= tonumber(ARGV[2]) then return {'fenced'} end
local h = redis.call('HMGET', KEYS[1], 'seq', 'fence', 'stop')
if h[1] then
  if tonumber(h[1]) ~= tonumber(ARGV[3]) then return {'fenced'} end
elseif tonumber(h[2] or '0') >= current then
  -- A checkpoint written before `seq` existed: one commit per claim.
  return {'fenced'}
end
local lease = redis.call('GET', KEYS[2])
if lease and lease ~= ARGV[1] then return {'fenced'} end
if h[3] and not TERMINAL[status_written(6)] then return {'stopped', h[3]} end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[7], 'letter', ARGV[5], 'sent', 0) end
write_checkpoint(6, current)
-- An ended run has nothing left to stop.
if h[3] then redis.call('HDEL', KEYS[1], 'stop') end
local keep = tonumber(ARGV[4])
if keep > 0 then
  -- Nobody claimed since (the fence holds), so the lease may be taken back if it lapsed.
  redis.call('SET', KEYS[2], ARGV[1], 'PX', keep)
else
  redis.call('DEL', KEYS[2])
end
return {'ok'}
