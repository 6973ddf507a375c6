-- delete_thread: unlink every key of one thread.  Returns the thread's run ids, so the
-- caller can take the thread out of their run indexes.
--
-- KEYS[1]  index_key  B:i
-- ARGV[1]  B          the thread's base key

--! include lib/thread_keys.lua

local B = ARGV[1]

local runs = thread_runs(B)
unlink_thread(B)
return runs
