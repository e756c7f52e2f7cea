-- Workers in registry KEYS[1] whose last beat is more than ARGV[1] ms old by the server's clock.
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', server_now_ms() - tonumber(ARGV[1]))
