-- Read a run for a compare-and-set update, atomically.
-- KEYS[1] run hash, KEYS[2] lease, KEYS[3] fence counter, KEYS[4] spec.
-- Returns {fence counter, head, status, leased (1 or 0), spec, seq, stop request or false},
-- or {} if the run does not exist.
local run = redis.call('HMGET', KEYS[1], 'state', 'status', 'seq', 'stop')
if not run[1] then return {} end
return {tonumber(redis.call('GET', KEYS[3]) or '0'), run[1], run[2], redis.call('EXISTS', KEYS[2]),
  redis.call('GET', KEYS[4]), tonumber(run[3] or '0'), run[4]}
