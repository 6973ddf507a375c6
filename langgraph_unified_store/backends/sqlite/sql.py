"""Every statement the SQLite backend runs, written out in full.

Tables (see ``migrations.py``): ``checkpoints``, ``blobs``, ``writes``, ``items``, each
keyed by thread first. Item references are stored packed (``core.rules.pack_refs``);
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
SELECT_THREAD_IDS: Final = "SELECT DISTINCT thread_id FROM checkpoints ORDER BY thread_id"

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
)

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


def marks(count: int) -> str:
    """``count`` placeholders for a ``{marks}`` statement."""
    return ",".join("?" * count)
