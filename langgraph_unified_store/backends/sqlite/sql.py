"""Every statement the SQLite backend runs, written out in full.

Tables (see ``migrations.py``): ``checkpoints``, ``blobs``, ``writes``, ``items``, each
keyed by thread first, and ``threads`` (one row per thread: its write times and expiry). Item references are stored packed (``core.rules.pack_refs``);
``x''`` is none. A statement with ``{marks}`` takes as many ``?`` as the caller binds
(``marks(n)``), never a value.
"""

from __future__ import annotations

from typing import Final

UPSERT_CHECKPOINT: Final = """
INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id,
    parent_checkpoint_id, type, data, channel_versions, metadata, run_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""
INSERT_BLOB: Final = """
INSERT OR IGNORE INTO blobs (thread_id, checkpoint_ns, channel, version, type, data, item_refs)
VALUES (?, ?, ?, ?, ?, ?, ?)"""
INSERT_ITEM: Final = """
INSERT OR IGNORE INTO items (thread_id, ref, type, data, item_refs) VALUES (?, ?, ?, ?, ?)"""
# Writes already stored are kept (regular writes) or replaced (special ones): see
# core.rules.dedupe_writes.
INSERT_WRITE_KEEP: Final = """
INSERT OR IGNORE INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx,
    channel, type, data, task_path, item_refs)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
INSERT_WRITE_REPLACE: Final = """
INSERT OR REPLACE INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx,
    channel, type, data, task_path, item_refs)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""

# The columns of a checkpoint row, in the order ``operations._record`` reads them.
SELECT_CHECKPOINT: Final = """
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, data,
    channel_versions, metadata, run_id
FROM checkpoints
WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"""
SELECT_LATEST_CHECKPOINT: Final = """
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, data,
    channel_versions, metadata, run_id
FROM checkpoints
WHERE thread_id = ? AND checkpoint_ns = ? ORDER BY checkpoint_id DESC LIMIT 1"""
SELECT_HEADS: Final = """
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, data,
    channel_versions, metadata, run_id
FROM checkpoints AS c
WHERE thread_id = ? AND checkpoint_id = (
    SELECT max(checkpoint_id) FROM checkpoints
    WHERE thread_id = c.thread_id AND checkpoint_ns = c.checkpoint_ns)"""
# A page of a listing: ``{where}`` is the conjunction of ``LIST_*`` conditions the query
# needs ("1" for none), each fully bound; newest first, then by thread and namespace.
SELECT_LIST_PAGE: Final = """
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, data,
    channel_versions, metadata, run_id
FROM checkpoints
WHERE {where}
ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC
LIMIT ?"""
LIST_THREAD: Final = "thread_id = ?"
LIST_NAMESPACE: Final = "checkpoint_ns = ?"
LIST_CHECKPOINT: Final = "checkpoint_id = ?"
LIST_BEFORE: Final = "checkpoint_id < ?"
LIST_AFTER_CURSOR: Final = "(checkpoint_id, thread_id, checkpoint_ns) < (?, ?, ?)"
# Takes now; a listing of every thread (one thread's is checked with SELECT_THREAD_STATE).
LIST_UNEXPIRED: Final = "thread_id NOT IN (SELECT thread_id FROM threads WHERE expires_at <= ?)"
# JSON-typed equality of one top-level metadata key (core.rules.metadata_matches):
# key, then JSON type(s), then the value.
LIST_METADATA_BOOL: Final = (
    "EXISTS (SELECT 1 FROM json_each(metadata) WHERE key = ? AND type = ?)"
)
LIST_METADATA_NUMBER: Final = (
    "EXISTS (SELECT 1 FROM json_each(metadata) WHERE key = ? AND type IN ('integer', 'real')"
    " AND value = ?)"
)
LIST_METADATA_TEXT: Final = (
    "EXISTS (SELECT 1 FROM json_each(metadata) WHERE key = ? AND type = 'text' AND value = ?)"
)

SELECT_BLOBS: Final = """
SELECT channel, version, type, data, item_refs FROM blobs
WHERE thread_id = ? AND checkpoint_ns = ?
  AND (channel, version) IN (SELECT key, value FROM json_each(?))"""
SELECT_BLOB_EXISTS: Final = """
SELECT 1 FROM blobs WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"""
SELECT_WRITES: Final = """
SELECT task_id, idx, channel, type, data, task_path, item_refs FROM writes
WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"""
SELECT_ITEMS: Final = """
SELECT ref, type, data, item_refs FROM items WHERE thread_id = ? AND ref IN ({marks})"""
# Takes now: threads that have expired are gone to reads before a sweep removes them.
SELECT_THREAD_IDS: Final = """
SELECT DISTINCT thread_id FROM checkpoints
WHERE thread_id NOT IN (SELECT thread_id FROM threads WHERE expires_at <= ?)
ORDER BY thread_id"""

# -- collecting garbage ----------------------------------------------------------------------

SELECT_THREADS_OF_RUNS: Final = """
SELECT DISTINCT thread_id FROM checkpoints WHERE run_id IN ({marks})"""
SELECT_CHECKPOINT_KEYS: Final = """
SELECT checkpoint_ns, checkpoint_id FROM checkpoints WHERE thread_id = ?"""
SELECT_LIVE_VERSIONS: Final = """
SELECT checkpoint_ns, channel_versions FROM checkpoints WHERE thread_id = ?"""
SELECT_BLOB_REFS: Final = """
SELECT checkpoint_ns, channel, version, item_refs FROM blobs WHERE thread_id = ?"""
SELECT_WRITE_REFS: Final = """
SELECT item_refs FROM writes WHERE thread_id = ? AND item_refs != x''"""
SELECT_ITEM_REFS: Final = "SELECT ref, item_refs FROM items WHERE thread_id = ?"
DELETE_CHECKPOINT: Final = """
DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"""
DELETE_CHECKPOINT_WRITES: Final = """
DELETE FROM writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"""
DELETE_RUN_CHECKPOINTS: Final = "DELETE FROM checkpoints WHERE run_id IN ({marks})"
# Writes whose checkpoint is gone, or was never stored.
DELETE_ORPHAN_WRITES: Final = """
DELETE FROM writes WHERE thread_id = ? AND NOT EXISTS (
    SELECT 1 FROM checkpoints AS c WHERE c.thread_id = writes.thread_id
      AND c.checkpoint_ns = writes.checkpoint_ns AND c.checkpoint_id = writes.checkpoint_id)"""
DELETE_BLOB: Final = """
DELETE FROM blobs WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"""
DELETE_ITEM: Final = "DELETE FROM items WHERE thread_id = ? AND ref = ?"
DELETE_THREAD: Final = (
    "DELETE FROM checkpoints WHERE thread_id = ?",
    "DELETE FROM blobs WHERE thread_id = ?",
    "DELETE FROM writes WHERE thread_id = ?",
    "DELETE FROM items WHERE thread_id = ?",
    "DELETE FROM threads WHERE thread_id = ?",
)
# After a GC: a thread left with no checkpoint has nothing left; its lifecycle row goes.
DELETE_THREAD_IF_EMPTY: Final = """
DELETE FROM threads WHERE thread_id = ?1
  AND NOT EXISTS (SELECT 1 FROM checkpoints WHERE thread_id = ?1)"""

# -- copying ---------------------------------------------------------------------------------

# Each takes (target, source). The target's checkpoints and writes of the same keys are
# overwritten, as a put would; blobs and items are insert-if-absent (a key names one
# content), as on every backend.
COPY_THREAD: Final = (
    """INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id,
        parent_checkpoint_id, type, data, channel_versions, metadata, run_id)
    SELECT ?, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, data,
        channel_versions, metadata, run_id
    FROM checkpoints WHERE thread_id = ?""",
    """INSERT OR IGNORE INTO blobs (thread_id, checkpoint_ns, channel, version, type, data,
        item_refs)
    SELECT ?, checkpoint_ns, channel, version, type, data, item_refs
    FROM blobs WHERE thread_id = ?""",
    """INSERT OR REPLACE INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx,
        channel, type, data, task_path, item_refs)
    SELECT ?, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, data, task_path,
        item_refs
    FROM writes WHERE thread_id = ?""",
    """INSERT OR IGNORE INTO items (thread_id, ref, type, data, item_refs)
    SELECT ?, ref, type, data, item_refs FROM items WHERE thread_id = ?""",
)


# -- the lifecycle (table threads; core.lifecycle) ---------------------------------------------
#
# A thread's expiry is touched + ttl: its own ttl (own_ttl) or else the saver's (bound as
# a parameter, NULL for none); own_ttl 0 (core.lifecycle.PINNED) and no ttl at all: NULL.

SELECT_THREAD_STATE: Final = "SELECT expires_at FROM threads WHERE thread_id = ?"
# Stamps a write: (thread_id, now, saver's ttl). First write on insert, last write always.
UPSERT_THREAD_WRITE: Final = """
INSERT INTO threads (thread_id, first_write, last_write, own_ttl, expires_at)
VALUES (?1, ?2, ?2, NULL, ?2 + ?3)
ON CONFLICT (thread_id) DO UPDATE SET
    last_write = ?2,
    expires_at = CASE WHEN threads.own_ttl = 0 THEN NULL
                      ELSE ?2 + coalesce(threads.own_ttl, ?3) END"""
# refresh_on_read: (now, saver's ttl, JSON array of thread ids). Only threads that expire
# and have not expired yet; their last write stays.
REFRESH_THREADS: Final = """
UPDATE threads SET expires_at = CASE WHEN own_ttl = 0 THEN NULL
                                     ELSE ?1 + coalesce(own_ttl, ?2) END
WHERE thread_id IN (SELECT value FROM json_each(?3)) AND expires_at > ?1"""
# (ttl, thread_id, now): a thread with a checkpoint that has not expired; the expiry
# runs from its last write.
SET_THREAD_TTL: Final = """
UPDATE threads SET own_ttl = ?1, expires_at = CASE WHEN ?1 = 0 THEN NULL ELSE last_write + ?1 END
WHERE thread_id = ?2 AND (expires_at IS NULL OR expires_at > ?3)
  AND EXISTS (SELECT 1 FROM checkpoints WHERE thread_id = ?2)"""

# A page of threads: ``{where}`` is the conjunction of ``THREAD_*`` conditions the query
# needs ("1" for none), each fully bound; then the limit. In thread id order (the primary
# key), or in whatever order the planner's chosen index gives (a removal's search).
SELECT_THREAD_PAGE: Final = """
SELECT t.thread_id, t.first_write, t.last_write, t.expires_at FROM threads AS t
WHERE {where}
ORDER BY t.thread_id
LIMIT ?"""
SELECT_THREAD_PAGE_ANY_ORDER: Final = """
SELECT t.thread_id, t.first_write, t.last_write, t.expires_at FROM threads AS t
WHERE {where}
LIMIT ?"""
THREAD_UNEXPIRED: Final = "(t.expires_at IS NULL OR t.expires_at > ?)"
THREAD_HAS_CHECKPOINT: Final = (
    "EXISTS (SELECT 1 FROM checkpoints AS c WHERE c.thread_id = t.thread_id)"
)
THREAD_AFTER: Final = "t.thread_id > ?"
THREAD_UPDATED_AFTER: Final = "t.last_write > ?"
THREAD_UPDATED_BEFORE: Final = "t.last_write < ?"
THREAD_EXPIRED_AT: Final = "t.expires_at <= ?"
# ``{conditions}``: the LIST_METADATA_* conditions of the filter, joined by AND (they read
# the metadata of c, the one checkpoints row in scope).
THREAD_MATCHES: Final = """EXISTS (
    SELECT 1 FROM checkpoints AS c WHERE c.thread_id = t.thread_id AND {conditions})"""
# Stats of one thread (thread_id).
SELECT_THREAD_NAMESPACES: Final = """
SELECT checkpoint_ns, count(*) FROM checkpoints WHERE thread_id = ?
GROUP BY checkpoint_ns ORDER BY checkpoint_ns"""
# The stored values' bytes, as MemoryBackend counts them: checkpoint data and metadata,
# blob, write and item data (not keys, channel versions, item references or indexes).
SELECT_THREAD_BYTES: Final = """
SELECT (SELECT coalesce(sum(length(data) + length(CAST(metadata AS BLOB))), 0)
        FROM checkpoints WHERE thread_id = ?1)
     + (SELECT coalesce(sum(length(data)), 0) FROM blobs WHERE thread_id = ?1)
     + (SELECT coalesce(sum(length(data)), 0) FROM writes WHERE thread_id = ?1)
     + (SELECT coalesce(sum(length(data)), 0) FROM items WHERE thread_id = ?1)"""

# Removal of whole threads; each takes a JSON array of thread ids.
# (ids, written_before, expired_at): a NULL guard passes every thread.
SELECT_REMOVABLE_THREADS: Final = """
SELECT thread_id FROM threads
WHERE thread_id IN (SELECT value FROM json_each(?1))
  AND (?2 IS NULL OR last_write < ?2) AND (?3 IS NULL OR expires_at <= ?3)"""
SELECT_KNOWN_THREADS: Final = """
SELECT thread_id FROM threads WHERE thread_id IN (SELECT value FROM json_each(?))"""
# The ids of which any row is stored, in any of the five tables.
SELECT_THREAD_RESIDUE: Final = """
SELECT w.value FROM json_each(?) AS w
WHERE EXISTS (SELECT 1 FROM threads WHERE thread_id = w.value)
   OR EXISTS (SELECT 1 FROM checkpoints WHERE thread_id = w.value)
   OR EXISTS (SELECT 1 FROM writes WHERE thread_id = w.value)
   OR EXISTS (SELECT 1 FROM blobs WHERE thread_id = w.value)
   OR EXISTS (SELECT 1 FROM items WHERE thread_id = w.value)"""
# In the order of core.lifecycle.Removed's counts, then the lifecycle row.
DELETE_THREADS: Final = (
    "DELETE FROM checkpoints WHERE thread_id IN (SELECT value FROM json_each(?))",
    "DELETE FROM writes WHERE thread_id IN (SELECT value FROM json_each(?))",
    "DELETE FROM blobs WHERE thread_id IN (SELECT value FROM json_each(?))",
    "DELETE FROM items WHERE thread_id IN (SELECT value FROM json_each(?))",
    "DELETE FROM threads WHERE thread_id IN (SELECT value FROM json_each(?))",
)


def marks(count: int) -> str:
    """``count`` placeholders for a ``{marks}`` statement."""
    return ",".join("?" * count)
