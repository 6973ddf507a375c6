-- B:i members are P NUL S: P = '<hex ns>:<escaped id>' (NUL and \1 escaped, so P holds
-- no NUL and sorts as the id does), S = the checkpoint's number in the thread, the field
-- that names it in B:c, B:m, B:r and B:w.  B:a entries are '<escaped id> NUL <hex ns>'.
-- (keys.py is the Python side of this codec.)

local function split_member(m)
  local z = string.find(m, '\0', 1, true)
  if not z then return m, nil end
  return string.sub(m, 1, z - 1), string.sub(m, z + 1)
end

local function seq_of(m)
  local z = string.find(m, '\0', 1, true)
  return z and string.sub(m, z + 1)
end

local function ns_of(m)
  local colon = string.find(m, ':', 1, true) or (#m + 1)
  return string.sub(m, 1, colon - 1)
end

-- The B:i member of P, or nil.
local function lookup(B, P)
  return redis.call('ZRANGEBYLEX', B .. ':i', '[' .. P .. '\0', '(' .. P .. '\1', 'LIMIT', 0, 1)[1]
end

-- A new checkpoint number (B:r field '#' counts them; numbers are never reused).
local function next_seq(B)
  return string.format('%d', redis.call('HINCRBY', B .. ':r', '#', 1))
end

-- The B:a entry of a member outside the root namespace ('' for the root one).
local function by_id_entry(m)
  local P = split_member(m)
  local colon = string.find(P, ':', 1, true)
  if colon == 1 then return '' end
  return string.sub(P, colon + 1) .. '\0' .. string.sub(P, 1, colon - 1)
end

-- The P a B:a entry stands for.
local function entry_key(a)
  local z = string.find(a, '\0', 1, true)
  return string.sub(a, z + 1) .. ':' .. string.sub(a, 1, z - 1)
end
