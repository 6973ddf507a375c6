--! include lib/frames.lua
--! include lib/members.lua

-- Hex of a channel name, remembered for the rest of the call (a walk assembles many
-- checkpoints over the same channels).
local HEXED = {}
local function tohex(s)
  local hexed = HEXED[s]
  if hexed then return hexed end
  local out = {}
  for i = 1, #s, 64 do
    local j = math.min(i + 63, #s)
    out[#out + 1] = string.format(string.rep('%02x', j - i + 1), string.byte(s, i, j))
  end
  hexed = table.concat(out)
  HEXED[s] = hexed
  return hexed
end

-- The B:b fields a checkpoint names, '<hex ns>:<hex channel>:<version>', from the
-- channel versions in its record's head (part 1 of the record's frame); nil when the
-- head cannot be read, or its versions are not an object of strings (Python reports
-- that; a collection then keeps every blob: core.rules.reachable).
local function blob_fields(m, rec)
  local ok, head = pcall(cjson.decode, part(rec, 1) or '')
  if not ok or type(head) ~= 'table' or type(head.v) ~= 'table' then return nil end
  local ns = ns_of(m)
  local out = {}
  for channel, version in pairs(head.v) do
    if type(channel) ~= 'string' or type(version) ~= 'string' then return nil end
    out[#out + 1] = ns .. ':' .. tohex(channel) .. ':' .. version
  end
  return out
end
