-- delete_thread: unlink every key of one thread.  Returns the thread's run ids, so the
-- caller can take the thread out of their run indexes.
--
-- KEYS[1]  index_key  B:i
-- ARGV[1]  B          the thread's base key

--! include lib/thread_keys.lua

local B = ARGV[1]

local runs, seen = {}, {}
local stored_runs = redis.call('HGETALL', B .. ':r')
for i = 1, #stored_runs, 2 do
  local run = stored_runs[i + 1]
  if stored_runs[i] ~= '#' and not seen[run] then
    seen[run] = true
    runs[#runs + 1] = run
  end
end
unlink_thread(B)
return runs
