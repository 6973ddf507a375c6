-- snapshot: the whole thread, for copy_thread: B:i, then the hashes B:c, B:m, B:r, B:b,
-- B:w and B:t as flat field/value lists, then B:a.  restore.lua takes these sections.
--
-- KEYS[1]  index_key  B:i
-- ARGV[1]  B          the thread's base key
-- ARGV[2]  now        the client's time in ms: a thread expired at now is empty

--! include lib/expiry.lua

local index_key = KEYS[1]
local B = ARGV[1]
if not readable(B, tonumber(ARGV[2])) then return {{}, {}, {}, {}, {}, {}, {}, {}} end

local out = {redis.call('ZRANGE', index_key, 0, -1)}
for _, suffix in ipairs({':c', ':m', ':r', ':b', ':w', ':t'}) do
  out[#out + 1] = redis.call('HGETALL', B .. suffix)
end
out[#out + 1] = redis.call('ZRANGE', B .. ':a', 0, -1)
return out
