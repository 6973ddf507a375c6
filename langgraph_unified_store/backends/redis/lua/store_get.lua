-- store_get: the items of some fields, each {frame, vectors} (false for none) in the
-- order asked; an expired item is {false, false}.  With refresh, each returned item
-- with a ttl has its expiry moved to now + ttl.
--
-- KEYS[1..5]  items, names, expiry, vectors, recent   <prefix>:{memory}:...
-- ARGV[1]     now       epoch seconds (the core's clock)
-- ARGV[2]     refresh   '1' or '0'
-- ARGV[3..]   fields    <ns text> NUL <key>

--! include lib/store_items.lua

local keys = store_keys()
local now = tonumber(ARGV[1])
local refresh = ARGV[2] == '1'
local out = {}
for i = 3, #ARGV do
  local field = ARGV[i]
  local frame = redis.call('HGET', keys.items, field)
  local parts = frame and item_parts(frame)
  if frame and item_live(parts, now) then
    if refresh then
      frame = item_refresh(keys.items, keys.expiry, field, frame, parts, now)
    end
    out[#out + 1] = frame
    out[#out + 1] = redis.call('HGET', keys.vectors, field)
  else
    out[#out + 1] = false
    out[#out + 1] = false
  end
end
return out
