-- Commit a checkpoint under fence ARGV[2] (lease token ARGV[1]). Rejected if anyone claimed
-- since, or if the checkpoint moved since the caller read it: ARGV[3] is the event sequence
-- number the caller's state started from, so a repeated commit never appends events twice.
-- ARGV[4] is 0 to drop the lease (the run is handed on), or a lease TTL in ms to keep it (the
-- worker goes on with the same run: the proposal commit, commit-and-continue).
-- KEYS[1] run hash, KEYS[2] lease, KEYS[3] fence counter, KEYS[4] event stream, KEYS[5] step list,
-- KEYS[6] spec.
-- ARGV[5..]: the checkpoint and events of write_checkpoint (checkpoint.lua).
-- Returns 'ok' or 'fenced'.
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
if current ~= tonumber(ARGV[2]) then return 'fenced' end
local seq = redis.call('HGET', KEYS[1], 'seq')
if seq then
  if tonumber(seq) ~= tonumber(ARGV[3]) then return 'fenced' end
elseif tonumber(redis.call('HGET', KEYS[1], 'fence') or '0') >= current then
  -- A checkpoint written before `seq` existed: one commit per claim.
  return 'fenced'
end
local lease = redis.call('GET', KEYS[2])
if lease and lease ~= ARGV[1] then return 'fenced' end
-- A pending stop request stays: the next claim (or the renewal) turns it into the run's end.
write_checkpoint(5, current)
local keep = tonumber(ARGV[4])
if keep > 0 then
  -- Nobody claimed since (the fence holds), so the lease may be taken back if it lapsed.
  redis.call('SET', KEYS[2], ARGV[1], 'PX', keep)
else
  redis.call('DEL', KEYS[2])
end
return 'ok'
