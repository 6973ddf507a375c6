-- The keys of one thread are its base key B (ARGV[1] of every script) plus these
-- suffixes; they share B's hash tag, so one cluster slot.  ':h' is the thread's
-- lifecycle hash (lib/expiry.lua): it expires and is unlinked with the rest.
local THREAD_KEY_SUFFIXES = {':i', ':a', ':c', ':m', ':r', ':b', ':w', ':t', ':h'}

local function thread_keys(B)
  local keys = {}
  for i, suffix in ipairs(THREAD_KEY_SUFFIXES) do keys[i] = B .. suffix end
  return keys
end

local function unlink_thread(B)
  redis.call('UNLINK', unpack(thread_keys(B)))
end

-- The distinct run ids the thread's checkpoints carry (B:r, but its '#' counter), so a
-- caller that unlinks the thread can take it out of those runs' indexes.
local function thread_runs(B)
  local runs, seen = {}, {}
  local stored_runs = redis.call('HGETALL', B .. ':r')
  for i = 1, #stored_runs, 2 do
    local run = stored_runs[i + 1]
    if stored_runs[i] ~= '#' and not seen[run] then
      seen[run] = true
      runs[#runs + 1] = run
    end
  end
  return runs
end
