-- store_write: a batch of deletes and puts, atomically.  A put replaces the item's
-- value, times, ttl, expiry and vectors, keeping created_at of an item that exists and
-- has not expired; a delete removes every trace of the item.  Every item is in the
-- names index and in the recent index (by updated_at).
--
-- KEYS[1..5]  items, names, expiry, vectors, recent   <prefix>:{memory}:...
-- ARGV[1]     now         epoch seconds (the core's clock)
-- ARGV[2]     n_deletes
-- then        n_deletes fields (<ns text> NUL <key>)
-- then        per put 7 values: field, created_at, updated_at, ttl, expires_at ('' for
--             none), value JSON, packed vectors ('' for none)

--! include lib/store_items.lua

local keys = store_keys()
local now = tonumber(ARGV[1])
local n_deletes = tonumber(ARGV[2])
local p = 3
local doomed = {}
for _ = 1, n_deletes do
  doomed[#doomed + 1] = ARGV[p]
  p = p + 1
  if #doomed >= 256 then
    item_forget(keys, doomed)
    doomed = {}
  end
end
item_forget(keys, doomed)
while p + 6 <= #ARGV do
  local field, created, expires, vectors = ARGV[p], ARGV[p + 1], ARGV[p + 4], ARGV[p + 6]
  local old = redis.call('HGET', keys.items, field)
  if old then
    local parts = item_parts(old)
    if parts and item_live(parts, now) then created = parts[2] end
  end
  redis.call('HSET', keys.items, field,
    item_frame({'1', created, ARGV[p + 2], ARGV[p + 3], expires, ARGV[p + 5]}))
  redis.call('ZADD', keys.names, 0, field)
  redis.call('ZADD', keys.recent, item_recent_score(ARGV[p + 2]), field)
  if expires == '' then
    redis.call('ZREM', keys.expiry, field)
  else
    redis.call('ZADD', keys.expiry, expires, field)
  end
  if vectors == '' then
    redis.call('HDEL', keys.vectors, field)
  else
    redis.call('HSET', keys.vectors, field, vectors)
  end
  p = p + 7
end
return 1
