-- retain: delete some checkpoints of one thread, then everything only they named.
-- Deletes the other checkpoints, their writes, then blobs no survivor names, then items
-- no surviving blob, write or segment names (not when a survivor's record cannot be
-- read: what it names is unknown then).  Unlinks the thread's keys when no checkpoint is
-- left.  Returns {gone, deleted, run id...}: gone is 1 when the thread is gone, deleted
-- how many checkpoints went, then the run ids no checkpoint here carries any more.
--
-- KEYS[1]  index_key  B:i
-- ARGV[1]  B          the thread's base key
-- ARGV[2]  mode       'keep': ARGV[3...] are the P to keep (and any newer than those of
--                     their namespace); 'runs': ARGV[3...] are the run ids to delete
-- ARGV[3...]          the P or run ids

--! include lib/byte_order.lua
--! include lib/blobs.lua
--! include lib/chunked.lua
--! include lib/frames.lua
--! include lib/members.lua
--! include lib/thread_keys.lua
--! include lib/writes.lua

local index_key = KEYS[1]
local B = ARGV[1]
local mode = ARGV[2]
local first_value = 3

local all = redis.call('ZRANGE', index_key, 0, -1)
local run_pairs = {}
local stored_runs = redis.call('HGETALL', B .. ':r')
for i = 1, #stored_runs, 2 do
  if stored_runs[i] ~= '#' then
    run_pairs[#run_pairs + 1] = stored_runs[i]
    run_pairs[#run_pairs + 1] = stored_runs[i + 1]
  end
end
local dead, alive, keep_writes = {}, {}, {}
if mode == 'keep' then
  local keep, newest = {}, {}
  for i = first_value, #ARGV do
    keep[ARGV[i]] = true
    keep_writes[ARGV[i]] = true  -- writes waiting for a kept checkpoint
    local ns = ns_of(ARGV[i])
    if not newest[ns] or bytes_before(newest[ns], ARGV[i]) then newest[ns] = ARGV[i] end
  end
  for _, m in ipairs(all) do
    local P, s = split_member(m)
    -- A checkpoint newer than every kept one of its namespace was put after the caller
    -- chose what to keep (it may be the head now): it stays.
    local ns = ns_of(P)
    if keep[P] or not newest[ns] or bytes_before(newest[ns], P) then
      alive[#alive + 1] = m
      keep_writes[s or ''] = true
    else
      dead[#dead + 1] = m
    end
  end
else
  local runs, doomed = {}, {}
  for i = first_value, #ARGV do runs[ARGV[i]] = true end
  for i = 1, #run_pairs, 2 do
    if runs[run_pairs[i + 1]] then doomed[run_pairs[i]] = true end
  end
  for _, m in ipairs(all) do
    local s = seq_of(m) or ''
    if doomed[s] then dead[#dead + 1] = m else alive[#alive + 1] = m end
  end
  if #dead == 0 then return {0, 0} end
  for _, m in ipairs(alive) do keep_writes[seq_of(m) or ''] = true end
end
if #dead > 0 then
  local entries, seqs = {}, {}
  for _, m in ipairs(dead) do
    local entry = by_id_entry(m)
    if entry ~= '' then entries[#entries + 1] = entry end
    seqs[#seqs + 1] = seq_of(m) or ''
  end
  call_chunked('ZREM', index_key, dead)
  call_chunked('ZREM', B .. ':a', entries)
  for _, suffix in ipairs({':c', ':m', ':r'}) do call_chunked('HDEL', B .. suffix, seqs) end
end
-- writes of checkpoints that are not kept (or were never stored)
local live_writes, dead_writes = {}, {}
for _, w in ipairs(redis.call('HKEYS', B .. ':w')) do
  local owner = write_owner(w)
  if owner and keep_writes[owner] then
    live_writes[#live_writes + 1] = w
  else
    dead_writes[#dead_writes + 1] = w
  end
end
call_chunked('HDEL', B .. ':w', dead_writes)
-- blobs no surviving checkpoint names
local live_blobs, live_blob_list, unsure = {}, {}, false
local alive_seqs = {}
for i, m in ipairs(alive) do alive_seqs[i] = seq_of(m) or '' end
local recs = hmget_all(B .. ':c', alive_seqs)
for i = 1, #recs do
  if recs[i] then
    local fields = blob_fields(alive[i], recs[i])
    if fields == nil then
      unsure = true
    else
      for _, field in ipairs(fields) do
        if not live_blobs[field] then
          live_blobs[field] = true
          live_blob_list[#live_blob_list + 1] = field
        end
      end
    end
  end
end
if not unsure then
  local dead_blobs = {}
  for _, field in ipairs(redis.call('HKEYS', B .. ':b')) do
    if not live_blobs[field] then dead_blobs[#dead_blobs + 1] = field end
  end
  call_chunked('HDEL', B .. ':b', dead_blobs)
  -- items nothing surviving names (two levels: segments name elements)
  local refs, seen = {}, {}
  for _, v in ipairs(hmget_all(B .. ':b', live_blob_list)) do collect_refs(v, refs, seen) end
  for _, v in ipairs(hmget_all(B .. ':w', live_writes)) do collect_refs(v, refs, seen) end
  local inner = {}
  for _, v in ipairs(hmget_all(B .. ':t', refs)) do collect_refs(v, inner, seen) end
  local dead_items = {}
  for _, ref in ipairs(redis.call('HKEYS', B .. ':t')) do
    if not seen[ref] then dead_items[#dead_items + 1] = ref end
  end
  call_chunked('HDEL', B .. ':t', dead_items)
end
-- run ids no surviving checkpoint carries any more
local alive_set, still, gone_runs, reported = {}, {}, {}, {}
for _, s in ipairs(alive_seqs) do alive_set[s] = true end
for i = 1, #run_pairs, 2 do
  if alive_set[run_pairs[i]] then still[run_pairs[i + 1]] = true end
end
for i = 1, #run_pairs, 2 do
  local run = run_pairs[i + 1]
  if not still[run] and not reported[run] then
    reported[run] = true
    gone_runs[#gone_runs + 1] = run
  end
end
local gone = 0
if redis.call('ZCARD', index_key) == 0 then
  unlink_thread(B)
  gone = 1
end
local out = {gone, #dead}
for _, run in ipairs(gone_runs) do out[#out + 1] = run end
return out
