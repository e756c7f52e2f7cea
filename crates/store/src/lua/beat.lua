-- Worker ARGV[1] is alive now (the server's clock): its score in the registry KEYS[1].
local now = server_now_ms()
redis.call('ZADD', KEYS[1], now, ARGV[1])
return now
