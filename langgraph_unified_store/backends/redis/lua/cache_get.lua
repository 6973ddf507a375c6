-- cache_get: first removes up to `purge` entries expired at or before now (the cache's
-- only sweep), then returns the frames of the fields asked (false for none).
--
-- KEYS[1..3]  entries, names, expiry   <prefix>:{cache}:...
-- ARGV[1]     now     epoch seconds (the core's clock)
-- ARGV[2]     purge   how many expired entries this call removes at most
-- ARGV[3..]   fields  <ns text> NUL <key>

local entries, names, expiry = KEYS[1], KEYS[2], KEYS[3]
local doomed = redis.call('ZRANGEBYSCORE', expiry, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #doomed > 0 then
  redis.call('HDEL', entries, unpack(doomed))
  redis.call('ZREM', names, unpack(doomed))
  redis.call('ZREM', expiry, unpack(doomed))
end
local out = {}
for i = 3, #ARGV do
  out[#out + 1] = redis.call('HGET', entries, ARGV[i]) or false
end
return out
