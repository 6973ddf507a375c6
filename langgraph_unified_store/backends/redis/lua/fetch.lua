-- fetch: one checkpoint, assembled (see lib/assemble.lua), or false.
--
-- KEYS[1]  index_key  B:i
-- ARGV[1]  B          the thread's base key
-- ARGV[2]  by         'id': ARGV[3] is a P; 'member': a B:i member a listing found (gone
--                     if its number has no record now); 'latest': a hex namespace, whose
--                     newest checkpoint is wanted
-- ARGV[3]  target     the P, member or hex namespace
-- ARGV[4]  now        the client's time in ms: a thread expired at now is absent
-- ARGV[5]  refresh    '1': a found checkpoint moves the thread's expiry (refresh_on_read)
-- ARGV[6]  ttl_ms     the saver's ttl in ms, 0 for none

--! include lib/assemble.lua
--! include lib/expiry.lua
--! include lib/members.lua

local index_key = KEYS[1]
local B = ARGV[1]
local by = ARGV[2]
local target = ARGV[3]
local now = tonumber(ARGV[4])
local life = readable(B, now)
if not life then return false end

local m
if by == 'latest' then
  m = redis.call('ZREVRANGEBYLEX', index_key, '(' .. target .. ';', '[' .. target .. ':',
                 'LIMIT', 0, 1)[1]
elseif by == 'member' then
  m = target
else
  m = lookup(B, target)
end
if not m then return false end
local found = assemble(B, m)
if found then refresh_on_read(B, life, now, ARGV[5], tonumber(ARGV[6])) end
return found
