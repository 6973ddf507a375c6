-- store_reindex: one bounded step of building the recent index of a store an earlier
-- release wrote (it had none), or of mending one that does not hold exactly the names
-- index's fields.  The caller repeats each mode, from cursor '' on, until the answer
-- is '' (done).  Every write of this release keeps both indexes, so the steps may
-- interleave with writes.
--
-- KEYS[1..5]  items, names, expiry, vectors, recent   <prefix>:{memory}:...
-- ARGV[1]     mode    'add': walk the names index by field and give every field its
--                     score from its frame (a field without a frame goes last);
--                     'prune': walk the recent index by rank and drop the fields the
--                     names index lacks
-- ARGV[2]     cursor  '' to begin, then the answer of the previous step
-- ARGV[3]     batch   fields one step reads

--! include lib/store_items.lua

local keys = store_keys()
local mode, cursor, batch = ARGV[1], ARGV[2], tonumber(ARGV[3])

if mode == 'add' then
  local low = cursor == '' and '-' or '(' .. cursor
  local fields = redis.call('ZRANGEBYLEX', keys.names, low, '+', 'LIMIT', 0, batch)
  if #fields == 0 then return '' end
  local frames = redis.call('HMGET', keys.items, unpack(fields))
  for j = 1, #fields do
    local parts = frames[j] and item_parts(frames[j])
    redis.call('ZADD', keys.recent, item_recent_score(parts and parts[3]), fields[j])
  end
  if #fields < batch then return '' end
  return fields[#fields]
end

-- prune: the cursor is a rank; what is dropped moves the later fields down
local rank = cursor == '' and 0 or tonumber(cursor)
local fields = redis.call('ZRANGE', keys.recent, rank, rank + batch - 1)
if #fields == 0 then return '' end
local kept = 0
for j = 1, #fields do
  if redis.call('ZSCORE', keys.names, fields[j]) then
    kept = kept + 1
  else
    redis.call('ZREM', keys.recent, fields[j])
  end
end
if #fields < batch then return '' end
return tostring(rank + kept)
