-- Store items (store_keys.py has the Python side of the same format).  An item's frame
-- is six lines: format version '1', created_at, updated_at, ttl, expires_at (epoch
-- seconds as text, '' for none), then the value's JSON (the rest of the frame).  Numbers
-- stay text: a rewrite keeps them exactly as Python wrote them.

-- The frame's six parts, or nil when it is not a frame this code knows.
local function item_parts(frame)
  local parts = {}
  local p = 1
  for k = 1, 5 do
    local q = string.find(frame, '\n', p, true)
    if not q then return nil end
    parts[k] = string.sub(frame, p, q - 1)
    p = q + 1
  end
  if parts[1] ~= '1' then return nil end
  parts[6] = string.sub(frame, p)
  return parts
end

local function item_frame(parts)
  return table.concat(parts, '\n', 1, 6)
end

-- An item is gone once its expiry is at or before now.  A frame that cannot be read
-- counts as live, so that Python sees it and reports it.
local function item_live(parts, now)
  if not parts or parts[5] == '' then return true end
  local e = tonumber(parts[5])
  return e == nil or e > now
end

-- A refreshing read: expires_at moves to now + ttl (the frame and the expiry index).
-- Returns the frame as it now is.
local function item_refresh(items_key, expiry_key, field, frame, parts, now)
  if not parts or parts[4] == '' then return frame end
  local ttl = tonumber(parts[4])
  if not ttl then return frame end
  local e = string.format('%.17g', now + ttl)
  parts[5] = e
  frame = item_frame(parts)
  redis.call('HSET', items_key, field, frame)
  redis.call('ZADD', expiry_key, e, field)
  return frame
end

-- An item's score in the recent index: minus its updated_at, so that rank order (score,
-- then the field's bytes) is the search order: newest first, then namespace text, then
-- key.  A frame without a readable time goes last, as the lexical walk sorts it.
local function item_recent_score(updated)
  local u = updated and tonumber(updated)
  if not u or u ~= u then return '+inf' end
  return string.format('%.17g', -u)
end

-- Removes every trace of the items named by fields (at most a few hundred at a time).
local function item_forget(keys, fields)
  if #fields == 0 then return end
  redis.call('HDEL', keys.items, unpack(fields))
  redis.call('ZREM', keys.names, unpack(fields))
  redis.call('ZREM', keys.expiry, unpack(fields))
  redis.call('HDEL', keys.vectors, unpack(fields))
  redis.call('ZREM', keys.recent, unpack(fields))
end

local function store_keys()
  return {items = KEYS[1], names = KEYS[2], expiry = KEYS[3], vectors = KEYS[4], recent = KEYS[5]}
end
