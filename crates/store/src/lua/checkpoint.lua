-- Shared by commit.lua and update.lua: write the checkpoint whose fields start at ARGV[i]
-- (state, status, step, attempt, now_ms, retention_ms, seq) under `fence`, append the events
-- that follow them, and keep a terminal run for its retention (retention_ms > 0), a live one
-- forever. `seq` is the checkpoint's last event sequence number: the next commit must name it.
-- KEYS[1] run hash, KEYS[3] fence counter, KEYS[4] event stream.
local function write_checkpoint(i, fence)
  redis.call('HSET', KEYS[1], 'state', ARGV[i], 'status', ARGV[i + 1], 'step', ARGV[i + 2],
    'attempt', ARGV[i + 3], 'fence', fence, 'updated_ms', ARGV[i + 4], 'seq', ARGV[i + 6])
  for j = i + 7, #ARGV do
    redis.call('XADD', KEYS[4], '*', 'e', ARGV[j])
  end
  local retention = tonumber(ARGV[i + 5])
  for _, key in ipairs({KEYS[1], KEYS[3], KEYS[4]}) do
    if retention > 0 then redis.call('PEXPIRE', key, retention) else redis.call('PERSIST', key) end
  end
end
