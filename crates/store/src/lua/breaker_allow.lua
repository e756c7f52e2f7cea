-- May a call of the tool go out now? KEYS[1] breaker hash {state, until}.
-- ARGV[1] now (ms), ARGV[2] how long a probe call may take (ms).
-- Returns {'closed', 0}, {'probe', 0} (the one call let through to test a recovering tool),
-- {'open', until} (reject fast; try again at until) or {'probing', until} (another call is the
-- probe; its result decides soon, so try again shortly).
local now, probe_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'state', 'until')
if not b[1] or b[1] == 'closed' then return {'closed', 0} end
local untl = tonumber(b[2] or '0')
if now < untl then
  if b[1] == 'half_open' then return {'probing', untl} end
  return {'open', untl}
end
-- Cool-down over (open), or the last probe never reported (half open): this call probes.
redis.call('HSET', KEYS[1], 'state', 'half_open', 'until', now + probe_ms)
return {'probe', 0}
