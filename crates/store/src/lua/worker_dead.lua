-- Is worker ARGV[1] still dead: no beat in registry KEYS[1] within ARGV[2] ms, by the server's
-- clock? Returns 1 if so. Asked again right before each of its leases is broken, so a worker
-- that was only stalled and beats again keeps the rest.
local beat = redis.call('ZSCORE', KEYS[1], ARGV[1])
if beat and tonumber(beat) >= server_now_ms() - tonumber(ARGV[2]) then return 0 end
return 1
