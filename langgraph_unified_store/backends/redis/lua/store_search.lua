-- store_search: the live items under a namespace prefix whose value has each given
-- top-level key equal to the given string and is not ruled out by the number-range
-- hints, newest updated_at first, then by field (namespace text, then key: byte order),
-- then offset and limit.  Returns {field, frame, vectors or false, ...}.
--
-- Two walks give that order.  The recent walk reads the recent index by rank (its order
-- is the search order), skips fields outside the prefix, and stops once offset + limit
-- items matched or every field of the prefix was seen: used when the index is complete
-- (as many fields as the names index) and the prefix holds at least 1/WALK_RATIO of the
-- store, so the fields skipped stay few per field read.  Otherwise the lexical walk reads
-- the prefix's ranges of the names index, then sorts what matched.
--
-- KEYS[1..5]  items, names, expiry, vectors, recent   <prefix>:{memory}:...
-- ARGV[1]     now           epoch seconds (the core's clock)
-- ARGV[2]     refresh       '1': returned items with a ttl expire at now + ttl
-- ARGV[3]     with_vectors  '1' or '0'
-- ARGV[4]     offset        items skipped (after sorting)
-- ARGV[5]     limit         items returned at most, -1 for all
-- ARGV[6]     scoped        '1': under the prefix text ARGV[7]; '0': the whole store
-- ARGV[7]     prefix text   the prefix's labels joined by '.'
-- ARGV[8]     n_ranges
-- then        n_ranges (min, max) ZRANGEBYLEX bounds of the prefix, in the index's order
-- then        n_equals, and that many (key, string) pairs
-- then        n_hints, and per hint: n_labels, the labels (a path of object keys), low,
--             high (numbers as text, '' for unbounded)
-- Keys, strings and labels are compared as given (ARGV): nothing of them becomes code or
-- a pattern.  A hint keeps an item whose value at the path is a string, a boolean, or a
-- number within [low, high] (core.store_rules.NumberRange).  A value cjson cannot read
-- (too deep, not JSON) is kept, so that Python reads it and decides, unless it lacks a
-- string every match holds (ruled_out).

--! include lib/store_items.lua

local CHUNK = 256
local WALK_RATIO = 8
local keys = store_keys()
local now = tonumber(ARGV[1])
local refresh = ARGV[2] == '1'
local with_vectors = ARGV[3] == '1'
local offset = tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local scoped = ARGV[6] == '1'
local prefix_text = ARGV[7]
local n_ranges = tonumber(ARGV[8])
local p = 9 + 2 * n_ranges
local n_equals = tonumber(ARGV[p])
local equals = {}
-- The JSON string tokens every match holds: each key and wanted string, each label of a
-- hint's path (see ruled_out).
local tokens = {}
for i = 1, n_equals do
  local key, want = ARGV[p + 2 * i - 1], ARGV[p + 2 * i]
  equals[key] = want
  tokens[#tokens + 1] = '"' .. key .. '"'
  tokens[#tokens + 1] = '"' .. want .. '"'
end
p = p + 2 * n_equals + 1
local n_hints = tonumber(ARGV[p])
p = p + 1
local hints = {}
for _ = 1, n_hints do
  local n_labels = tonumber(ARGV[p])
  local labels = {}
  for j = 1, n_labels do
    labels[j] = ARGV[p + j]
    tokens[#tokens + 1] = '"' .. ARGV[p + j] .. '"'
  end
  hints[#hints + 1] = {labels = labels, low = tonumber(ARGV[p + n_labels + 1]),
                       high = tonumber(ARGV[p + n_labels + 2])}
  p = p + n_labels + 3
end

-- The value at a path of object keys, or nil (cjson reads arrays as tables too, with
-- number keys: a label, a string, finds nothing in one).
local function value_at(value, labels)
  for j = 1, #labels do
    if type(value) ~= 'table' then return nil end
    value = value[labels[j]]
  end
  return value
end

local function within(value, hint)
  local found = value_at(value, hint.labels)
  local kind = type(found)
  if kind == 'string' or kind == 'boolean' then return true end
  if kind ~= 'number' then return false end
  if found ~= found then return true end -- NaN: Python decides
  return (hint.low == nil or found >= hint.low) and (hint.high == nil or found <= hint.high)
end

-- A frame that cannot match, seen without reading it: with no backslash in it, every
-- JSON string of its value is its exact bytes between quotes, so a match holds every
-- token; a frame lacking one goes (whether or not it is JSON: no match either way).
local function ruled_out(frame)
  if #tokens == 0 or string.find(frame, '\\', 1, true) then return false end
  for j = 1, #tokens do
    if not string.find(frame, tokens[j], 1, true) then return true end
  end
  return false
end

local function matches(parts)
  if (n_equals == 0 and n_hints == 0) or not parts then return true end
  local ok, value = pcall(cjson.decode, parts[6])
  if not ok or type(value) ~= 'table' then return true end
  for k, want in pairs(equals) do
    if value[k] ~= want then return false end
  end
  for j = 1, n_hints do
    if not within(value, hints[j]) then return false end
  end
  return true
end

-- Whether a field lies under the prefix: its namespace is the prefix or starts with
-- the prefix and a '.' (labels hold neither NUL nor '.', and a field's first NUL ends
-- its namespace).
local exact_head, under_head = prefix_text .. '\0', prefix_text .. '.'
local head_length = #prefix_text + 1
local function under_prefix(field)
  if not scoped then return true end
  local head = string.sub(field, 1, head_length)
  return head == exact_head or head == under_head
end

local function emit(out, field, frame, parts)
  if refresh then
    frame = item_refresh(keys.items, keys.expiry, field, frame, parts, now)
  end
  out[#out + 1] = field
  out[#out + 1] = frame
  out[#out + 1] = with_vectors and redis.call('HGET', keys.vectors, field) or false
end

local function lexical_walk()
  local found = {}
  local position = 0
  for r = 1, n_ranges do
    local low, high = ARGV[7 + 2 * r], ARGV[8 + 2 * r]
    while true do
      local fields = redis.call('ZRANGEBYLEX', keys.names, low, high, 'LIMIT', 0, CHUNK)
      if #fields == 0 then break end
      local frames = redis.call('HMGET', keys.items, unpack(fields))
      for j = 1, #fields do
        local frame = frames[j]
        if frame and not ruled_out(frame) then
          position = position + 1
          local parts = item_parts(frame)
          if item_live(parts, now) and matches(parts) then
            local updated = parts and tonumber(parts[3]) or -math.huge
            if updated ~= updated then updated = -math.huge end
            found[#found + 1] = {updated, position, fields[j], frame, parts}
          end
        end
      end
      if #fields < CHUNK then break end
      low = '(' .. fields[#fields]
    end
  end
  table.sort(found, function(a, b)
    if a[1] ~= b[1] then return a[1] > b[1] end
    return a[2] < b[2]
  end)
  local last = #found
  if limit >= 0 then last = math.min(last, offset + limit) end
  local out = {}
  for i = offset + 1, last do
    local hit = found[i]
    emit(out, hit[3], hit[4], hit[5])
  end
  return out
end

local function recent_walk(in_prefix)
  local out = {}
  local skipped, seen, rank = 0, 0, 0
  while seen < in_prefix and (limit < 0 or #out < 3 * limit) do
    local fields = redis.call('ZRANGE', keys.recent, rank, rank + CHUNK - 1)
    if #fields == 0 then break end
    rank = rank + #fields
    local mine = {}
    for j = 1, #fields do
      if under_prefix(fields[j]) then mine[#mine + 1] = fields[j] end
    end
    if #mine > 0 then
      seen = seen + #mine
      local frames = redis.call('HMGET', keys.items, unpack(mine))
      for j = 1, #mine do
        local frame = frames[j]
        if frame and (limit < 0 or #out < 3 * limit) and not ruled_out(frame) then
          local parts = item_parts(frame)
          if item_live(parts, now) and matches(parts) then
            if skipped < offset then
              skipped = skipped + 1
            else
              emit(out, mine[j], frame, parts)
            end
          end
        end
      end
    end
  end
  return out
end

if limit == 0 then return {} end
local total = redis.call('ZCARD', keys.names)
local in_prefix = total
if scoped then
  in_prefix = 0
  for r = 1, n_ranges do
    in_prefix = in_prefix + redis.call('ZLEXCOUNT', keys.names, ARGV[7 + 2 * r], ARGV[8 + 2 * r])
  end
end
if in_prefix == 0 then return {} end
if in_prefix * WALK_RATIO >= total and redis.call('ZCARD', keys.recent) == total then
  return recent_walk(in_prefix)
end
return lexical_walk()
