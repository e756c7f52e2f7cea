-- Ask the worker executing run KEYS[1] to stop it (cancel or deadline); the first request wins.
-- ARGV[1] is the encoded stop request. Returns 'ok', 'missing' or 'terminal'.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if TERMINAL[status] then return 'terminal' end
redis.call('HSETNX', KEYS[1], 'stop', ARGV[1])
return 'ok'
