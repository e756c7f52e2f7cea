-- Ask the worker executing run KEYS[1] (lease KEYS[2]) to stop it (cancel or deadline); the
-- first request wins. ARGV[1] is the encoded stop request. Only a leased run takes a request:
-- its worker's next commit, renewal or claim turns it into the run's end. An unleased run is
-- stopped by compare-and-set instead. Returns 'ok', 'missing', 'terminal' or 'unleased'.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if TERMINAL[status] then return 'terminal' end
if redis.call('EXISTS', KEYS[2]) == 0 then return 'unleased' end
redis.call('HSETNX', KEYS[1], 'stop', ARGV[1])
return 'ok'
