-- Extend lease KEYS[1] to ARGV[2] ms if it is still held by token ARGV[1]. Returns 1 or 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
