-- The Redis server's clock in ms: the one time every host of the fleet agrees on (a worker's
-- own clock may be seconds off). Shared by the liveness and partition-owner scripts.
local function server_now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
