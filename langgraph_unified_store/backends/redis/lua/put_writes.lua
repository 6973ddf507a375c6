-- put_writes: store a task's writes to one checkpoint, and the items they name.
--
-- KEYS[1]  writes_key   B:w (routes the call to the thread's slot)
-- ARGV[1]  B            the thread's base key
-- ARGV[2]  replace      '1': a write whose key is stored already is replaced; '0': kept
-- ARGV[3]  ttl_ms       the saver's ttl in ms, 0 for none (a thread's own t wins)
-- ARGV[4]  P            the checkpoint's key (its writes wait under P until it is stored)
-- ARGV[5]  write_count  how many (key, value) write pairs follow
-- ARGV[6]  now          the client's time in ms (lifecycle.now())
-- ARGV[7]  threads_key  the global thread index, or '' when the caller indexes
-- ARGV[8]  names_key    the global index of thread ids
-- ARGV[9]  written_key  the global index scored by last write
-- ARGV[10] member       the thread id, its member there
-- ARGV[11...]           write_count (key, value) pairs, then (item ref, value) pairs
--
-- Returns the thread's expiry in ms, or '' for none.
--
-- A write's key is how its value's head (part 2 of the frame) begins: its task id and
-- index, which is what a second write of the same key is matched on.

--! include lib/expiry.lua
--! include lib/frames.lua
--! include lib/members.lua
--! include lib/writes.lua

local writes_key = KEYS[1]
local B = ARGV[1]
local replace = ARGV[2] == '1'
local ttl_ms = tonumber(ARGV[3])
local P = ARGV[4]
local write_count = tonumber(ARGV[5])
local now = tonumber(ARGV[6])
local threads_key = ARGV[7]
local first_write = 11

local w = begin_write(B, now, ttl_ms)
if threads_key ~= '' then
  redis.call('ZADD', threads_key, w.e and ms(w.e) or '+inf', ARGV[10])
  redis.call('ZADD', ARGV[8], 0, ARGV[10])
  redis.call('ZADD', ARGV[9], ms(now), ARGV[10])
end
local m = lookup(B, P)
local owner = P
if m then owner = seq_of(m) end
local fields, vals = writes_of(B, owner)
local p = first_write
for _ = 1, write_count do
  local key, value = ARGV[p], ARGV[p + 1]
  local found = nil
  for j = 1, #vals do
    local head = part(vals[j], 2)
    if head and string.sub(head, 1, #key) == key then
      found = j
      break
    end
  end
  if not found then
    local field = owner .. '\0' .. #fields
    redis.call('HSET', writes_key, field, value)
    fields[#fields + 1] = field
    vals[#vals + 1] = value
  elseif replace then
    redis.call('HSET', writes_key, fields[found], value)
    vals[found] = value
  end
  p = p + 2
end
while p <= #ARGV do
  redis.call('HSETNX', B .. ':t', ARGV[p], ARGV[p + 1])
  p = p + 2
end
return finish_write(B, now, w)
