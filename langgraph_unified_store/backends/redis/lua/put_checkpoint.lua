-- put_checkpoint: store one checkpoint, its new blobs and items, and (on a single
-- server) its entries in the global indexes.
--
-- KEYS[1]  index_key        B:i (routes the call to the thread's slot)
-- ARGV[1]  B                the thread's base key
-- ARGV[2]  P                the checkpoint's key, '<hex ns>:<escaped id>'
-- ARGV[3]  by_id_entry      its B:a entry, or '' in the root namespace
-- ARGV[4]  record           framed (head JSON, type, record bytes)
-- ARGV[5]  metadata         metadata JSON
-- ARGV[6]  has_run          '1' when the checkpoint has a run id, else '0'
-- ARGV[7]  run_id           the run id ('' without one)
-- ARGV[8]  ttl_ms           the saver's ttl in ms, 0 for none (a thread's own t wins)
-- ARGV[9]  now              the client's time in ms (lifecycle.now())
-- ARGV[10] blob_count       how many (field, value) blob pairs follow the inherited fields
-- ARGV[11] threads_key      the global thread index (score: expiry), or '' when the
--                           caller indexes
-- ARGV[12] names_key        the global index of thread ids (score 0, for paging by id)
-- ARGV[13] written_key      the global index scored by last write
-- ARGV[14] thread_member    the thread id, its member there
-- ARGV[15] run_key          the run's thread set, or '' (no run, a ttl, or caller indexes)
-- ARGV[16] inherited_count  how many inherited blob fields follow
-- ARGV[17...]               the inherited blob fields, then blob_count (field, value)
--                           pairs, then (item ref, value) pairs to the end
--
-- The global index step names keys of other slots: on a single server it runs here, in
-- the same round trip; on a cluster the caller sends it.
-- Returns {1, expiry ms or ''} (STORED), or, without writing anything, {0, ref} (ITEM_MISSING) when an item
-- the new values name is neither sent nor stored (the saver encoded against a list this
-- thread no longer has), or {2, field...} (BLOBS_MISSING) when blobs the checkpoint
-- inherits without sending are gone (pruned, deleted or expired since the saver read its
-- parent).  The script is atomic: nothing can delete them between this check and the
-- writes below.

--! include lib/chunked.lua
--! include lib/expiry.lua
--! include lib/frames.lua
--! include lib/members.lua
--! include lib/writes.lua

local index_key = KEYS[1]
local B = ARGV[1]
local P = ARGV[2]
local by_id = ARGV[3]
local record = ARGV[4]
local metadata = ARGV[5]
local has_run = ARGV[6] == '1'
local run_id = ARGV[7]
local ttl_ms = tonumber(ARGV[8])
local now = tonumber(ARGV[9])
local blob_count = tonumber(ARGV[10])
local threads_key = ARGV[11]
local names_key = ARGV[12]
local written_key = ARGV[13]
local thread_member = ARGV[14]
local run_key = ARGV[15]
local inherited_count = tonumber(ARGV[16])
local first_inherited = 17
local first_blob = first_inherited + inherited_count
local first_item = first_blob + 2 * blob_count

local w = begin_write(B, now, ttl_ms)
local gone = {2}
for p = first_inherited, first_blob - 1 do
  if redis.call('HEXISTS', B .. ':b', ARGV[p]) == 0 then gone[#gone + 1] = ARGV[p] end
end
if #gone > 1 then return gone end
local needed, seen = {}, {}
for p = first_item, #ARGV, 2 do seen[ARGV[p]] = true end
for p = first_blob + 1, first_item - 1, 2 do collect_refs(ARGV[p], needed, seen) end
for p = first_item + 1, #ARGV, 2 do collect_refs(ARGV[p], needed, seen) end
for _, ref in ipairs(needed) do
  if redis.call('HEXISTS', B .. ':t', ref) == 0 then return {0, ref} end
end
if threads_key ~= '' then
  redis.call('ZADD', threads_key, w.e and ms(w.e) or '+inf', thread_member)
  redis.call('ZADD', names_key, 0, thread_member)
  redis.call('ZADD', written_key, ms(now), thread_member)
  if run_key ~= '' then redis.call('SADD', run_key, thread_member) end
end
for p = first_blob, first_item - 1, 2 do redis.call('HSETNX', B .. ':b', ARGV[p], ARGV[p + 1]) end
for p = first_item, #ARGV, 2 do redis.call('HSETNX', B .. ':t', ARGV[p], ARGV[p + 1]) end
local m = lookup(B, P)
local s
if m then
  s = seq_of(m)
else
  s = next_seq(B)
  redis.call('ZADD', index_key, 0, P .. '\0' .. s)
  if by_id ~= '' then redis.call('ZADD', B .. ':a', 0, by_id) end
  -- writes sent before the checkpoint move under its number
  if redis.call('HEXISTS', B .. ':w', P .. '\0' .. 0) == 1 then
    local pending, values = writes_of(B, P)
    for i = 1, #pending do redis.call('HSET', B .. ':w', s .. '\0' .. (i - 1), values[i]) end
    call_chunked('HDEL', B .. ':w', pending)
  end
end
redis.call('HSET', B .. ':c', s, record)
redis.call('HSET', B .. ':m', s, metadata)
if has_run then
  redis.call('HSET', B .. ':r', s, run_id)
else
  redis.call('HDEL', B .. ':r', s)
end
return {1, finish_write(B, now, w)}
