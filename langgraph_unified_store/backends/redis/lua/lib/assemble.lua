--! include lib/chunked.lua
--! include lib/frames.lua
--! include lib/members.lua
--! include lib/blobs.lua
--! include lib/writes.lua

-- One checkpoint with its blobs, writes, their items and the items those name:
-- {member, record, metadata, run, blob fields, blob values, write values, item values}.
-- Item values come without their refs: the reader walks the same values in the same
-- order to know them (half the bulk strings; building one framed string in Lua costs the
-- server more than the client saves).  False when the member has no record now.
local function assemble(B, m)
  local s = seq_of(m)
  if not s then return false end
  local rec = redis.call('HGET', B .. ':c', s)
  if not rec then return false end
  local bfields = blob_fields(m, rec) or {}
  local bvals = hmget_all(B .. ':b', bfields)
  local _, wvals = writes_of(B, s)
  local refs, seen = {}, {}
  for i = 1, #bvals do collect_refs(bvals[i], refs, seen) end
  for i = 1, #wvals do collect_refs(wvals[i], refs, seen) end
  local ivals = hmget_all(B .. ':t', refs)
  local inner = {}
  for i = 1, #ivals do collect_refs(ivals[i], inner, seen) end
  local inner_vals = hmget_all(B .. ':t', inner)
  for i = 1, #inner_vals do ivals[#ivals + 1] = inner_vals[i] end
  return {m, rec, redis.call('HGET', B .. ':m', s), redis.call('HGET', B .. ':r', s),
          bfields, bvals, wvals, ivals}
end
