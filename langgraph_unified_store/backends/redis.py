"""Plain Redis storage (core commands and Lua only): Redis 6.2+, Valkey, Redis Cluster.

Every key of one thread carries the same hash tag, ``{t<base64url of the thread id>}``,
so a thread lives in one cluster slot and each operation on it is one Lua script: atomic,
one round trip, and its keys expire together. Per-thread sorted sets index checkpoints by
namespace and by id, so nothing ever SCANs the keyspace. Global keys list threads
(``<prefix>:threads``, scored by expiry time, or +inf without a TTL) and, without a TTL,
the threads of each run (``<prefix>:run:<hex run id>``). On a single server the put script
updates them itself; on a cluster they live in other slots and are written in the same
pipeline, a separate step. Readers treat them as hints: a listed thread that no longer
exists is skipped. With a TTL a run index could expire before threads that still hold the
run, so ``delete_for_runs`` walks the thread index instead.

Keys of one thread (``B`` = ``<prefix>:{t<tag>}``). A checkpoint is known by
``P`` = ``<hex ns>:<escaped id>`` (UTF-8 with NUL as 01 01 and 01 as 01 02: no NUL, and
it sorts as the id does) and by ``n``, its number in the thread, which names it in the
hashes: a short field keeps small values listpack-encoded and large ones cheap.

==========  =====  ==================================================================
``B:i``     zset   ``P NUL n`` of every checkpoint: one namespace's checkpoints are one
                   lexical range, and a checkpoint's number is one range lookup away
``B:a``     zset   ``<escaped id> NUL <hex ns>`` of checkpoints outside the root
                   namespace; merged with the root's range of B:i, all namespaces
                   come newest first
``B:c``     hash   n -> frame(head JSON: parent and channel versions, type, record bytes,
                   deflated with a fixed dictionary when that is smaller: see below)
``B:m``     hash   n -> metadata JSON (what list filters read, server-side)
``B:r``     hash   n -> run id; ``#`` -> the last number given (numbers are never reused)
``B:b``     hash   ``<hex ns>:<hex channel>:<version>`` -> frame(item refs, type, bytes)
``B:w``     hash   ``n NUL k`` -> frame(item refs, head JSON, bytes), k = 0, 1, ...;
                   writes to a checkpoint not stored yet wait as ``P NUL k``
``B:t``     hash   item ref -> frame(item refs, type, bytes)
==========  =====  ==================================================================

A checkpoint's blob fields follow from the channel versions in its head, so scripts
derive them (nothing lists them twice). Its writes are numbered from 0 without a gap, so
scripts find them by probing (no index); a write's head begins with its task id and
index, which is what a second write of the same key is matched on.
"""

from __future__ import annotations

import base64
import inspect
import re
import struct
import time
import zlib
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from hashlib import sha1
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

import orjson

from ..core.backend import Backend, LoopLocal
from ..core.codec import Codec
from ..core.limits import DEFAULT_READ_LIMITS, ReadLimits
from ..core.records import (
    ITEM_REF_SIZE,
    BlobRecord,
    CheckpointRecord,
    FilterScalar,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
)
from ..core.saver import UnifiedCheckpointSaver
from ..core.sync import ForeignLoop, UserClient
from ..errors import (
    BackendUnavailableError,
    BlobsMissingError,
    CorruptDataError,
    InvalidConfigError,
    ItemsMissingError,
    missing_extra,
)
from ..registry import (
    DEFAULT_PREFIX,
    DEFAULT_SOCKET_TIMEOUT,
    MAX_TTL_SECONDS,  # noqa: F401 - importable from here, as before
    check_backend_options,
)

try:
    import redis.asyncio as aioredis
    from redis import exceptions as redis_errors
    from redis.asyncio.cluster import ClusterNode, RedisCluster
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_extra("redis", "redis") from exc

RedisClient = aioredis.Redis | RedisCluster

# Retries after a dropped connection; every script is idempotent, so a retry is safe.
CONNECT_RETRIES: Final = 2
RETRY_BACKOFF_BASE: Final = 0.05
RETRY_BACKOFF_CAP: Final = 0.5
# Checkpoints assembled per script call when listing one thread.
LIST_PAGE: Final = 16
# Index entries one list call examines before handing back a cursor (bounds script time).
LIST_SCAN_BUDGET: Final = 2000
# Threads (or checkpoints) per pipeline when a call spans many threads.
PIPELINE_CHUNK: Final = 128
# Expired threads stay in the global index this long before readers purge them
# (scores use the client's clock; the keys expire on the server's).
INDEX_PURGE_GRACE_MS: Final = 60_000
# The longest ttl (seconds). Redis keeps a PEXPIREAT time as 64-bit milliseconds and the
# scripts compute it as now + ttl in Lua's doubles, exact to 2**53 ms; 10**10 s (about 317
# years) keeps that sum a plain whole number of ms, far inside both.
# How a script's own refusal of its arguments (raised before it writes) begins.
SCRIPT_REFUSAL: Final = "lus refused: "
# Lua numbers are doubles: beyond this a filter value may compare equal to a neighbour,
# so such filters are re-checked here and the script gets no limit.
LUA_EXACT_INT: Final = 2**53

_LENGTH = struct.Struct(">I")

# Checkpoint records (a checkpoint without its channel values: format version, timestamp,
# versions seen, updated channels) are small and alike, so they are stored deflated
# against a fixed dictionary of what LangGraph writes in them, followed by the CRC-32 of
# the record; the stored type is the serde type behind this prefix. Stored records depend
# on the dictionary: never change it (a new one needs a new prefix).
DEFLATED_RECORD_PREFIX: Final = "lus.zr1:"
_RECORD_ZDICT: Final = (
    b"__interrupt__ __pregel_tasks __pregel_push __pregel_pull __end__ __error__ "
    b"__resume__ __scheduled__ branch:to:\x84\xa1v\x04\xa2ts\xd9 2025-01-01T00:00:00.000000"
    b"+00:00\xadversions_seen\x82\xa9__input__\x80\xa9__start__\x81\xa9__start__\xa31.0"
    b"\xb0updated_channels\x93\xa8messages\xa9__start__\xaabranch:to:"
)
_RECORD_DEFLATE_MIN: Final = 64
# A stored record never inflates past this, nor past what the saver's ReadLimits allow
# its stored size (a garbled or planted one could try to).
_RECORD_INFLATE_MAX: Final = 1 << 24

# -- Lua ----------------------------------------------------------------------------------
# Scripts receive the thread's base key as ARGV[1] and declare one of its keys as KEYS[1]
# (for cluster routing); every key they touch shares that key's hash tag and slot.

LUA_HELPERS: Final = r"""
local SUFFIXES = {':i', ':a', ':c', ':m', ':r', ':b', ':w', ':t'}
local CHUNK = 500
-- Redis's default hash-max-listpack-entries: smaller hashes are usually one listpack.
local LISTPACK_ENTRIES = 512

-- Stored frames are trusted for nothing: a garbled length is clamped to the value,
-- so a corrupt value costs no more work than an intact one (Python reports it).
local function u32(s, p)
  local a, b, c, d = string.byte(s, p, p + 3)
  if not d then return 0 end
  return ((a * 256 + b) * 256 + c) * 256 + d
end

local function unframe(s)
  local parts, p, n = {}, 1, #s
  while p + 3 <= n do
    local len = math.min(u32(s, p), n - p - 3)
    parts[#parts + 1] = string.sub(s, p + 4, p + 3 + len)
    p = p + 4 + len
  end
  return parts
end

-- Framed part k (from 1) of a value, or nil.
local function part(s, k)
  local p, n = 1, #s
  for _ = 2, k do
    if p + 3 > n then return nil end
    p = p + 4 + math.min(u32(s, p), n - p - 3)
  end
  if p + 3 > n then return nil end
  return string.sub(s, p + 4, p + 3 + math.min(u32(s, p), n - p - 3))
end

-- The item refs a framed value names (its first part: 16-byte refs back to back).
local function collect_refs(v, refs, seen)
  if not v then return end
  local len = math.min(u32(v, 1), #v - 4)
  for p = 5, len - 11, 16 do
    local ref = string.sub(v, p, p + 15)
    if not seen[ref] then
      seen[ref] = true
      refs[#refs + 1] = ref
    end
  end
end

local function hmget_all(key, fields)
  local out = {}
  for i = 1, #fields, CHUNK do
    local got = redis.call('HMGET', key, unpack(fields, i, math.min(i + CHUNK - 1, #fields)))
    for j = 1, #got do out[#out + 1] = got[j] end
  end
  return out
end

local function call_chunked(cmd, key, list)
  for i = 1, #list, CHUNK do
    redis.call(cmd, key, unpack(list, i, math.min(i + CHUNK - 1, #list)))
  end
end

-- One absolute deadline for every key of the thread: PEXPIRE per key would read the
-- clock once per call, and keys a millisecond apart would not expire together.  A script
-- computes it (deadline) before it writes anything, and refuses a time PEXPIREAT would not
-- take (the saver validates ttl, so this is a second guard): the expiry set at the end
-- (refresh) is then a whole number of ms in range, which cannot fail after the writes.
local function deadline(ttl)
  if not ttl or ttl <= 0 then return false end
  local now = redis.call('TIME')
  local at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + ttl
  if at ~= at or at >= 2 ^ 53 or at ~= math.floor(at) then
    error('ERR lus refused: ttl of ' .. tostring(ttl) .. ' ms gives no valid expiry time')
  end
  return string.format('%.0f', at)
end

local function refresh(B, at)
  if at then
    for _, s in ipairs(SUFFIXES) do redis.call('PEXPIREAT', B .. s, at) end
  end
end

-- B:i members are P NUL S: P = '<hex ns>:<escaped id>' (NUL and \1 escaped, so P holds
-- no NUL and sorts as the id does), S = the checkpoint's number in the thread, the field
-- that names it in B:c, B:m, B:r and B:w.  B:a entries are '<escaped id> NUL <hex ns>'.
local function split_member(m)
  local z = string.find(m, '\0', 1, true)
  if not z then return m, nil end
  return string.sub(m, 1, z - 1), string.sub(m, z + 1)
end

local function seq_of(m)
  local z = string.find(m, '\0', 1, true)
  return z and string.sub(m, z + 1)
end

local function ns_of(m)
  local colon = string.find(m, ':', 1, true) or (#m + 1)
  return string.sub(m, 1, colon - 1)
end

-- The B:i member of P, or nil.
local function lookup(B, P)
  return redis.call('ZRANGEBYLEX', B .. ':i', '[' .. P .. '\0', '(' .. P .. '\1', 'LIMIT', 0, 1)[1]
end

-- The B:a entry of a member outside the root namespace ('' for the root one).
local function by_id_entry(m)
  local P = split_member(m)
  local colon = string.find(P, ':', 1, true)
  if colon == 1 then return '' end
  return string.sub(P, colon + 1) .. '\0' .. string.sub(P, 1, colon - 1)
end

-- The P a B:a entry stands for.
local function entry_key(a)
  local z = string.find(a, '\0', 1, true)
  return string.sub(a, z + 1) .. ':' .. string.sub(a, 1, z - 1)
end

-- Hex of a channel name, remembered for the rest of the call (a walk assembles many
-- checkpoints over the same channels).
local HEXED = {}
local function tohex(s)
  local hexed = HEXED[s]
  if hexed then return hexed end
  local out = {}
  for i = 1, #s, 64 do
    local j = math.min(i + 63, #s)
    out[#out + 1] = string.format(string.rep('%02x', j - i + 1), string.byte(s, i, j))
  end
  hexed = table.concat(out)
  HEXED[s] = hexed
  return hexed
end

-- The blob fields a checkpoint names, from the channel versions in its record's head;
-- nil when the head cannot be read (Python reports that).
local function blob_fields(m, rec)
  local ok, head = pcall(cjson.decode, part(rec, 1) or '')
  if not ok or type(head) ~= 'table' or type(head.v) ~= 'table' then return nil end
  local ns = ns_of(m)
  local out = {}
  for channel, version in pairs(head.v) do
    if type(channel) == 'string' and type(version) == 'string' then
      out[#out + 1] = ns .. ':' .. tohex(channel) .. ':' .. version
    end
  end
  return out
end

-- The writes of a checkpoint are the fields '<S> NUL <n>' of B:w, n = 0, 1, ... with no
-- gap (writes to a checkpoint not stored yet wait under '<P> NUL <n>').
local function writes_of(B, owner)
  local fields, vals, n, size = {}, {}, 0, 4
  while true do
    local batch = {}
    for i = 0, size - 1 do batch[i + 1] = owner .. '\0' .. (n + i) end
    local got = redis.call('HMGET', B .. ':w', unpack(batch))
    for i = 1, size do
      if not got[i] then return fields, vals end
      fields[#fields + 1] = batch[i]
      vals[#vals + 1] = got[i]
    end
    n = n + size
    size = math.min(2 * size, 256)
  end
end

-- Whose a write field is: all before its last NUL.
local function write_owner(w)
  local last, p = nil, 0
  while true do
    p = string.find(w, '\0', p + 1, true)
    if not p then break end
    last = p
  end
  if not last then return nil end
  return string.sub(w, 1, last - 1)
end

-- A new checkpoint number (B:r field '#' counts them; numbers are never reused).
local function next_seq(B)
  return string.format('%d', redis.call('HINCRBY', B .. ':r', '#', 1))
end

-- One checkpoint with its blobs, writes, their items and the items those name.  Item
-- values come without their refs: the reader walks the same values in the same order to
-- know them (half the bulk strings; building one framed string in Lua costs the server
-- more than the client saves).
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

-- JSON-typed equality on top-level metadata keys: true is not 1, "1" is not 1.  With
-- metadata (B:m as a table, when the walk read it whole) or one HGET per checkpoint.
local function matches(B, m, flt, metadata)
  local raw
  if metadata then
    raw = metadata[seq_of(m) or '']
  else
    raw = redis.call('HGET', B .. ':m', seq_of(m) or '')
  end
  if not raw then return false end
  local ok, md = pcall(cjson.decode, raw)
  if not ok or type(md) ~= 'table' then return false end
  for k, v in pairs(flt) do
    local actual = md[k]
    if actual == nil or type(actual) ~= type(v) or actual ~= v then return false end
  end
  return true
end
"""


def _with_helpers(body: str) -> str:
    """A script: the helpers its body uses (and theirs), then the body. Every helper a
    script defines costs each call a closure, so a script carries only what it needs."""
    blocks = LUA_HELPERS.strip().split("\n\n")
    names = [set(re.findall(r"^local (?:function )?(\w+)", block, re.M)) for block in blocks]
    chosen: set[int] = set()
    text = body
    grew = True
    while grew:
        grew = False
        for index, defined in enumerate(names):
            if index not in chosen and any(re.search(rf"\b{name}\b", text) for name in defined):
                chosen.add(index)
                text += blocks[index]
                grew = True
    return "\n\n".join(blocks[i] for i in sorted(chosen)) + "\n" + body

PUT_CHECKPOINT_LUA: Final = _with_helpers(r"""
-- KEYS[1] = B:i.  ARGV: B, P, B:a entry or '', record, metadata, has run, run, ttl ms,
-- blob count, then the global index step (threads key or '' when the caller indexes,
-- score, thread id, run key or ''), the number of inherited blob fields and those
-- fields, then (blob field, value) pairs, then (item ref, value) pairs.  The index step
-- names keys of other slots: on a single server it runs here, in the same round trip; on
-- a cluster the caller sends it.
-- Returns 1, or, without writing anything, {0, ref} when an item the new values name is
-- neither sent nor stored (the saver encoded against a list this thread no longer has),
-- or {2, field...} when blobs the checkpoint inherits without sending are gone (pruned,
-- deleted or expired since the saver read its parent).  The script is atomic: nothing
-- can delete them between this check and the writes below.
local B = ARGV[1]
local at = deadline(tonumber(ARGV[8]))
local nblobs = tonumber(ARGV[9])
local ninherited = tonumber(ARGV[14])
local first_blob = 15 + ninherited
local first_item = first_blob + 2 * nblobs
local gone = {2}
for p = 15, first_blob - 1 do
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
if ARGV[10] ~= '' then
  redis.call('ZADD', ARGV[10], 'GT', ARGV[11], ARGV[12])
  if ARGV[13] ~= '' then redis.call('SADD', ARGV[13], ARGV[12]) end
end
for p = first_blob, first_item - 1, 2 do redis.call('HSETNX', B .. ':b', ARGV[p], ARGV[p + 1]) end
for p = first_item, #ARGV, 2 do redis.call('HSETNX', B .. ':t', ARGV[p], ARGV[p + 1]) end
local P = ARGV[2]
local m = lookup(B, P)
local s
if m then
  s = seq_of(m)
else
  s = next_seq(B)
  redis.call('ZADD', KEYS[1], 0, P .. '\0' .. s)
  if ARGV[3] ~= '' then redis.call('ZADD', B .. ':a', 0, ARGV[3]) end
  -- writes sent before the checkpoint move under its number
  if redis.call('HEXISTS', B .. ':w', P .. '\0' .. 0) == 1 then
    local pending, values = writes_of(B, P)
    for i = 1, #pending do redis.call('HSET', B .. ':w', s .. '\0' .. (i - 1), values[i]) end
    call_chunked('HDEL', B .. ':w', pending)
  end
end
redis.call('HSET', B .. ':c', s, ARGV[4])
redis.call('HSET', B .. ':m', s, ARGV[5])
if ARGV[6] == '1' then
  redis.call('HSET', B .. ':r', s, ARGV[7])
else
  redis.call('HDEL', B .. ':r', s)
end
refresh(B, at)
return 1
""")

PUT_WRITES_LUA: Final = _with_helpers(r"""
-- KEYS[1] = B:w.  ARGV: B, replace, ttl ms, P, write count, then (key, value) pairs,
-- then (item ref, value) pairs.  A write's key is how its value's head begins (task id
-- and index): a write whose key is stored already is replaced, or kept when not replacing.
local B = ARGV[1]
local at = deadline(tonumber(ARGV[3]))
local replace = ARGV[2] == '1'
local m = lookup(B, ARGV[4])
local owner = ARGV[4]
if m then owner = seq_of(m) end
local nwrites = tonumber(ARGV[5])
local fields, vals = writes_of(B, owner)
local p = 6
for _ = 1, nwrites do
  local key, value = ARGV[p], ARGV[p + 1]
  local found = nil
  for j = 1, #vals do
    local head = part(vals[j], 2)
    if head and string.sub(head, 1, #key) == key then
      found = j
      break
    end
  end
  if not found then
    local field = owner .. '\0' .. #fields
    redis.call('HSET', KEYS[1], field, value)
    fields[#fields + 1] = field
    vals[#vals + 1] = value
  elseif replace then
    redis.call('HSET', KEYS[1], fields[found], value)
    vals[found] = value
  end
  p = p + 2
end
while p <= #ARGV do
  redis.call('HSETNX', B .. ':t', ARGV[p], ARGV[p + 1])
  p = p + 2
end
refresh(B, at)
return 1
""")

FETCH_LUA: Final = _with_helpers(r"""
-- KEYS[1] = B:i.  ARGV: B, 'id', 'member' or 'latest', then P, a B:i member (a listing
-- found it; gone if its number has no record now) or the hex namespace, then ttl ms.
local B = ARGV[1]
local m
if ARGV[2] == 'latest' then
  m = redis.call('ZREVRANGEBYLEX', KEYS[1], '(' .. ARGV[3] .. ';', '[' .. ARGV[3] .. ':',
                 'LIMIT', 0, 1)[1]
elseif ARGV[2] == 'member' then
  m = ARGV[3]
else
  m = lookup(B, ARGV[3])
end
if not m then return false end
local found = assemble(B, m)
if found then refresh(B, deadline(tonumber(ARGV[4]))) end
return found
""")

LIST_LUA: Final = _with_helpers(r"""
-- KEYS[1] = B:i (one namespace) or B:a (all).  ARGV: B, 'i' or 'a', max, min, want,
-- budget, filter JSON or '', '1' to assemble matches (else their member only), ttl ms.
-- For 'i' the bounds are on B:i members; for 'a' on B:a entries, and the root
-- namespace's checkpoints (in B:i only) are merged in: a root checkpoint's entry would
-- be '<escaped id> NUL'.  Returns {cursor, matches}; a non-empty cursor means "go on
-- below this entry".
local B = ARGV[1]
local by_id = ARGV[2] == 'a'
local want, budget = tonumber(ARGV[5]), tonumber(ARGV[6])
local flt = nil
if ARGV[7] ~= '' then flt = cjson.decode(ARGV[7]) end
local with_data = ARGV[8] == '1'
-- A small B:m is one listpack, which HGET scans: a filtered walk reads it whole instead
-- (unless it is tiny).
local metadata = nil
local entries = flt and redis.call('HLEN', B .. ':m') or 0
if entries > 32 and entries <= LISTPACK_ENTRIES then
  metadata = {}
  local flat = redis.call('HGETALL', B .. ':m')
  for i = 1, #flat, 2 do metadata[flat[i]] = flat[i + 1] end
end

-- A descending walk of one index between two bounds, 100 entries per call.
local function stream(key, maxb, minb)
  return {key = key, maxb = maxb, minb = minb, buf = {}, at = 1, done = false}
end
local function peek(st)
  if st.at > #st.buf then
    if st.done then return nil end
    st.buf = redis.call('ZREVRANGEBYLEX', st.key, st.maxb, st.minb, 'LIMIT', 0, 100)
    st.at = 1
    if #st.buf < 100 then st.done = true end
    if #st.buf == 0 then return nil end
    st.maxb = '(' .. st.buf[#st.buf]
  end
  return st.buf[st.at]
end

-- Byte order (Lua's < follows the server's collation locale).
local function below(x, y)
  for i = 1, math.min(#x, #y) do
    local p, q = string.byte(x, i), string.byte(y, i)
    if p ~= q then return p < q end
  end
  return #x < #y
end

-- A B:a bound as a bound on root members ':<escaped id> NUL <S>'.  Only a cursor left
-- at another namespace's entry ('<id> NUL <ns>') needs care: the root entry of that id
-- sorts below it, so the root's members of the id are still to come.
local function root_bound(b)
  if b == '+' then return '(;' end
  if b == '-' then return '[:' end
  local rest = string.sub(b, 2)
  local z = string.find(rest, '\0', 1, true)
  if z and z < #rest then return '(:' .. string.sub(rest, 1, z - 1) .. '\1' end
  return string.sub(b, 1, 1) .. ':' .. rest
end

local root, others
if by_id then
  root = stream(B .. ':i', root_bound(ARGV[3]), root_bound(ARGV[4]))
  others = stream(KEYS[1], ARGV[3], ARGV[4])
else
  root = stream(KEYS[1], ARGV[3], ARGV[4])
end

local out, cursor, scanned = {}, '', 0
while true do
  local r = peek(root)
  local a = others and peek(others)
  if not r and not a then break end
  local m, entry
  -- newest id first; for one id the root namespace ('') comes last
  if a and (not r or not below(string.sub(a, 1, string.find(a, '\0', 1, true) - 1),
                               string.sub(split_member(r), 2))) then
    others.at = others.at + 1
    m, entry = lookup(B, entry_key(a)), a
  else
    root.at = root.at + 1
    m, entry = r, r
  end
  scanned = scanned + 1
  if m and (flt == nil or matches(B, m, flt, metadata)) then
    if with_data then
      local found = assemble(B, m)
      if found then out[#out + 1] = found end
    else
      out[#out + 1] = m
    end
  end
  if (want > 0 and #out >= want) or (budget > 0 and scanned >= budget) then
    cursor = entry
    -- a root member's place among B:a entries
    if by_id and entry == r then cursor = string.sub(split_member(r), 2) .. '\0' end
    break
  end
end
if #out > 0 then refresh(B, deadline(tonumber(ARGV[9]))) end
return {cursor, out}
""")

HEADS_LUA: Final = _with_helpers(r"""
-- KEYS[1] = B:i.  ARGV: B.  The newest checkpoint of each namespace:
-- {member, record, metadata, run}.
local B = ARGV[1]
local out = {}
local maxb = '+'
while true do
  local m = redis.call('ZREVRANGEBYLEX', KEYS[1], maxb, '-', 'LIMIT', 0, 1)[1]
  if not m then break end
  local s = seq_of(m) or ''
  out[#out + 1] = {m, redis.call('HGET', B .. ':c', s), redis.call('HGET', B .. ':m', s),
                   redis.call('HGET', B .. ':r', s)}
  maxb = '(' .. ns_of(m) .. ':'
end
return out
""")

DELETE_THREAD_LUA: Final = _with_helpers(r"""
-- KEYS[1] = B:i.  ARGV: B.  Returns the thread's run ids so the caller can unindex them.
local B = ARGV[1]
local runs, seen = {}, {}
local pairs_ = redis.call('HGETALL', B .. ':r')
for i = 1, #pairs_, 2 do
  local run = pairs_[i + 1]
  if pairs_[i] ~= '#' and not seen[run] then
    seen[run] = true
    runs[#runs + 1] = run
  end
end
local keys = {}
for i, s in ipairs(SUFFIXES) do keys[i] = B .. s end
redis.call('UNLINK', unpack(keys))
return runs
""")

RETAIN_LUA: Final = _with_helpers(r"""
-- KEYS[1] = B:i.  ARGV: B, 'keep' then the P to keep (and any newer than those of their
-- namespace), or 'runs' then the run ids to delete.  Deletes the other checkpoints, their
-- writes, then blobs no survivor names, then items no surviving blob, write or segment
-- names (not when a survivor's record cannot be read: what it names is unknown then).
-- Returns {gone, deleted, runs no longer here}.
local B = ARGV[1]
local all = redis.call('ZRANGE', KEYS[1], 0, -1)
local run_pairs = {}
local stored_runs = redis.call('HGETALL', B .. ':r')
for i = 1, #stored_runs, 2 do
  if stored_runs[i] ~= '#' then
    run_pairs[#run_pairs + 1] = stored_runs[i]
    run_pairs[#run_pairs + 1] = stored_runs[i + 1]
  end
end
local dead, alive, keep_writes = {}, {}, {}
if ARGV[2] == 'keep' then
  -- Byte order (Lua's < follows the server's collation locale).
  local function after(x, y)
    for i = 1, math.min(#x, #y) do
      local p, q = string.byte(x, i), string.byte(y, i)
      if p ~= q then return p > q end
    end
    return #x > #y
  end
  local keep, newest = {}, {}
  for i = 3, #ARGV do
    keep[ARGV[i]] = true
    keep_writes[ARGV[i]] = true  -- writes waiting for a kept checkpoint
    local ns = ns_of(ARGV[i])
    if not newest[ns] or after(ARGV[i], newest[ns]) then newest[ns] = ARGV[i] end
  end
  for _, m in ipairs(all) do
    local P, s = split_member(m)
    -- A checkpoint newer than every kept one of its namespace was put after the caller
    -- chose what to keep (it may be the head now): it stays.
    local ns = ns_of(P)
    if keep[P] or not newest[ns] or after(P, newest[ns]) then
      alive[#alive + 1] = m
      keep_writes[s or ''] = true
    else
      dead[#dead + 1] = m
    end
  end
else
  local runs, doomed = {}, {}
  for i = 3, #ARGV do runs[ARGV[i]] = true end
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
  call_chunked('ZREM', KEYS[1], dead)
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
if redis.call('ZCARD', KEYS[1]) == 0 then
  local keys = {}
  for i, suffix in ipairs(SUFFIXES) do keys[i] = B .. suffix end
  redis.call('UNLINK', unpack(keys))
  gone = 1
end
local out = {gone, #dead}
for _, run in ipairs(gone_runs) do out[#out + 1] = run end
return out
""")

SNAPSHOT_LUA: Final = _with_helpers(r"""
-- KEYS[1] = B:i.  ARGV: B.  The whole thread, for copy_thread: B:i, then the hashes as
-- flat field/value lists, then B:a.
local B = ARGV[1]
local out = {redis.call('ZRANGE', KEYS[1], 0, -1)}
for _, suffix in ipairs({':c', ':m', ':r', ':b', ':w', ':t'}) do
  out[#out + 1] = redis.call('HGETALL', B .. suffix)
end
out[#out + 1] = redis.call('ZRANGE', B .. ':a', 0, -1)
return out
""")

RESTORE_LUA: Final = _with_helpers(r"""
-- KEYS[1] = B:i of the target.  ARGV: B, ttl ms, then eight sections, each a count and
-- that many values, in SNAPSHOT's order.  A checkpoint the target has keeps its number
-- there, a new one gets a new number; checkpoints overwrite, and so do writes (of the
-- same checkpoint, task and index); blobs and items are insert-if-absent, as everywhere.
local B = ARGV[1]
local at = deadline(tonumber(ARGV[2]))
local p = 3
local function section()
  local n = tonumber(ARGV[p])
  local first = p + 1
  p = first + n
  return first, n
end
local number = {}  -- source number -> target number
local first, n = section()
for i = first, first + n - 1 do
  local P, s = split_member(ARGV[i])
  if s then
    local m = lookup(B, P)
    if m then
      number[s] = seq_of(m)
    else
      number[s] = next_seq(B)
      redis.call('ZADD', KEYS[1], 0, P .. '\0' .. number[s])
    end
    redis.call('HDEL', B .. ':r', number[s])
  end
end
for _, suffix in ipairs({':c', ':m', ':r'}) do
  first, n = section()
  for i = first, first + n - 1, 2 do
    local target = number[ARGV[i]]
    if target then redis.call('HSET', B .. suffix, target, ARGV[i + 1]) end
  end
end
first, n = section()
for i = first, first + n - 1, 2 do redis.call('HSETNX', B .. ':b', ARGV[i], ARGV[i + 1]) end
-- A write's task id and index, from its head.
local function write_key(v)
  local ok, head = pcall(cjson.decode, part(v, 2) or '')
  if not ok or type(head) ~= 'table' or type(head[1]) ~= 'string' then return nil end
  return head[1] .. '\0' .. tostring(head[2])
end
first, n = section()
local targets = {}  -- target owner -> {count, key -> field}
for i = first, first + n - 1, 2 do
  local owner = write_owner(ARGV[i])
  if owner then
    -- a number names a checkpoint; anything else is a P whose writes wait for it
    local target = number[owner]
    if not target and string.find(owner, ':', 1, true) then target = owner end
    if target then
      local t = targets[target]
      if not t then
        local fields, vals = writes_of(B, target)
        t = {count = #fields, by_key = {}}
        for j = 1, #fields do
          local key = write_key(vals[j])
          if key then t.by_key[key] = fields[j] end
        end
        targets[target] = t
      end
      local key = write_key(ARGV[i + 1])
      local field = key and t.by_key[key]
      if not field then
        field = target .. '\0' .. t.count
        t.count = t.count + 1
        if key then t.by_key[key] = field end
      end
      redis.call('HSET', B .. ':w', field, ARGV[i + 1])
    end
  end
end
first, n = section()
for i = first, first + n - 1, 2 do redis.call('HSETNX', B .. ':t', ARGV[i], ARGV[i + 1]) end
first, n = section()
for i = first, first + n - 1 do redis.call('ZADD', B .. ':a', 0, ARGV[i]) end
refresh(B, at)
return 1
""")


@dataclass(frozen=True, slots=True)
class LuaScript:
    """A script run by EVALSHA, falling back to EVAL when the server has not cached it."""

    name: str
    source: str

    @property
    def sha(self) -> str:
        return sha1(self.source.encode(), usedforsecurity=False).hexdigest()


PUT_CHECKPOINT: Final = LuaScript("put_checkpoint", PUT_CHECKPOINT_LUA)
PUT_WRITES: Final = LuaScript("put_writes", PUT_WRITES_LUA)
FETCH: Final = LuaScript("fetch", FETCH_LUA)
LIST: Final = LuaScript("list", LIST_LUA)
HEADS: Final = LuaScript("heads", HEADS_LUA)
DELETE_THREAD: Final = LuaScript("delete_thread", DELETE_THREAD_LUA)
RETAIN: Final = LuaScript("retain", RETAIN_LUA)
SNAPSHOT: Final = LuaScript("snapshot", SNAPSHOT_LUA)
RESTORE: Final = LuaScript("restore", RESTORE_LUA)

# -- encoding -----------------------------------------------------------------------------


def _utf8(text: str) -> bytes:
    # surrogatepass: any Python str round-trips, even one holding a lone surrogate.
    return text.encode("utf-8", "surrogatepass")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def _hex(text: str) -> str:
    return _utf8(text).hex()


def _unhex(data: bytes) -> str:
    return _text(bytes.fromhex(data.decode("ascii")))


def frame(*parts: bytes) -> bytes:
    """Length-prefixed parts: binary-safe, and cheap for a Lua script to split."""
    return b"".join([_LENGTH.pack(len(part)) + part for part in parts])


def unframe(data: bytes) -> list[bytes]:
    parts: list[bytes] = []
    position, end = 0, len(data)
    while position < end:
        (size,) = _LENGTH.unpack_from(data, position)
        position += 4
        parts.append(data[position : position + size])
        position += size
    return parts


def _parts(data: bytes, count: int) -> list[bytes]:
    """Exactly ``count`` framed parts, or ValueError: a stored frame may be garbled."""
    parts: list[bytes] = []
    position, end = 0, len(data)
    while position < end:
        if position + 4 > end:
            raise ValueError("a frame ends inside a length prefix")
        (size,) = _LENGTH.unpack_from(data, position)
        position += 4
        if position + size > end:
            raise ValueError("a frame part runs past the end of the value")
        parts.append(data[position : position + size])
        position += size
    if len(parts) != count:
        raise ValueError(f"expected {count} framed parts, found {len(parts)}")
    return parts


# What garbled stored bytes raise while being decoded (JSON and UTF-8 errors are ValueErrors).
_UNREADABLE: Final = (ValueError, TypeError, KeyError, IndexError, struct.error)


def _split_refs(packed: bytes) -> tuple[bytes, ...]:
    if len(packed) % ITEM_REF_SIZE:
        raise ValueError("item references are not a whole number of references")
    return tuple(packed[i : i + ITEM_REF_SIZE] for i in range(0, len(packed), ITEM_REF_SIZE))


def blob_field(ns_hex: str, channel: str, version: str) -> bytes:
    return f"{ns_hex}:{_hex(channel)}:".encode() + _utf8(version)


def _escape(text: str) -> bytes:
    """UTF-8 without NUL (NUL is 01 01, 01 is 01 02): sorts as the text does."""
    return _utf8(text).replace(b"\x01", b"\x01\x02").replace(b"\x00", b"\x01\x01")


def _unescape(data: bytes) -> str:
    return _text(data.replace(b"\x01\x01", b"\x00").replace(b"\x01\x02", b"\x01"))


def member(checkpoint_ns: str, checkpoint_id: str) -> bytes:
    """A checkpoint's key P, ``<hex ns>:<escaped id>``; its B:i member is P NUL number."""
    return f"{_hex(checkpoint_ns)}:".encode() + _escape(checkpoint_id)


def _by_id_entry(checkpoint_ns: str, checkpoint_id: str) -> bytes:
    """A checkpoint's B:a entry (outside the root namespace): escaped id NUL hex ns."""
    return _escape(checkpoint_id) + b"\x00" + _hex(checkpoint_ns).encode()


def _split_member(m: bytes) -> tuple[str, str]:
    """(namespace, checkpoint id) of a B:i member or a P; ValueError when it is neither."""
    ns_hex, rest = m.split(b":", 1)
    return _unhex(ns_hex), _unescape(rest.split(b"\x00", 1)[0])


def deflate_record(
    type_: str, data: bytes, max_ratio: int = DEFAULT_READ_LIMITS.ratio
) -> tuple[bytes, bytes]:
    """The stored (type, bytes) of a checkpoint record: deflated when that is smaller,
    and not more than ``max_ratio`` times smaller (a read would refuse it as a bomb)."""
    reserved = type_.startswith(DEFLATED_RECORD_PREFIX)
    if len(data) > _RECORD_INFLATE_MAX or (len(data) < _RECORD_DEFLATE_MIN and not reserved):
        if reserved:
            raise InvalidConfigError(f"serde type {type_[:40]!r}... uses a reserved prefix")
        return type_.encode(), data
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15, 4, zlib.Z_DEFAULT_STRATEGY, _RECORD_ZDICT)
    packed = deflater.compress(data) + deflater.flush() + _LENGTH.pack(zlib.crc32(data))
    if not reserved and (
        len(packed) + len(DEFLATED_RECORD_PREFIX) >= len(data) or len(packed) * max_ratio < len(data)
    ):
        return type_.encode(), data
    return (DEFLATED_RECORD_PREFIX + type_).encode(), packed


def inflate_record(
    type_: bytes, data: bytes, limits: ReadLimits = DEFAULT_READ_LIMITS
) -> tuple[str, bytes]:
    """The serde (type, bytes) of a stored checkpoint record; ValueError when garbled or
    when it inflates past what ``limits`` allow its stored size."""
    text = type_.decode()
    if not text.startswith(DEFLATED_RECORD_PREFIX):
        return text, data
    if len(data) < 4:
        raise ValueError("a deflated record is shorter than its checksum")
    try:
        limit = min(limits.allowance(len(data)), _RECORD_INFLATE_MAX)
        inflater = zlib.decompressobj(-15, _RECORD_ZDICT)
        plain = inflater.decompress(data[:-4], limit + 1)
        if len(plain) > limit:
            raise ValueError(
                f"a deflated record of {len(data)} bytes inflates past {limit} bytes (the "
                f"saver's read_limits=ReadLimits(ratio={limits.ratio}, floor={limits.floor}))"
            )
        if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
            raise ValueError("a deflated record is cut short or has trailing bytes")
    except zlib.error as exc:
        raise ValueError(f"a deflated record cannot be inflated ({exc})") from None
    if _LENGTH.unpack(data[-4:])[0] != zlib.crc32(plain):
        raise ValueError("a deflated record fails its checksum")
    return text[len(DEFLATED_RECORD_PREFIX) :], plain


def _filter_is_exact_in_lua(flt: dict[str, FilterScalar]) -> bool:
    """Whether Lua's double comparison agrees with Python's for every value."""
    for value in flt.values():
        if isinstance(value, (bool, str)):
            continue
        if isinstance(value, float) and (value != value or abs(value) == float("inf")):
            return False
        if abs(value) >= LUA_EXACT_INT:
            return False
    return True


def _metadata_matches(metadata: bytes, flt: dict[str, FilterScalar], where: str) -> bool:
    loaded = Codec.load_metadata(metadata, where)
    for key, expected in flt.items():
        if key not in loaded:
            return False
        actual = loaded[key]
        if isinstance(actual, bool) != isinstance(expected, bool) or actual != expected:
            return False
    return True


def _safe_location(url: str) -> str:
    """``redis://host:port/db`` with any user name and password left out."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "redis (unparsable URL)"
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    credentials = "***@" if parts.username or parts.password else ""
    return f"{parts.scheme}://{credentials}{host}{port}{parts.path}"


def _url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


_UNAVAILABLE: Final = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterError,
    redis_errors.TryAgainError,
    redis_errors.SlotNotCoveredError,
    OSError,
    TimeoutError,
)


ScriptArg = str | bytes | int | float
Command = Callable[[Any], Any]


def _command(*args: Any) -> Command:
    """A plain command, applied later to a client (awaited) or a pipeline (queued).
    Always through execute_command: redis-py's cluster pipeline turns some command
    methods (exists, unlink, evalsha) into coroutines or refuses them."""
    return lambda target: target.execute_command(*args)


@dataclass(slots=True)
class _Call:
    """One command of a batch: a script, or a plain command applied to a client or pipeline."""

    script: LuaScript | None = None
    keys: Sequence[str | bytes] = ()
    args: Sequence[ScriptArg] = ()
    command: Command | None = None


# -- the backend --------------------------------------------------------------------------


class RedisBackend(Backend):
    """Checkpoint records in plain Redis; see the module docstring for the key layout."""

    name: ClassVar[str] = "redis"

    def __init__(
        self,
        conn: str | aioredis.Redis | RedisCluster,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: float | None = None,
        refresh_ttl_on_read: bool = False,
        cluster: bool = False,
        socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
    ) -> None:
        checked = check_backend_options(
            "redis",
            {
                "prefix": prefix,
                "ttl": ttl,
                "refresh_ttl_on_read": refresh_ttl_on_read,
                "cluster": cluster,
                "socket_timeout": socket_timeout,
            },
        )
        self.prefix = prefix
        self.ttl: float | None = checked["ttl"]
        self._ttl_ms = 0 if self.ttl is None else max(1, int(self.ttl * 1000))
        self.refresh_ttl_on_read = bool(refresh_ttl_on_read)
        self._read_ttl_ms = self._ttl_ms if refresh_ttl_on_read else 0
        self._socket_timeout = checked["socket_timeout"]
        self._url: str | None = None
        self._given: aioredis.Redis | RedisCluster | None = None
        self._password: str | None = None
        if isinstance(conn, str):
            self._url = conn
            self._password = _url_password(conn)
            self.cluster = bool(cluster)
            self._where = _safe_location(conn)
        elif isinstance(conn, RedisCluster):
            self._given = conn
            self.cluster = True
            kwargs = conn.get_connection_kwargs()
            self._password = kwargs.get("password")
            nodes = conn.get_nodes()
            self._where = (
                f"redis cluster at {nodes[0].host}:{nodes[0].port}" if nodes else "redis cluster"
            )
            self._check_decoding(kwargs)
        elif isinstance(conn, aioredis.Redis):
            if cluster:
                raise InvalidConfigError("cluster=True needs a URL or a redis.asyncio.RedisCluster")
            self._given = conn
            self.cluster = False
            kwargs = conn.connection_pool.connection_kwargs
            self._password = kwargs.get("password")
            self._where = f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
            self._check_decoding(kwargs)
        else:
            raise InvalidConfigError(
                "conn must be a redis:// URL, a redis.asyncio.Redis or a "
                f"redis.asyncio.RedisCluster, not {type(conn).__name__}"
            )
        self._threads_key = f"{prefix}:threads"
        self._clients: LoopLocal[aioredis.Redis | RedisCluster] = LoopLocal(
            self._make_client, self._close_client
        )
        # A client passed in is used on the user's loops; the blocking API's private I/O
        # loop gets a sibling with the same settings (core.sync: user-supplied clients).
        self._user_client: UserClient[aioredis.Redis | RedisCluster] | None = (
            None if self._given is None else UserClient(self._given, ForeignLoop.SIBLING)
        )

    @staticmethod
    def _check_decoding(kwargs: dict[str, Any]) -> None:
        if kwargs.get("decode_responses"):
            raise InvalidConfigError(
                "the Redis client decodes responses (decode_responses=True); "
                "checkpoints are bytes, so pass a client made with decode_responses=False"
            )

    def __repr__(self) -> str:
        return (
            f"RedisBackend({self._where!r}, prefix={self.prefix!r}, ttl={self.ttl!r}, "
            f"cluster={self.cluster!r})"
        )

    # -- clients ---------------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        return {
            "socket_timeout": self._socket_timeout,
            "socket_connect_timeout": self._socket_timeout,
            "retry": Retry(
                ExponentialWithJitterBackoff(base=RETRY_BACKOFF_BASE, cap=RETRY_BACKOFF_CAP),
                CONNECT_RETRIES,
            ),
            "decode_responses": False,
        }

    async def _make_client(self) -> aioredis.Redis | RedisCluster:
        if self._user_client is not None and self._user_client.at_home():
            return self._user_client.client
        given = self._given
        try:
            if isinstance(given, RedisCluster):
                # Same nodes and options; only what the constructor accepts carries over.
                accepted = inspect.signature(RedisCluster.__init__).parameters
                kwargs: dict[str, Any] = {
                    k: v
                    for k, v in given.get_connection_kwargs().items()
                    if k in accepted and k not in ("host", "port", "startup_nodes")
                }
                kwargs["retry"] = given.retry
                nodes = [ClusterNode(str(n.host), int(n.port)) for n in given.get_nodes()]
                return RedisCluster(startup_nodes=nodes, **kwargs)
            if isinstance(given, aioredis.Redis):
                pool = given.connection_pool
                return aioredis.Redis(
                    connection_pool=aioredis.ConnectionPool(
                        connection_class=pool.connection_class, **pool.connection_kwargs
                    )
                )
            assert self._url is not None
            if self.cluster:
                return RedisCluster.from_url(self._url, **self._client_options())
            return aioredis.Redis.from_url(self._url, **self._client_options())
        except (ValueError, TypeError, redis_errors.RedisClusterException) as exc:
            raise InvalidConfigError(
                f"cannot make a Redis client for {self._where}: {self._scrub(str(exc))}"
            ) from None

    async def _close_client(self, client: aioredis.Redis | RedisCluster) -> None:
        if client is not self._given:
            await client.aclose()

    def _scrub(self, text: str) -> str:
        if self._password:
            text = text.replace(self._password, "***")
        if self._url:
            text = text.replace(self._url, self._where)
        return text

    def _unavailable(self, operation: str, exc: BaseException) -> BackendUnavailableError:
        detail = self._scrub(f"{type(exc).__name__}: {exc}")
        return BackendUnavailableError(f"Redis at {self._where} is unavailable ({operation}): {detail}")

    async def _client(self, operation: str) -> aioredis.Redis | RedisCluster:
        try:
            return await self._clients.get()
        except _UNAVAILABLE as exc:
            raise self._unavailable(operation, exc) from None

    async def _execute(self, operation: str, calls: Sequence[_Call]) -> list[Any]:
        """Run calls in one round trip (a pipeline when several), mapping connection
        failures to BackendUnavailableError. Scripts the server lost are sent whole."""
        client = await self._client(operation)
        try:
            if len(calls) == 1:
                return [await self._run_one(client, calls[0])]
            pipe = client.pipeline(transaction=False)
            for call in calls:
                if call.script is not None:
                    # execute_command: redis-py's cluster pipeline refuses its evalsha()
                    # method, though a script whose keys share one slot is routed fine.
                    pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
                else:
                    assert call.command is not None
                    call.command(pipe)
            results: list[Any] = await pipe.execute(raise_on_error=False)
            for position, result in enumerate(results):
                if isinstance(result, redis_errors.NoScriptError):
                    results[position] = await self._run_one(client, calls[position])
                elif isinstance(result, BaseException):
                    raise result
            return results
        except _UNAVAILABLE as exc:
            raise self._unavailable(operation, exc) from None
        except redis_errors.RedisClusterException as exc:
            if "connect" in str(exc).lower():
                raise self._unavailable(operation, exc) from None
            raise
        except redis_errors.ResponseError as exc:
            if SCRIPT_REFUSAL in str(exc):
                # A script refused its arguments before writing anything (see deadline).
                raise InvalidConfigError(
                    f"{operation}: {str(exc).split(SCRIPT_REFUSAL, 1)[1].split(' script:')[0]}"
                ) from None
            raise

    @staticmethod
    async def _run_one(client: aioredis.Redis | RedisCluster, call: _Call) -> Any:
        if call.script is None:
            assert call.command is not None
            return await call.command(client)
        try:
            return await client.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        except redis_errors.NoScriptError:
            return await client.eval(call.script.source, len(call.keys), *call.keys, *call.args)

    async def _script(
        self, operation: str, script: LuaScript, key: str, args: Sequence[ScriptArg]
    ) -> Any:
        return (await self._execute(operation, [_Call(script, (key,), args)]))[0]

    # -- keys ------------------------------------------------------------------------------

    def _base(self, thread_id: str) -> str:
        tag = base64.urlsafe_b64encode(_utf8(thread_id)).rstrip(b"=").decode("ascii")
        return f"{self.prefix}:{{t{tag}}}"

    def _run_key(self, run_id: str) -> str:
        return f"{self.prefix}:run:{_hex(run_id)}"

    def _index_score(self) -> float:
        if not self._ttl_ms:
            return float("inf")
        return time.time() * 1000 + self._ttl_ms

    def _index_thread(self, thread_id: str, run_ids: Iterable[str] = ()) -> list[_Call]:
        member = _utf8(thread_id)
        score = self._index_score()
        calls = [_Call(command=_command("ZADD", self._threads_key, "GT", score, member))]
        if not self._ttl_ms:
            # With a TTL, runs are found by walking the thread index instead: a run set
            # cannot expire together with every thread it names.
            for run_id in dict.fromkeys(run_ids):
                calls.append(_Call(command=_command("SADD", self._run_key(run_id), member)))
        return calls

    def _refresh_index_on_read(self, thread_id: str) -> list[_Call]:
        if not self._read_ttl_ms:
            return []
        member = _utf8(thread_id)
        score = self._index_score()
        return [
            _Call(command=_command("ZADD", self._threads_key, "XX", "GT", score, member))
        ]

    def _unindex(self, thread_id: str, run_ids: Iterable[str], *, thread_gone: bool) -> list[_Call]:
        member = _utf8(thread_id)
        calls: list[_Call] = []
        if thread_gone:
            calls.append(_Call(command=_command("ZREM", self._threads_key, member)))
        for run_id in dict.fromkeys(run_ids):
            calls.append(_Call(command=_command("SREM", self._run_key(run_id), member)))
        return calls

    # -- lifecycle -------------------------------------------------------------------------

    async def setup(self) -> None:
        """Nothing to create in Redis; checks the server answers."""
        await self._execute("setup", [_Call(command=_command("PING"))])

    async def aclose(self) -> None:
        await self._clients.aclose()

    async def drop_all(self) -> None:
        """Delete every key under this prefix (SCANs: for tests and tear-down only)."""
        client = await self._client("drop_all")
        pattern = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in self.prefix) + ":*"
        try:
            batch: list[bytes] = []
            async for key in client.scan_iter(match=pattern, count=500):
                batch.append(key)
                if len(batch) >= PIPELINE_CHUNK:
                    await self._unlink(client, batch)
                    batch = []
            if batch:
                await self._unlink(client, batch)
        except _UNAVAILABLE as exc:
            raise self._unavailable("drop_all", exc) from None

    @staticmethod
    async def _unlink(client: aioredis.Redis | RedisCluster, keys: list[bytes]) -> None:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("UNLINK", key)  # one key per command: any slot
        await pipe.execute()

    # -- writing ---------------------------------------------------------------------------

    @staticmethod
    def _item_args(items: Sequence[ItemRecord]) -> list[bytes]:
        args: list[bytes] = []
        for item in items:
            args.append(item.ref)
            args.append(frame(b"".join(item.item_refs), item.type.encode(), item.data))
        return args

    async def put_checkpoint(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        items: Sequence[ItemRecord],
        inherited: Collection[str] = (),
    ) -> None:
        base = self._base(record.thread_id)
        ns_hex = _hex(record.checkpoint_ns)
        head = orjson.dumps({"p": record.parent_checkpoint_id, "v": record.channel_versions})
        args: list[ScriptArg] = [
            base,
            member(record.checkpoint_ns, record.checkpoint_id),
            _by_id_entry(record.checkpoint_ns, record.checkpoint_id) if ns_hex else b"",
            frame(head, *deflate_record(record.type, record.data, self.read_limits.ratio)),
            record.metadata,
            "0" if record.run_id is None else "1",
            _utf8(record.run_id or ""),
            self._ttl_ms,
            len(blobs),
        ]
        runs = () if record.run_id is None else (record.run_id,)
        index_calls: list[_Call] = []
        if self.cluster:
            args += ["", "", "", ""]
            index_calls = self._index_thread(record.thread_id, runs)
        else:
            run_key = (
                self._run_key(record.run_id)
                if record.run_id is not None and not self._ttl_ms
                else ""
            )
            args += [self._threads_key, self._index_score(), _utf8(record.thread_id), run_key]
        inherited_fields = {
            blob_field(ns_hex, c, record.channel_versions[c]): c for c in inherited
        }
        args.append(len(inherited_fields))
        args.extend(inherited_fields)
        for blob in blobs:
            args.append(blob_field(ns_hex, blob.channel, blob.version))
            args.append(frame(b"".join(blob.item_refs), blob.type.encode(), blob.data))
        args.extend(self._item_args(items))
        # The index goes first: a reader may see a thread it then finds empty, never the reverse.
        *_, stored = await self._execute(
            "put", [*index_calls, _Call(PUT_CHECKPOINT, (f"{base}:i",), args)]
        )
        if stored != 1 and stored[0] == 2:
            raise BlobsMissingError(
                record.thread_id,
                record.checkpoint_ns,
                record.checkpoint_id,
                [inherited_fields.get(bytes(f), repr(bytes(f))) for f in stored[1:]],
            )
        if stored != 1:
            raise ItemsMissingError(
                record.thread_id,
                f"the new checkpoint names list item {bytes(stored[1]).hex()}, which is not "
                "stored (the thread expired or was deleted meanwhile)",
            )

    async def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[WriteRecord],
        items: Sequence[ItemRecord],
        *,
        replace: bool,
    ) -> None:
        base = self._base(thread_id)
        args: list[ScriptArg] = [
            base,
            "1" if replace else "0",
            self._ttl_ms,
            member(checkpoint_ns, checkpoint_id),
            len(writes),
        ]
        for write in writes:
            # The head begins with the write's key (task id, index): what the script matches.
            key = orjson.dumps([write.task_id, write.idx])[:-1] + b","
            head = orjson.dumps([write.task_id, write.idx, write.channel, write.task_path, write.type])
            args.append(key)
            args.append(frame(b"".join(write.item_refs), head, write.data))
        args.extend(self._item_args(items))
        await self._script("put_writes", PUT_WRITES, f"{base}:w", args)

    # -- reading ---------------------------------------------------------------------------

    @staticmethod
    def _describe(thread_id: str, m: bytes) -> str:
        try:
            checkpoint_ns, checkpoint_id = _split_member(m)
            return f"thread {thread_id!r}, namespace {checkpoint_ns!r}, checkpoint {checkpoint_id!r}"
        except ValueError:
            return f"thread {thread_id!r}, checkpoint entry {m!r}"

    def _record(
        self, thread_id: str, fcp: bytes, rec: bytes, meta: bytes | None, run: bytes | None
    ) -> CheckpointRecord:
        try:
            checkpoint_ns, checkpoint_id = _split_member(fcp)
            head, stored_type, stored_data = _parts(rec, 3)
            type_, data = inflate_record(stored_type, stored_data, self.read_limits)
            loaded = orjson.loads(head)
            versions = loaded["v"]
            parent = loaded["p"]
            if not isinstance(versions, dict) or not all(
                isinstance(v, str) for v in versions.values()
            ):
                raise ValueError("channel_versions is not an object of strings")
            if parent is not None and not isinstance(parent, str):
                raise ValueError("the parent id is not a string")
            return CheckpointRecord(
                thread_id=thread_id,
                checkpoint_ns=checkpoint_ns,
                checkpoint_id=checkpoint_id,
                parent_checkpoint_id=parent,
                type=type_,
                data=data,
                channel_versions=versions,
                metadata=meta if meta is not None else b"{}",
                run_id=None if run is None else _text(run),
                stored_size=len(stored_data) if data is not stored_data else None,
            )
        except _UNREADABLE as exc:
            raise CorruptDataError(
                f"{self._describe(thread_id, fcp)}: stored checkpoint record cannot be read ({exc})"
            ) from exc

    def _stored(self, thread_id: str, found: list[Any]) -> StoredCheckpoint:
        fcp, rec, meta, run, bfields, bvals, wvals, ivals = found
        record = self._record(thread_id, fcp, rec, meta, run)
        stored = StoredCheckpoint(record)
        # Item refs in the order the script collected them (first seen first): blobs in
        # field order, then writes, then what those items name.
        refs: list[bytes] = []
        seen: set[bytes] = set()

        def collect(packed_refs: bytes) -> tuple[bytes, ...]:
            split = _split_refs(packed_refs)
            for ref in split:
                if ref not in seen:
                    seen.add(ref)
                    refs.append(ref)
            return split

        what = "blob"
        try:
            blobs: dict[bytes, tuple[tuple[bytes, ...], bytes, bytes]] = {}
            for field, value in zip(bfields, bvals, strict=True):
                if value is not None:
                    packed_refs, type_, data = _parts(value, 3)
                    blobs[field] = (collect(packed_refs), type_, data)
            ns_hex = fcp.split(b":", 1)[0].decode()
            for channel, version in record.channel_versions.items():
                found_blob = blobs.get(blob_field(ns_hex, channel, version))
                if found_blob is not None:
                    blob_refs, type_, data = found_blob
                    stored.blobs[channel] = BlobRecord(
                        channel, version, type_.decode(), data, blob_refs
                    )
            what = "pending write"
            for value in wvals:
                if value is None:
                    continue
                packed_refs, head, data = _parts(value, 3)
                task_id, idx, channel, task_path, type_ = orjson.loads(head)
                if not all(isinstance(x, str) for x in (task_id, channel, task_path, type_)):
                    raise ValueError("the write's head is not four strings and an index")
                stored.writes.append(
                    WriteRecord(
                        task_id, int(idx), channel, type_, data, task_path, collect(packed_refs)
                    )
                )
            # Items of blobs and writes (segments, elements), then the elements segments name.
            level_one = len(refs)
            if len(ivals) < level_one:
                raise ValueError("fewer items came back than were named")
            for position in range(len(ivals)):
                if position == level_one and len(ivals) != len(refs):
                    raise ValueError("the items that came back are not the ones named")
                ref, value = refs[position], ivals[position]
                what = f"item {ref.hex()}"
                if value is not None:
                    packed_refs, type_, data = _parts(value, 3)
                    item_refs = (
                        collect(packed_refs) if position < level_one else _split_refs(packed_refs)
                    )
                    stored.items[ref] = ItemRecord(ref, type_.decode(), data, item_refs)
        except _UNREADABLE as exc:
            raise CorruptDataError(
                f"{self._describe(thread_id, fcp)}: stored {what} cannot be read ({exc})"
            ) from exc
        return stored

    async def get_checkpoint(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> StoredCheckpoint | None:
        base = self._base(thread_id)
        ns_hex = _hex(checkpoint_ns)
        args: list[ScriptArg]
        if checkpoint_id is None:
            args = [base, "latest", ns_hex, self._read_ttl_ms]
        else:
            args = [base, "id", member(checkpoint_ns, checkpoint_id), self._read_ttl_ms]
        calls = [_Call(FETCH, (f"{base}:i",), args), *self._refresh_index_on_read(thread_id)]
        found = (await self._execute("get_tuple", calls))[0]
        return None if found is None else self._stored(thread_id, found)

    def _bounds(self, query: ListQuery) -> tuple[str, bytes | str, bytes | str]:
        """Which index to walk (i: one namespace, a: all) and its lexical max and min."""
        if query.checkpoint_ns is not None:
            ns_hex = _hex(query.checkpoint_ns)
            if query.checkpoint_id is not None:
                key = member(query.checkpoint_ns, query.checkpoint_id)
                return "i", b"(" + key + b"\x01", b"[" + key + b"\x00"
            if query.before is not None:
                return "i", b"(" + member(query.checkpoint_ns, query.before), f"[{ns_hex}:"
            return "i", f"({ns_hex};", f"[{ns_hex}:"
        if query.checkpoint_id is not None:
            escaped = _escape(query.checkpoint_id)
            return "a", b"(" + escaped + b"\x01", b"[" + escaped + b"\x00"
        return "a", b"(" + _escape(query.before) if query.before is not None else "+", "-"

    async def list_checkpoints(self, query: ListQuery) -> AsyncIterator[StoredCheckpoint]:
        if (
            query.checkpoint_id is not None
            and query.before is not None
            and not query.checkpoint_id < query.before
        ):
            return
        if query.limit == 0:
            return
        exact = _filter_is_exact_in_lua(query.filter)
        filter_json = orjson.dumps(query.filter) if query.filter else b""
        if query.thread_id is not None:
            stream = self._list_thread(query.thread_id, query, filter_json, exact)
        else:
            stream = self._list_all(query, filter_json, exact)
        remaining = query.limit
        async for stored in stream:
            if query.filter and not _metadata_matches(
                stored.record.metadata, query.filter, f"thread {stored.record.thread_id!r}, "
                f"checkpoint {stored.record.checkpoint_id!r}"
            ):
                continue
            yield stored
            if remaining is not None:
                remaining -= 1
                if remaining <= 0:
                    return

    async def _list_thread(
        self, thread_id: str, query: ListQuery, filter_json: bytes, exact: bool
    ) -> AsyncIterator[StoredCheckpoint]:
        base = self._base(thread_id)
        kind, first_top, bottom = self._bounds(query)
        top: bytes | str = first_top
        wanted = query.limit if exact else None
        while True:
            page = LIST_PAGE if wanted is None else min(LIST_PAGE, wanted)
            args: list[ScriptArg] = [base, kind, top, bottom, page, LIST_SCAN_BUDGET, filter_json, "1", self._read_ttl_ms]
            calls = [_Call(LIST, (f"{base}:{kind}",), args), *self._refresh_index_on_read(thread_id)]
            cursor, found = (await self._execute("list", calls))[0]
            for item in found:
                yield self._stored(thread_id, item)
            if wanted is not None:
                wanted -= len(found)
                if wanted <= 0:
                    return
            if not cursor:
                return
            top = b"(" + cursor

    async def _indexed_threads(self, operation: str) -> list[str]:
        """Every thread id in the global index (a hint: some may have expired or gone)."""
        purge_below = time.time() * 1000 - INDEX_PURGE_GRACE_MS
        _, members = await self._execute(
            operation,
            [
                _Call(command=_command("ZREMRANGEBYSCORE", self._threads_key, "-inf", f"({purge_below}")),
                _Call(command=_command("ZRANGE", self._threads_key, 0, -1)),
            ],
        )
        return [_text(member) for member in members]

    async def _list_all(
        self, query: ListQuery, filter_json: bytes, exact: bool
    ) -> AsyncIterator[StoredCheckpoint]:
        kind, top, bottom = self._bounds(query)
        want = query.limit if exact and query.limit is not None else 0
        found: list[tuple[str, str, str, bytes]] = []
        threads = await self._indexed_threads("list")
        for start in range(0, len(threads), PIPELINE_CHUNK):
            chunk = threads[start : start + PIPELINE_CHUNK]
            calls = []
            for thread_id in chunk:
                base = self._base(thread_id)
                args: list[ScriptArg] = [base, kind, top, bottom, want, 0, filter_json, "0", 0]
                calls.append(_Call(LIST, (f"{base}:{kind}",), args))
            for thread_id, (_, fcps) in zip(chunk, await self._execute("list", calls), strict=True):
                for m in fcps:
                    checkpoint_ns, checkpoint_id = _split_member(m)
                    found.append((checkpoint_id, thread_id, checkpoint_ns, m))
        found.sort(reverse=True)
        if want:
            found = found[:want]
        for start in range(0, len(found), LIST_PAGE):
            chunk_found = found[start : start + LIST_PAGE]
            calls = []
            for _, thread_id, _, fcp in chunk_found:
                base = self._base(thread_id)
                calls.append(_Call(FETCH, (f"{base}:i",), [base, "member", fcp, self._read_ttl_ms]))
            refreshes = [
                call
                for thread_id in dict.fromkeys(t for _, t, _, _ in chunk_found)
                for call in self._refresh_index_on_read(thread_id)
            ]
            results = await self._execute("list", [*calls, *refreshes])
            for (_, thread_id, _, _), item in zip(
                chunk_found, results[: len(calls)], strict=True
            ):
                if item is not None:
                    yield self._stored(thread_id, item)

    async def checkpoint_heads(self, thread_id: str) -> list[CheckpointRecord]:
        base = self._base(thread_id)
        heads = await self._script("prune", HEADS, f"{base}:i", [base])
        return [
            self._record(thread_id, fcp, rec, meta, run)
            for fcp, rec, meta, run in heads
            if rec is not None
        ]

    async def list_thread_ids(self) -> list[str]:
        threads = await self._indexed_threads("list_workflows")
        alive: list[str] = []
        for start in range(0, len(threads), PIPELINE_CHUNK):
            chunk = threads[start : start + PIPELINE_CHUNK]
            calls = [_Call(command=_command("EXISTS", f"{self._base(t)}:i")) for t in chunk]
            exists = await self._execute("list_workflows", calls)
            alive.extend(t for t, present in zip(chunk, exists, strict=True) if present)
        return sorted(alive)

    # -- deleting and copying --------------------------------------------------------------

    async def delete_thread(self, thread_id: str) -> None:
        base = self._base(thread_id)
        runs = await self._script("delete_thread", DELETE_THREAD, f"{base}:i", [base])
        await self._execute(
            "delete_thread", self._unindex(thread_id, [_text(r) for r in runs], thread_gone=True)
        )

    async def _retain(self, operation: str, thread_ids: Sequence[str], mode: str, values: Sequence[str | bytes]) -> None:
        for start in range(0, len(thread_ids), PIPELINE_CHUNK):
            chunk = thread_ids[start : start + PIPELINE_CHUNK]
            calls = []
            for thread_id in chunk:
                base = self._base(thread_id)
                calls.append(_Call(RETAIN, (f"{base}:i",), [base, mode, *values]))
            cleanup: list[_Call] = []
            for thread_id, (gone, _deleted, *runs) in zip(
                chunk, await self._execute(operation, calls), strict=True
            ):
                cleanup.extend(
                    self._unindex(thread_id, [_text(r) for r in runs], thread_gone=bool(gone))
                )
            if cleanup:
                await self._execute(operation, cleanup)

    async def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        runs = list(dict.fromkeys(run_ids))
        if self._ttl_ms:
            candidates = await self._indexed_threads("delete_for_runs")
        else:
            calls = [_Call(command=_command("SMEMBERS", self._run_key(r))) for r in runs]
            members = await self._execute("delete_for_runs", calls)
            candidates = sorted({_text(m) for found in members for m in found})
        await self._retain("delete_for_runs", candidates, "runs", [_utf8(r) for r in runs])

    async def retain(self, thread_id: str, keep: Collection[tuple[str, str]]) -> None:
        members = [member(ns, checkpoint_id) for ns, checkpoint_id in keep]
        await self._retain("prune", [thread_id], "keep", members)

    async def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        source = self._base(source_thread_id)
        snapshot = await self._script("copy_thread", SNAPSHOT, f"{source}:i", [source])
        if not any(snapshot):
            return
        target = self._base(target_thread_id)
        args: list[ScriptArg] = [target, self._ttl_ms]
        for section in snapshot:
            args.append(len(section))
            args.extend(section)
        calls = [_Call(RESTORE, (f"{target}:i",), args)]
        if snapshot[0]:
            # Run ids are the values of the copied B:r hash (snapshot section 3), but
            # for its counter of checkpoint numbers.
            stored_runs = snapshot[3]
            runs = [
                _text(run)
                for field, run in zip(stored_runs[::2], stored_runs[1::2], strict=True)
                if field != b"#"
            ]
            calls = [*self._index_thread(target_thread_id, runs), *calls]
        await self._execute("copy_thread", calls)


class RedisSaver(UnifiedCheckpointSaver):
    """A LangGraph checkpointer on plain Redis (no modules): Redis 6.2+, Valkey, clusters.

    ``RedisSaver("redis://localhost:6379/0")`` works with sync and async graphs alike.
    ``ttl`` (seconds) makes a thread expire that long after its last write (or read, with
    ``refresh_ttl_on_read``); all its keys expire together. ``cluster=True`` (or passing a
    ``redis.asyncio.RedisCluster``) talks to Redis Cluster. A call that cannot reach the
    server raises ``BackendUnavailableError`` after about ``socket_timeout`` per attempt.
    """

    backend: RedisBackend

    def __init__(
        self,
        conn: str | aioredis.Redis | RedisCluster,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: float | None = None,
        refresh_ttl_on_read: bool = False,
        cluster: bool = False,
        socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
        **options: Any,
    ) -> None:
        backend = RedisBackend(
            conn,
            prefix=prefix,
            ttl=ttl,
            refresh_ttl_on_read=refresh_ttl_on_read,
            cluster=cluster,
            socket_timeout=socket_timeout,
        )
        super().__init__(backend, **options)

    @classmethod
    def from_conn_string(cls, url: str, **options: Any) -> RedisSaver:
        """A saver on ``url`` (``redis://``, ``rediss://`` or ``unix://``); enter it with
        ``with`` or ``async with`` to close its connections afterwards."""
        return cls(url, **options)
