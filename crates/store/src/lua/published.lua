-- Record that the events of run KEYS[1] up to sequence number ARGV[1] reached baton.events
-- (the `pub` field only moves forward). Returns the run's last event seq, or -1 if it is gone.
local h = redis.call('HMGET', KEYS[1], 'seq', 'pub')
if not h[1] then return -1 end
if tonumber(ARGV[1]) > tonumber(h[2] or '0') then redis.call('HSET', KEYS[1], 'pub', ARGV[1]) end
return tonumber(h[1])
