-- list: walk one thread's checkpoints newest first, between two lexical bounds, and
-- return those whose metadata matches.  Returns {cursor, matches}; a non-empty cursor
-- means "go on below this entry".
--
-- KEYS[1]  walked_key     B:i (index 'i') or B:a (index 'a')
-- ARGV[1]  B              the thread's base key
-- ARGV[2]  index          'i': one namespace, bounds on B:i members; 'a': all
--                         namespaces, bounds on B:a entries, with the root namespace's
--                         checkpoints (in B:i only) merged in: a root checkpoint's entry
--                         would be '<escaped id> NUL'
-- ARGV[3]  max_bound      ZREVRANGEBYLEX max
-- ARGV[4]  min_bound      ZREVRANGEBYLEX min
-- ARGV[5]  want           stop after this many matches, 0 for no limit
-- ARGV[6]  scan_budget    stop after examining this many entries, 0 for no limit
-- ARGV[7]  filter         metadata filter JSON, or '' for none
-- ARGV[8]  with_data      '1': matches are assembled checkpoints; '0': their members
-- ARGV[9]  now            the client's time in ms: a thread expired at now has nothing
-- ARGV[10] refresh        '1': any match moves the thread's expiry (refresh_on_read)
-- ARGV[11] ttl_ms         the saver's ttl in ms, 0 for none

--! include lib/assemble.lua
--! include lib/byte_order.lua
--! include lib/expiry.lua
--! include lib/members.lua

local walked_key = KEYS[1]
local B = ARGV[1]
local by_id = ARGV[2] == 'a'
local max_bound = ARGV[3]
local min_bound = ARGV[4]
local want = tonumber(ARGV[5])
local scan_budget = tonumber(ARGV[6])
local flt = nil
if ARGV[7] ~= '' then flt = cjson.decode(ARGV[7]) end
local with_data = ARGV[8] == '1'
local now = tonumber(ARGV[9])
local life = readable(B, now)
if not life then return {'', {}} end

-- Redis's default hash-max-listpack-entries: smaller hashes are usually one listpack.
local LISTPACK_ENTRIES = 512

-- JSON-typed equality on top-level metadata keys: true is not 1, "1" is not 1.  With
-- metadata (B:m as a table, when the walk read it whole) or one HGET per checkpoint.
local function matches(m, metadata)
  local raw
  if metadata then
    raw = metadata[seq_of(m) or '']
  else
    raw = redis.call('HGET', B .. ':m', seq_of(m) or '')
  end
  if not raw then return false end
  local ok, md = pcall(cjson.decode, raw)
  if not ok or type(md) ~= 'table' then return false end
  for k, v in pairs(flt) do
    local actual = md[k]
    if actual == nil or type(actual) ~= type(v) or actual ~= v then return false end
  end
  return true
end

-- A small B:m is one listpack, which HGET scans: a filtered walk reads it whole instead
-- (unless it is tiny).
local metadata = nil
local entries = flt and redis.call('HLEN', B .. ':m') or 0
if entries > 32 and entries <= LISTPACK_ENTRIES then
  metadata = {}
  local flat = redis.call('HGETALL', B .. ':m')
  for i = 1, #flat, 2 do metadata[flat[i]] = flat[i + 1] end
end

-- A descending walk of one index between two bounds, 100 entries per call.
local function stream(key, maxb, minb)
  return {key = key, maxb = maxb, minb = minb, buf = {}, at = 1, done = false}
end
local function peek(st)
  if st.at > #st.buf then
    if st.done then return nil end
    st.buf = redis.call('ZREVRANGEBYLEX', st.key, st.maxb, st.minb, 'LIMIT', 0, 100)
    st.at = 1
    if #st.buf < 100 then st.done = true end
    if #st.buf == 0 then return nil end
    st.maxb = '(' .. st.buf[#st.buf]
  end
  return st.buf[st.at]
end

-- A B:a bound as a bound on root members ':<escaped id> NUL <S>'.  Only a cursor left
-- at another namespace's entry ('<id> NUL <ns>') needs care: the root entry of that id
-- sorts below it, so the root's members of the id are still to come.
local function root_bound(b)
  if b == '+' then return '(;' end
  if b == '-' then return '[:' end
  local rest = string.sub(b, 2)
  local z = string.find(rest, '\0', 1, true)
  if z and z < #rest then return '(:' .. string.sub(rest, 1, z - 1) .. '\1' end
  return string.sub(b, 1, 1) .. ':' .. rest
end

local root, others
if by_id then
  root = stream(B .. ':i', root_bound(max_bound), root_bound(min_bound))
  others = stream(walked_key, max_bound, min_bound)
else
  root = stream(walked_key, max_bound, min_bound)
end

local out, cursor, scanned = {}, '', 0
while true do
  local r = peek(root)
  local a = others and peek(others)
  if not r and not a then break end
  local m, entry
  -- newest id first; for one id the root namespace ('') comes last
  if a and (not r or not bytes_before(string.sub(a, 1, string.find(a, '\0', 1, true) - 1),
                                      string.sub(split_member(r), 2))) then
    others.at = others.at + 1
    m, entry = lookup(B, entry_key(a)), a
  else
    root.at = root.at + 1
    m, entry = r, r
  end
  scanned = scanned + 1
  if m and (flt == nil or matches(m, metadata)) then
    if with_data then
      local found = assemble(B, m)
      if found then out[#out + 1] = found end
    else
      out[#out + 1] = m
    end
  end
  if (want > 0 and #out >= want) or (scan_budget > 0 and scanned >= scan_budget) then
    cursor = entry
    -- a root member's place among B:a entries
    if by_id and entry == r then cursor = string.sub(split_member(r), 2) .. '\0' end
    break
  end
end
if #out > 0 then refresh_on_read(B, life, now, ARGV[10], tonumber(ARGV[11])) end
return {cursor, out}
