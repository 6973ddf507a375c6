-- The writes of a checkpoint are the fields '<S> NUL <n>' of B:w, n = 0, 1, ... with no
-- gap (writes to a checkpoint not stored yet wait under '<P> NUL <n>').  Returns the
-- fields and their values.
local function writes_of(B, owner)
  local fields, vals, n, size = {}, {}, 0, 4
  while true do
    local batch = {}
    for i = 0, size - 1 do batch[i + 1] = owner .. '\0' .. (n + i) end
    local got = redis.call('HMGET', B .. ':w', unpack(batch))
    for i = 1, size do
      if not got[i] then return fields, vals end
      fields[#fields + 1] = batch[i]
      vals[#vals + 1] = got[i]
    end
    n = n + size
    size = math.min(2 * size, 256)
  end
end

-- Whose a write field is: all before its last NUL.
local function write_owner(w)
  local last, p = nil, 0
  while true do
    p = string.find(w, '\0', p + 1, true)
    if not p then break end
    last = p
  end
  if not last then return nil end
  return string.sub(w, 1, last - 1)
end
