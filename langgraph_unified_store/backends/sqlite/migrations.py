"""The SQLite schema, as numbered migrations applied once per database file.

``lus_schema_migrations`` records each version applied; ``migrate`` applies the rest in
one write transaction, so processes opening the same file at once never apply one twice.
"""

from __future__ import annotations

import sqlite3
import struct
import time
from collections.abc import Callable
from typing import Final

from ...core.observability import MIGRATED, emit
from .transaction import Transaction
from .vectors import unit_float32

Step = str | Callable[[sqlite3.Connection], None]
"""A statement, or a function of the connection for what SQL cannot do (in the same
transaction)."""

MIGRATIONS_TABLE_DDL: Final = """
CREATE TABLE IF NOT EXISTS lus_schema_migrations (
    version INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)"""
SELECT_SCHEMA_VERSION: Final = "SELECT coalesce(max(version), 0) FROM lus_schema_migrations"
INSERT_SCHEMA_VERSION: Final = "INSERT INTO lus_schema_migrations (version) VALUES (?)"
SELECT_MIGRATIONS_TABLE: Final = (
    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'lus_schema_migrations'"
)

# Version 1: one blob per (channel, version), values whole. Tables are clustered on their
# primary key (WITHOUT ROWID), so the key columns are not stored a second time in an index.
MIGRATION_1: Final = (
    """CREATE TABLE checkpoints (
        thread_id TEXT NOT NULL,
        checkpoint_ns TEXT NOT NULL DEFAULT '',
        checkpoint_id TEXT NOT NULL,
        parent_checkpoint_id TEXT,
        type TEXT NOT NULL,
        data BLOB NOT NULL,
        channel_versions TEXT NOT NULL,
        metadata TEXT NOT NULL,
        run_id TEXT,
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX checkpoints_by_run ON checkpoints (run_id) WHERE run_id IS NOT NULL",
    """CREATE TABLE blobs (
        thread_id TEXT NOT NULL,
        checkpoint_ns TEXT NOT NULL,
        channel TEXT NOT NULL,
        version TEXT NOT NULL,
        type TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
    ) WITHOUT ROWID""",
    """CREATE TABLE writes (
        thread_id TEXT NOT NULL,
        checkpoint_ns TEXT NOT NULL,
        checkpoint_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        channel TEXT NOT NULL,
        type TEXT NOT NULL,
        data BLOB NOT NULL,
        task_path TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
    ) WITHOUT ROWID""",
)
# Version 2: list values split into per-thread items (long threads grow linearly).
MIGRATION_2: Final = (
    # Item refs are random hashes: a rowid table fills its pages in insertion order, and
    # only the small unique index takes the random inserts.
    """CREATE TABLE items (
        thread_id TEXT NOT NULL,
        ref BLOB NOT NULL,
        type TEXT NOT NULL,
        data BLOB NOT NULL,
        item_refs BLOB NOT NULL DEFAULT x''
    )""",
    "CREATE UNIQUE INDEX items_by_ref ON items (thread_id, ref)",
    "ALTER TABLE blobs ADD COLUMN item_refs BLOB NOT NULL DEFAULT x''",
    "ALTER TABLE writes ADD COLUMN item_refs BLOB NOT NULL DEFAULT x''",
)
# Version 3: the data lifecycle (core.lifecycle): one row per thread with its first and
# last write and its expiry, so TTL sweeps, age-based deletes and thread listings use an
# index instead of scanning checkpoints. Threads stored before it get a row stamped with
# the migration's wall-clock time and no expiry: they expire (under a saver's ttl) from
# their next write on.
MIGRATION_3: Final = (
    """CREATE TABLE threads (
        thread_id TEXT PRIMARY KEY,
        first_write REAL NOT NULL,
        last_write REAL NOT NULL,
        own_ttl REAL,     -- NULL: the saver's ttl; 0 (core.lifecycle.PINNED): never expires
        expires_at REAL   -- NULL: never
    ) WITHOUT ROWID""",
    "CREATE INDEX threads_by_last_write ON threads (last_write)",
    "CREATE INDEX threads_by_expiry ON threads (expires_at) WHERE expires_at IS NOT NULL",
    # julianday('now') is fixed for the whole statement: every row gets the same time.
    """INSERT INTO threads (thread_id, first_write, last_write)
    SELECT thread_id, (julianday('now') - 2440587.5) * 86400.0,
        (julianday('now') - 2440587.5) * 86400.0
    FROM (SELECT thread_id FROM checkpoints UNION SELECT thread_id FROM writes)""",
)
# Version 4: the long-term memory store and the node cache (backends.sqlite.store). Items
# are clustered on (namespace, key), so a namespace prefix is a range of the primary key;
# values are JSON text (json_each reads them); vectors are little-endian float64 blobs,
# one row per indexed path. The expiry indexes hold only what can expire.
MIGRATION_4: Final = (
    """CREATE TABLE memory_items (
        namespace TEXT NOT NULL,  -- labels joined by '.' (core.store_rules)
        key TEXT NOT NULL,
        value TEXT NOT NULL,      -- a JSON object
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        ttl REAL,                 -- seconds; NULL: never expires
        expires_at REAL,          -- NULL: never
        PRIMARY KEY (namespace, key)
    ) WITHOUT ROWID""",
    # A search under a prefix reads its primary-key ranges; one over the whole store reads
    # this index in its order (the key columns follow updated_at in it), stopping at LIMIT.
    "CREATE INDEX memory_items_by_update ON memory_items (updated_at DESC)",
    "CREATE INDEX memory_items_by_expiry ON memory_items (expires_at) WHERE expires_at IS NOT NULL",
    """CREATE TABLE memory_vectors (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        path TEXT NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY (namespace, key, path)
    ) WITHOUT ROWID""",
    """CREATE TABLE node_cache (
        namespace TEXT NOT NULL,  -- the JSON array of the cache namespace's labels
        key TEXT NOT NULL,
        type TEXT NOT NULL,
        data BLOB NOT NULL,
        expires_at REAL,
        PRIMARY KEY (namespace, key)
    ) WITHOUT ROWID""",
    "CREATE INDEX node_cache_by_expiry ON node_cache (expires_at) WHERE expires_at IS NOT NULL",
)


# Version 5 (float32 vectors): beside each float64 vector, the float32 copy of it scaled
# to unit length that sqlite-vec ranks on (backends.sqlite.vectors.unit_float32); the
# store then re-ranks SQL's best candidates exactly in float64. A table of its own, with
# rowids: its rows (about 1 KiB at 256 dims) then fit in the table's pages and a scan
# reads only them, not the float64 blobs (a WITHOUT ROWID row that size spills to
# overflow pages). Vectors stored before it are copied here, in Python (no SQL turns
# float64 bytes into float32); a stored vector that is not whole float64s gets an empty
# copy, and a search over it reports it as corrupt.
SELECT_FLOAT64_VECTORS: Final = "SELECT namespace, key, path, vector FROM memory_vectors"
INSERT_FLOAT32_COPY: Final = """
INSERT INTO memory_vector_copies (namespace, key, path, vector) VALUES (?, ?, ?, ?)"""


COPY_BATCH: Final = 1000


def _copy_float32_vectors(db: sqlite3.Connection) -> None:
    """In batches, so that a large store's vectors are never all in memory at once."""
    vectors = db.execute(SELECT_FLOAT64_VECTORS)
    while batch := vectors.fetchmany(COPY_BATCH):
        copies = []
        for namespace, key, path, data in batch:
            copy = b""
            if len(data) and not len(data) % 8:
                copy = unit_float32(struct.unpack(f"<{len(data) // 8}d", data))
            copies.append((namespace, key, path, copy))
        db.executemany(INSERT_FLOAT32_COPY, copies)


MIGRATION_5_FLOAT32_VECTORS: Final[tuple[Step, ...]] = (
    """CREATE TABLE memory_vector_copies (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        path TEXT NOT NULL,
        vector BLOB NOT NULL,     -- float32, scaled to unit length
        PRIMARY KEY (namespace, key, path)
    )""",
    _copy_float32_vectors,
)
MIGRATIONS: Final[tuple[tuple[Step, ...], ...]] = (
    MIGRATION_1,
    MIGRATION_2,
    MIGRATION_3,
    MIGRATION_4,
    MIGRATION_5_FLOAT32_VECTORS,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)


def migrate(db: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the migrations this file has not seen yet; safe when processes race."""
    db.execute(MIGRATIONS_TABLE_DDL)
    applied: list[tuple[int, float]] = []
    with Transaction(db, write=True):
        current = int(db.execute(SELECT_SCHEMA_VERSION).fetchone()[0])
        for version in range(current + 1, target + 1):
            started = time.perf_counter()
            for step in MIGRATIONS[version - 1]:
                if isinstance(step, str):
                    db.execute(step)
                else:
                    step(db)
            db.execute(INSERT_SCHEMA_VERSION, (version,))
            applied.append((version, round((time.perf_counter() - started) * 1000, 3)))
    # Told once committed: a migration rolled back was never applied.
    for version, duration_ms in applied:
        emit(MIGRATED, "sqlite", version=version, duration_ms=duration_ms)
    return max(current, target)


def stored_version(db: sqlite3.Connection) -> int:
    """The file's schema version, 0 before the first migration; only reads (a health
    check must create nothing, not even the migrations table)."""
    if not db.execute(SELECT_MIGRATIONS_TABLE).fetchone()[0]:
        return 0
    return int(db.execute(SELECT_SCHEMA_VERSION).fetchone()[0])
