-- heads: the newest checkpoint of each namespace, {member, record, metadata, run} each.
--
-- KEYS[1]  index_key  B:i
-- ARGV[1]  B          the thread's base key

--! include lib/members.lua

local index_key = KEYS[1]
local B = ARGV[1]

local out = {}
local maxb = '+'
while true do
  local m = redis.call('ZREVRANGEBYLEX', index_key, maxb, '-', 'LIMIT', 0, 1)[1]
  if not m then break end
  local s = seq_of(m) or ''
  out[#out + 1] = {m, redis.call('HGET', B .. ':c', s), redis.call('HGET', B .. ':m', s),
                   redis.call('HGET', B .. ':r', s)}
  maxb = '(' .. ns_of(m) .. ':'
end
return out
