-- Shared by commit.lua and update.lua: write the checkpoint whose fields start at ARGV[i] —
-- head (the RunState without spec and steps), status, step, attempt, now_ms, retention_ms, seq,
-- spec (empty unless a checkpoint of the old layout is being migrated), the number n of new
-- step records — then append the n step records to the run's history list and the events that
-- follow them to its event stream. `seq` is the checkpoint's last event sequence number: the
-- next write must name it. A terminal run is kept for its retention (> 0), a live one forever.
-- KEYS[1] run hash, KEYS[3] fence counter, KEYS[4] event stream, KEYS[5] step list, KEYS[6] spec,
-- KEYS[7] the run's dead letter, KEYS[8] its effect ledger (both kept, and expiring, with the run).
local function write_checkpoint(i, fence)
  redis.call('HSET', KEYS[1], 'state', ARGV[i], 'status', ARGV[i + 1], 'step', ARGV[i + 2],
    'attempt', ARGV[i + 3], 'fence', fence, 'updated_ms', ARGV[i + 4], 'seq', ARGV[i + 6])
  if ARGV[i + 7] ~= '' then redis.call('SET', KEYS[6], ARGV[i + 7]) end
  local steps = tonumber(ARGV[i + 8])
  for j = i + 9, i + 8 + steps do
    redis.call('RPUSH', KEYS[5], ARGV[j])
  end
  for j = i + 9 + steps, #ARGV do
    redis.call('XADD', KEYS[4], '*', 'e', ARGV[j])
  end
  local retention = tonumber(ARGV[i + 5])
  for _, key in ipairs({KEYS[1], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]}) do
    if retention > 0 then redis.call('PEXPIRE', key, retention) else redis.call('PERSIST', key) end
  end
end

-- The status the checkpoint starting at ARGV[i] writes.
local function status_written(i)
  return ARGV[i + 1]
end
