-- heads: the newest checkpoint of each namespace, {member, record, metadata, run} each.
--
-- KEYS[1]  index_key  B:i
-- ARGV[1]  B          the thread's base key
-- ARGV[2]  now        the client's time in ms: a thread expired at now has no heads
-- ARGV[3]  refresh    '1': finding heads moves the thread's expiry (refresh_on_read)
-- ARGV[4]  ttl_ms     the saver's ttl in ms, 0 for none

--! include lib/expiry.lua
--! include lib/members.lua

local index_key = KEYS[1]
local B = ARGV[1]
local now = tonumber(ARGV[2])
local life = readable(B, now)
if not life then return {} end

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
if #out > 0 then refresh_on_read(B, life, now, ARGV[3], tonumber(ARGV[4])) end
return out
