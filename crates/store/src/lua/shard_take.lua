-- Take or keep the lease KEYS[1] on one shard for member ARGV[1], for ARGV[2] ms: granted if
-- nobody holds it, ARGV[1] already does, or (ARGV[3] given) its holder is an earlier instance
-- of the same name, i.e. its id begins with ARGV[3]. Returns 1 if ARGV[1] holds it now.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  local prefix = ARGV[3]
  if not prefix or prefix == '' or string.sub(holder, 1, #prefix) ~= prefix then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
