-- namespaces: the hex namespaces of one thread's checkpoints, one range lookup each (no
-- walk over every checkpoint), for list_threads.
--
-- KEYS[1]  index_key  B:i
-- ARGV[1]  B          the thread's base key

--! include lib/members.lua

local index_key = KEYS[1]
local out = {}
local maxb = '+'
while true do
  local m = redis.call('ZREVRANGEBYLEX', index_key, maxb, '-', 'LIMIT', 0, 1)[1]
  if not m then break end
  local ns = ns_of(m)
  out[#out + 1] = ns
  maxb = '(' .. ns .. ':'
end
return out
