-- Partitions of the lane whose owner hash is KEYS[1] that are owned, by the server's clock, by
-- a worker of registry KEYS[2] that beat within ARGV[1] ms. Returns the partition numbers.
local now = server_now_ms()
local alive = {}
for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], now - tonumber(ARGV[1]), '+inf')) do
  alive[w] = true
end
local live = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local worker, owner_until = string.match(all[i + 1], '^(.*)|(%d+)$')
  if worker and alive[worker] and tonumber(owner_until) > now then table.insert(live, tonumber(all[i])) end
end
return live
