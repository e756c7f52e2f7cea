-- Worker ARGV[1] owns partitions ARGV[3..] of the lane whose owner hash is KEYS[1], for ARGV[2]
-- ms from now by the server's clock; partitions it recorded before and owns no more are removed.
-- Returns {now, p1, until1, p2, until2, ...}: every partition's owner expiry, to compare with
-- that same clock.
local now = server_now_ms()
local until_ms = now + tonumber(ARGV[2])
local mine = {}
for i = 3, #ARGV do
  mine[ARGV[i]] = true
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[1] .. '|' .. until_ms)
end
local out = {now}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local owner, owner_until = string.match(all[i + 1], '^(.*)|(%d+)$')
  if owner == ARGV[1] and not mine[all[i]] then
    redis.call('HDEL', KEYS[1], all[i])
  elseif owner_until then
    table.insert(out, all[i])
    table.insert(out, owner_until)
  end
end
return out
