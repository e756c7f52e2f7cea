-- Mark dead letter KEYS[1] as delivered to the dead-letter topic, if it still exists (a
-- requeue or discard may have taken it). Returns 1 if marked.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'sent', 1)
return 1
