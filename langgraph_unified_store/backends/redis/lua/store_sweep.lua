-- store_sweep: remove every trace of up to `batch` items expired at or before now;
-- returns how many went (the caller repeats while a whole batch went).
--
-- KEYS[1..5]  items, names, expiry, vectors, recent   <prefix>:{memory}:...
-- ARGV[1]     now     epoch seconds (the core's clock)
-- ARGV[2]     batch

--! include lib/store_items.lua

local keys = store_keys()
local doomed = redis.call('ZRANGEBYSCORE', keys.expiry, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
item_forget(keys, doomed)
return #doomed
