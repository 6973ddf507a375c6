-- remove_thread: unlink every key of one thread if it still passes the guard (atomic:
-- no writer of the thread interleaves between the check and the unlink).
--
-- KEYS[1]  index_key  B:i
-- ARGV[1]  B          the thread's base key
-- ARGV[2]  written_before  only if last written strictly before this time in ms ('': any)
-- ARGV[3]  expired_at      only if expired at this time in ms ('': any)
--
-- Returns {status, checkpoints, writes, blobs, items, e, l, run id...}: status 1 removed
-- (the counts are what went, the run ids those its checkpoints carried), 0 kept by the
-- guard, 2 nothing of it is stored (Redis expired its keys, or it is removed already).
-- e and l are its expiry and last write in ms ('' when absent), for the caller to
-- correct the global index scores of a thread the guard kept.  A thread of the earlier
-- release (no last write stored) counts as written at time 0.

--! include lib/expiry.lua

local B = ARGV[1]
local written_before = tonumber(ARGV[2])
local expired_at = tonumber(ARGV[3])

local function shown(x)
  if x == nil then return '' end
  return ms(x)
end

if redis.call('EXISTS', unpack(thread_keys(B))) == 0 then return {2, 0, 0, 0, 0, '', ''} end
local life = lifecycle_of(B)
local keep = (written_before ~= nil and not ((life.l or 0) < written_before))
  or (expired_at ~= nil and not (life.e ~= nil and life.e <= expired_at))
if keep then return {0, 0, 0, 0, 0, shown(life.e), shown(life.l)} end
local out = {1, redis.call('HLEN', B .. ':c'), redis.call('HLEN', B .. ':w'),
             redis.call('HLEN', B .. ':b'), redis.call('HLEN', B .. ':t'),
             shown(life.e), shown(life.l)}
for _, run in ipairs(thread_runs(B)) do out[#out + 1] = run end
unlink_thread(B)
return out
