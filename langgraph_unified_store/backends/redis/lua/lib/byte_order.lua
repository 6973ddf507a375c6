-- Whether x sorts before y byte by byte, as Redis orders lexical ranges (Lua's < follows
-- the server's collation locale).
local function bytes_before(x, y)
  for i = 1, math.min(#x, #y) do
    local p, q = string.byte(x, i), string.byte(y, i)
    if p ~= q then return p < q end
  end
  return #x < #y
end
