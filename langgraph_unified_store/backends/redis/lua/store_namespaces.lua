-- store_namespaces: the distinct namespace texts of live items in some lexical ranges
-- of the names index, one range lookup per namespace once a live item is seen in it.
--
-- KEYS[1..5]  items, names, expiry, vectors, recent   <prefix>:{memory}:...
-- ARGV[1]     now        epoch seconds (the core's clock)
-- ARGV[2..]   (min, max) ZRANGEBYLEX bounds

local CHUNK = 256
local names, expiry = KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local out = {}
for r = 2, #ARGV - 1, 2 do
  local low, high = ARGV[r], ARGV[r + 1]
  while true do
    local fields = redis.call('ZRANGEBYLEX', names, low, high, 'LIMIT', 0, CHUNK)
    if #fields == 0 then break end
    local jumped = false
    for j = 1, #fields do
      local field = fields[j]
      local e = redis.call('ZSCORE', expiry, field)
      if not e or tonumber(e) > now then
        local cut = string.find(field, '\0', 1, true) or (#field + 1)
        local ns = string.sub(field, 1, cut - 1)
        out[#out + 1] = ns
        -- Past every field of this namespace: ns NUL ... < ns \1.
        low = '[' .. ns .. '\1'
        jumped = true
        break
      end
    end
    if not jumped then
      if #fields < CHUNK then break end
      low = '(' .. fields[#fields]
    end
  end
end
return out
