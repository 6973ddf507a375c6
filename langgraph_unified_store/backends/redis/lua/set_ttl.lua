-- set_ttl: give one thread its own ttl (0 = core.lifecycle.PINNED: never expires) and
-- move its expiry to its last write plus that ttl, on B:h and every key.
--
-- KEYS[1]  index_key  B:i
-- ARGV[1]  B          the thread's base key
-- ARGV[2]  now        the client's time in ms
-- ARGV[3]  ttl_ms     the thread's own ttl in ms, 0 to pin it
--
-- Returns false (nil) when the thread has no checkpoint or has expired at now, else its
-- expiry in ms ('' for never).  A thread of the earlier release (no last write stored)
-- counts from now.

--! include lib/expiry.lua

local index_key = KEYS[1]
local B = ARGV[1]
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])

local life = readable(B, now)
if not life or redis.call('ZCARD', index_key) == 0 then return false end
local e = expiry_at(life.l or now, ttl)
redis.call('HSET', B .. ':h', 't', ARGV[3])
set_expiry(B, e, now, true)
if e then return ms(e) end
return ''
