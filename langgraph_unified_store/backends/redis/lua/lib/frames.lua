-- Stored values are frames: parts, each a 4-byte big-endian length and its bytes
-- (values.frame in Python).  Stored frames are trusted for nothing: a garbled length is
-- clamped to the value, so a corrupt value costs no more work than an intact one
-- (Python reports it).
local function u32(s, p)
  local a, b, c, d = string.byte(s, p, p + 3)
  if not d then return 0 end
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- Framed part k (from 1) of a value, or nil.
local function part(s, k)
  local p, n = 1, #s
  for _ = 2, k do
    if p + 3 > n then return nil end
    p = p + 4 + math.min(u32(s, p), n - p - 3)
  end
  if p + 3 > n then return nil end
  return string.sub(s, p + 4, p + 3 + math.min(u32(s, p), n - p - 3))
end

-- Adds the item refs a framed value names (its first part: 16-byte refs back to back)
-- to refs, each once (seen holds those already there).
local function collect_refs(v, refs, seen)
  if not v then return end
  local len = math.min(u32(v, 1), #v - 4)
  for p = 5, len - 11, 16 do
    local ref = string.sub(v, p, p + 15)
    if not seen[ref] then
      seen[ref] = true
      refs[#refs + 1] = ref
    end
  end
end
