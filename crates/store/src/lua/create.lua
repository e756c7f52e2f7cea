-- Write a run's first checkpoint, its spec and its first event, unless the run already exists.
-- KEYS[1] run hash, KEYS[2] event stream, KEYS[3] spec.
-- ARGV: head, status, tenant, lane, now_ms, seq, spec, planner kind, event.
-- Returns 1 if created, 0 if it existed.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'status', ARGV[2], 'step', 0, 'attempt', 0,
  'fence', 0, 'tenant', ARGV[3], 'lane', ARGV[4], 'updated_ms', ARGV[5], 'seq', ARGV[6],
  'planner', ARGV[8])
redis.call('SET', KEYS[3], ARGV[7])
redis.call('XADD', KEYS[2], '*', 'e', ARGV[9])
return 1
