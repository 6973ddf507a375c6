-- restore: copy a snapshot (snapshot.lua) into a thread, for copy_thread.  A checkpoint
-- the target has keeps its number there, a new one gets a new number; checkpoints
-- overwrite, and so do writes (of the same checkpoint, task and index); blobs and items
-- are insert-if-absent, as everywhere.
--
-- KEYS[1]  index_key  B:i of the target
-- ARGV[1]  B          the target thread's base key
-- ARGV[2]  ttl_ms     the saver's ttl in ms, 0 for none (the target's own t wins)
-- ARGV[3]  now        the client's time in ms (lifecycle.now())
-- ARGV[4...]          eight sections in snapshot.lua's order (B:i, B:c, B:m, B:r, B:b,
--                     B:w, B:t, B:a), each a count and that many values

--! include lib/expiry.lua
--! include lib/frames.lua
--! include lib/members.lua
--! include lib/writes.lua

local index_key = KEYS[1]
local B = ARGV[1]
local ttl_ms = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local first_section = 4

local w = begin_write(B, now, ttl_ms)
local p = first_section
local function section()
  local n = tonumber(ARGV[p])
  local first = p + 1
  p = first + n
  return first, n
end
local number = {}  -- source number -> target number
local first, n = section()
for i = first, first + n - 1 do
  local P, s = split_member(ARGV[i])
  if s then
    local m = lookup(B, P)
    if m then
      number[s] = seq_of(m)
    else
      number[s] = next_seq(B)
      redis.call('ZADD', index_key, 0, P .. '\0' .. number[s])
    end
    redis.call('HDEL', B .. ':r', number[s])
  end
end
for _, suffix in ipairs({':c', ':m', ':r'}) do
  first, n = section()
  for i = first, first + n - 1, 2 do
    local target = number[ARGV[i]]
    if target then redis.call('HSET', B .. suffix, target, ARGV[i + 1]) end
  end
end
first, n = section()
for i = first, first + n - 1, 2 do redis.call('HSETNX', B .. ':b', ARGV[i], ARGV[i + 1]) end
-- A write's task id and index, from its head.
local function write_key(v)
  local ok, head = pcall(cjson.decode, part(v, 2) or '')
  if not ok or type(head) ~= 'table' or type(head[1]) ~= 'string' then return nil end
  return head[1] .. '\0' .. tostring(head[2])
end
first, n = section()
local targets = {}  -- target owner -> {count, key -> field}
for i = first, first + n - 1, 2 do
  local owner = write_owner(ARGV[i])
  if owner then
    -- a number names a checkpoint; anything else is a P whose writes wait for it
    local target = number[owner]
    if not target and string.find(owner, ':', 1, true) then target = owner end
    if target then
      local t = targets[target]
      if not t then
        local fields, vals = writes_of(B, target)
        t = {count = #fields, by_key = {}}
        for j = 1, #fields do
          local key = write_key(vals[j])
          if key then t.by_key[key] = fields[j] end
        end
        targets[target] = t
      end
      local key = write_key(ARGV[i + 1])
      local field = key and t.by_key[key]
      if not field then
        field = target .. '\0' .. t.count
        t.count = t.count + 1
        if key then t.by_key[key] = field end
      end
      redis.call('HSET', B .. ':w', field, ARGV[i + 1])
    end
  end
end
first, n = section()
for i = first, first + n - 1, 2 do redis.call('HSETNX', B .. ':t', ARGV[i], ARGV[i + 1]) end
first, n = section()
for i = first, first + n - 1 do redis.call('ZADD', B .. ':a', 0, ARGV[i]) end
-- Returns the target's expiry in ms, or '' for none.
return finish_write(B, now, w)
