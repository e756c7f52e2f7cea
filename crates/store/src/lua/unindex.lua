-- Remove member ARGV[1] from sorted set KEYS[1] only if its score is still ARGV[2],
-- so a hand-on never removes the entry of the worker that took over after it.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
