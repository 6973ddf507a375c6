-- cache_clear: remove every entry ('all'), or exactly the entries of some namespaces
-- (each one lexical range of the names index: ns NUL ... up to ns \1).
--
-- KEYS[1..3]  entries, names, expiry   <prefix>:{cache}:...
-- ARGV[1]     'all' or 'some'
-- ARGV[2..]   namespace texts (with 'some')

local CHUNK = 256
local entries, names, expiry = KEYS[1], KEYS[2], KEYS[3]
if ARGV[1] == 'all' then
  redis.call('DEL', entries, names, expiry)
  return 1
end
for i = 2, #ARGV do
  local low, high = '[' .. ARGV[i] .. '\0', '(' .. ARGV[i] .. '\1'
  while true do
    local fields = redis.call('ZRANGEBYLEX', names, low, high, 'LIMIT', 0, CHUNK)
    if #fields == 0 then break end
    redis.call('HDEL', entries, unpack(fields))
    redis.call('ZREM', names, unpack(fields))
    redis.call('ZREM', expiry, unpack(fields))
  end
end
return 1
