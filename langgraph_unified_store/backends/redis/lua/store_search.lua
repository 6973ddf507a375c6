-- store_search: the live items in some lexical ranges of the names index whose value
-- has each given top-level key equal to the given string, newest updated_at first,
-- then by field (namespace text, then key: the names index's byte order).  Returns
-- {field, frame, vectors or false, ...}.
--
-- KEYS[1..4]  items, names, expiry, vectors   <prefix>:{memory}:...
-- ARGV[1]     now           epoch seconds (the core's clock)
-- ARGV[2]     refresh       '1': returned items with a ttl expire at now + ttl
-- ARGV[3]     with_vectors  '1' or '0'
-- ARGV[4]     offset        items skipped (after sorting)
-- ARGV[5]     limit         items returned at most, -1 for all
-- ARGV[6]     n_ranges
-- then        n_ranges (min, max) ZRANGEBYLEX bounds, in the index's order
-- then        n_equals, and that many (key, string) pairs
-- Keys and strings are compared as given (ARGV): nothing of them becomes code or a pattern.

--! include lib/store_items.lua

local CHUNK = 256
local keys = store_keys()
local now = tonumber(ARGV[1])
local refresh = ARGV[2] == '1'
local with_vectors = ARGV[3] == '1'
local offset = tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local n_ranges = tonumber(ARGV[6])
local p = 7 + 2 * n_ranges
local n_equals = tonumber(ARGV[p])
local equals = {}
for i = 1, n_equals do
  equals[ARGV[p + 2 * i - 1]] = ARGV[p + 2 * i]
end

-- A value cjson cannot read is kept: Python reads it, and reports it.
local function matches(parts)
  if n_equals == 0 or not parts then return true end
  local ok, value = pcall(cjson.decode, parts[6])
  if not ok or type(value) ~= 'table' then return true end
  for k, want in pairs(equals) do
    if value[k] ~= want then return false end
  end
  return true
end

local found = {}
local position = 0
for r = 1, n_ranges do
  local low, high = ARGV[5 + 2 * r], ARGV[6 + 2 * r]
  while true do
    local fields = redis.call('ZRANGEBYLEX', keys.names, low, high, 'LIMIT', 0, CHUNK)
    if #fields == 0 then break end
    local frames = redis.call('HMGET', keys.items, unpack(fields))
    for j = 1, #fields do
      local frame = frames[j]
      if frame then
        position = position + 1
        local parts = item_parts(frame)
        if item_live(parts, now) and matches(parts) then
          local updated = parts and tonumber(parts[3]) or -math.huge
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
  local field, frame = hit[3], hit[4]
  if refresh then
    frame = item_refresh(keys.items, keys.expiry, field, frame, hit[5], now)
  end
  out[#out + 1] = field
  out[#out + 1] = frame
  out[#out + 1] = with_vectors and redis.call('HGET', keys.vectors, field) or false
end
return out
