-- adopt: give a thread the earlier release wrote (no B:h) its lifecycle hash, stamped as
-- first and last written now (the upgrade), as the SQL backends' migrations stamp theirs:
-- an age-based delete then counts its age from the upgrade, not from 1970.  B:h expires
-- with the thread's index when that has a ttl.  Nothing for a thread that has B:h or is gone.
--
-- KEYS[1]  index_key  B:i
-- ARGV[1]  B          the thread's base key
-- ARGV[2]  now        ms, the client's clock
--
-- Returns 1 when it stamped the thread, else 0.

local B = ARGV[1]
if redis.call('EXISTS', B .. ':h') == 1 or redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', B .. ':h', 'f', ARGV[2], 'l', ARGV[2])
local left = redis.call('PTTL', KEYS[1])
if left > 0 then redis.call('PEXPIRE', B .. ':h', left) end
return 1
