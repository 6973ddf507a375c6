-- put_writes: store a task's writes to one checkpoint, and the items they name.
--
-- KEYS[1]  writes_key   B:w (routes the call to the thread's slot)
-- ARGV[1]  B            the thread's base key
-- ARGV[2]  replace      '1': a write whose key is stored already is replaced; '0': kept
-- ARGV[3]  ttl_ms       thread expiry in ms, 0 for none
-- ARGV[4]  P            the checkpoint's key (its writes wait under P until it is stored)
-- ARGV[5]  write_count  how many (key, value) write pairs follow
-- ARGV[6...]            write_count (key, value) pairs, then (item ref, value) pairs
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
local first_write = 6

local at = deadline(ttl_ms)
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
refresh(B, at)
return 1
