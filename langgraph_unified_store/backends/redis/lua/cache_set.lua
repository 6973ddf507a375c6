-- cache_set: store entries, replacing any of the same field, atomically.
--
-- KEYS[1..3]  entries, names, expiry   <prefix>:{cache}:...
-- ARGV        per entry 3 values: field (<ns text> NUL <key>), frame, expires_at ('' none)

local entries, names, expiry = KEYS[1], KEYS[2], KEYS[3]
for p = 1, #ARGV - 2, 3 do
  local field, expires = ARGV[p], ARGV[p + 2]
  redis.call('HSET', entries, field, ARGV[p + 1])
  redis.call('ZADD', names, 0, field)
  if expires == '' then
    redis.call('ZREM', expiry, field)
  else
    redis.call('ZADD', expiry, expires, field)
  end
end
return 1
