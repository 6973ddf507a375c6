"""PostgreSQL storage on asyncpg: few round trips, prepared statements, no saver-wide lock.

Why it is shaped this way:
- Every read of a checkpoint (its record, blobs, pending writes and the items they name)
  is ONE statement, and so is every ``put`` and ``put_writes``: data-modifying CTEs make
  a put atomic without BEGIN/COMMIT round trips, including the check that a list it
  extends (``BlobRecord.base_version``) is still stored.
- One table, ``lus_store``, for checkpoints, blobs, items and pending writes under compact
  binary keys, and one row per ``put_writes`` call, as each table, row and index entry
  has a fixed cost that dominated a long thread's footprint (see MIGRATION_2_CREATE).
- Operations from different threads and tasks run side by side on a connection pool;
  there is one pool per event loop (``LoopLocal``) because asyncpg pools belong to a loop.
  Our own pools skip asyncpg's per-release reset query and keep cached generic plans.
- Listing pages through checkpoints by key (no server-side cursor), so it also works
  behind a transaction-pooling PgBouncer, and fetches a whole page in one statement.
- Deleting (prune, delete_thread, delete_for_runs) takes a per-thread advisory lock that
  every write to the thread takes in shared mode, and a put checks with locking reads
  that what it relies on without sending is still stored, so a concurrent put never
  ends up naming a blob or item that garbage collection just removed (see
  PUT_CHECKPOINT for the interleavings).
- PostgreSQL text cannot hold NUL characters: ids, channel names and metadata containing
  one are refused with ``InvalidConfigError`` before anything is sent (bytea data is fine).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import logging
import math
import re
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Sequence,
)
from typing import Any, ClassVar, Final, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
import ormsgpack
from langgraph.checkpoint.serde.base import SerializerProtocol

from ..core.backend import Backend, LoopLocal
from ..core.codec import COMPRESSED_CHECKPOINT, COMPRESSED_ITEM
from ..core.limits import ReadLimits
from ..core.records import (
    EMPTY_TYPE,
    ITEM_DICT_TYPE,
    ITEM_LIST_TYPE,
    ITEM_REF_SIZE,
    SEGMENT_TYPE,
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
    load_channel_versions,
)
from ..core.saver import UnifiedCheckpointSaver
from ..core.sync import DEFAULT_CLOSE_TIMEOUT, ForeignLoop, UserClient
from ..errors import (
    BackendUnavailableError,
    BlobsMissingError,
    CorruptDataError,
    InvalidConfigError,
    ItemsMissingError,
    SaverClosedError,
    missing_extra,
)
from ..registry import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_INACTIVE_LIFETIME,
    DEFAULT_MAX_QUERIES,
    DEFAULT_MAX_SIZE,
    DEFAULT_MIN_SIZE,
    DEFAULT_SCHEMA,
    check_backend_options,
)
from ._ordered_ids import decode_ordered_id, encode_ordered_id

try:
    import asyncpg
except ImportError:  # pragma: no cover - exercised only without the extra
    asyncpg = None

logger = logging.getLogger(__name__)

T = TypeVar("T")
Connection = Any  # asyncpg.Connection (asyncpg ships no type hints)
Operation = Callable[[Connection], Awaitable[T]]

# -- tunables -------------------------------------------------------------------------------

# Tries per operation when the server dropped the connection under us (restart,
# pg_terminate_backend, a pooler recycling its server side). Every operation is
# idempotent, so retrying on a fresh connection is safe.
CONNECTION_ATTEMPTS: Final = 3
LIST_PAGE_SIZE: Final = 50
POOL_CLOSE_TIMEOUT: Final = 5.0
# Class id of the two-int advisory lock that serializes migrations ("LUS").
MIGRATION_LOCK_CLASS: Final = 0x4C5553

# -- schema (``{schema}`` is replaced by the quoted schema name) ------------------------------

MIGRATIONS_TABLE_DDL: Final = """
CREATE TABLE IF NOT EXISTS {schema}.lus_migrations (
    version integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
SELECT_MIGRATIONS_TABLE: Final = "SELECT to_regclass($1) IS NOT NULL"
SELECT_SCHEMA_EXISTS: Final = "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)"
CREATE_SCHEMA: Final = "CREATE SCHEMA {schema}"
SELECT_SCHEMA_VERSION: Final = "SELECT coalesce(max(version), 0) FROM {schema}.lus_migrations"
INSERT_SCHEMA_VERSION: Final = "INSERT INTO {schema}.lus_migrations (version) VALUES ($1)"
LOCK_MIGRATIONS: Final = "SELECT pg_advisory_xact_lock($1::integer, $2::integer)"

# Version 1 (release 944f381): checkpoints in lus_checkpoints; blobs, items and one row
# per pending write in lus_data. Kept as it was, so every database, new or old, takes the
# same path through the versions.
MIGRATION_1: Final = """
CREATE TABLE {schema}.lus_checkpoints (
    thread_id text COLLATE "C" NOT NULL,
    checkpoint_ns text COLLATE "C" NOT NULL DEFAULT '',
    checkpoint_id text COLLATE "C" NOT NULL,
    parent_checkpoint_id bytea,
    type text NOT NULL,
    data bytea NOT NULL,
    channel_versions jsonb NOT NULL,
    metadata jsonb NOT NULL,
    run_id text,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id) WITH (fillfactor = 100)
);
CREATE INDEX lus_checkpoints_run_id_idx ON {schema}.lus_checkpoints (run_id)
    WHERE run_id IS NOT NULL;
CREATE INDEX lus_checkpoints_metadata_idx ON {schema}.lus_checkpoints
    USING gin (metadata jsonb_path_ops);
CREATE TABLE {schema}.lus_data (
    thread_id text COLLATE "C" NOT NULL,
    key bytea NOT NULL,
    type text NOT NULL,
    data bytea NOT NULL,
    refs bytea,
    channel text,
    task_path text,
    PRIMARY KEY (thread_id, key) WITH (fillfactor = 100)
);
ALTER TABLE {schema}.lus_data ALTER COLUMN refs SET STORAGE MAIN;
"""

# Version 2: ONE table, lus_store, as every table costs ~40 KB before its first row (free
# space map, TOAST index, index root pages) and every row and index entry ~60 bytes:
# - every row has a compact binary ``key`` (built by ``_checkpoint_key``, ``_blob_key``,
#   ``_item_key`` and ``_write_key``; SQL only ever takes keys apart, never encodes ids):
#     checkpoint  b"c" ns 0x00 ordered(checkpoint_id)
#     blob        b"b" ns 0x00 version 0x00 channel
#     item        b"i" ref
#     writes      b"w" ns 0x00 ordered(checkpoint_id) id(task_id) idx+2**31 (4 bytes)
#   where ordered() is ``_ordered_ids.encode_ordered_id`` (18-19 bytes for a UUID, in text
#   order, so a thread's checkpoints are one key range in id order) and id() is 0x01 and
#   the 16 bytes of a canonical UUID, else 0x02, the UTF-8 text and 0x00. Text never
#   holds NUL, so the separators are unambiguous, and a checkpoint's writes are the key
#   range b"w" + its key without the b"c", up to 0x03 after that.
# - a checkpoint row holds its parent's id() in ``refs`` and fills the last three
#   columns; channel_versions is json (kept as sent: 10% smaller than jsonb and only
#   ever read whole), metadata jsonb for the GIN-indexed filters. Eight columns keep the
#   null bitmap in the 24-byte row header.
# - a writes row is one ``put_writes`` call of one task (or one write, see
#   ``_write_rows``), packed by ``_pack_writes``; its key has the call's first index.
# - ``type`` holds the common serde type tags as one character (``TYPE_CODES``); ``refs``
#   concatenates item references (ITEM_REF_SIZE bytes each) and stays inline up to a
#   page (STORAGE MAIN): references do not compress, and a TOAST detour only adds pages.
# Primary key pages are filled completely when appended to (fillfactor 100).
MIGRATION_2_CREATE: Final = """
CREATE TABLE {schema}.lus_store (
    thread_id text COLLATE "C" NOT NULL,
    key bytea NOT NULL,
    type text NOT NULL,
    data bytea NOT NULL,
    refs bytea,
    channel_versions json,
    metadata jsonb,
    run_id text,
    PRIMARY KEY (thread_id, key) WITH (fillfactor = 100)
);
ALTER TABLE {schema}.lus_store ALTER COLUMN refs SET STORAGE MAIN;
CREATE INDEX lus_store_run_id_idx ON {schema}.lus_store (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX lus_store_metadata_idx ON {schema}.lus_store
    USING gin (metadata jsonb_path_ops) WHERE metadata IS NOT NULL;
INSERT INTO {schema}.lus_store (thread_id, key, type, data, refs)
    SELECT thread_id, key, type, data, refs FROM {schema}.lus_data
    WHERE get_byte(key, 0) <> 119;
"""
# Version 1 rows that need Python to move: their keys change (ordered ids) or their
# rows are packed (writes).
SELECT_V1_CHECKPOINTS: Final = """
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, data,
    channel_versions::text, metadata::text, run_id
FROM {schema}.lus_checkpoints"""
SELECT_V1_WRITES: Final = """
SELECT thread_id, key, type, data, refs, channel, task_path FROM {schema}.lus_data
WHERE get_byte(key, 0) = 119"""
INSERT_ROWS: Final = """
INSERT INTO {schema}.lus_store (thread_id, key, type, data, refs, channel_versions,
    metadata, run_id)
SELECT r.thread_id, r.key, r.type, r.data, r.refs, r.channel_versions::json,
    r.metadata::jsonb, r.run_id
FROM unnest($1::text[], $2::bytea[], $3::text[], $4::bytea[], $5::bytea[], $6::text[],
    $7::text[], $8::text[]) AS r(thread_id, key, type, data, refs, channel_versions,
    metadata, run_id)"""
MIGRATION_2_DROP: Final = "DROP TABLE {schema}.lus_checkpoints, {schema}.lus_data"
MIGRATION_BATCH: Final = 1000

DROP_SCHEMA: Final = "DROP SCHEMA IF EXISTS {schema} CASCADE"
DROP_TABLES: Final = """
DROP TABLE IF EXISTS {schema}.lus_store, {schema}.lus_checkpoints, {schema}.lus_data,
    {schema}.lus_migrations"""

# -- keys of lus_store ------------------------------------------------------------------------

CHECKPOINT_KIND: Final = b"c"
BLOB_KIND: Final = b"b"
ITEM_KIND: Final = b"i"
WRITE_KIND: Final = b"w"
UUID_ID: Final = b"\x01"
TEXT_ID: Final = b"\x02"
WRITE_IDX_OFFSET: Final = 2**31
WRITE_IDX_MAX: Final = b"\xff\xff\xff\xff"
CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Serde type tags stored as one control character (every row has one, and these few are
# nearly all of them); any other tag is stored as it is, behind TYPE_ESCAPE if it starts
# with a control character itself. Append only: the codes are stored.
WRITES_TYPE: Final = "lus.writes"
TYPE_CODES: Final = (
    "msgpack",
    "null",
    "json",
    "bytes",
    EMPTY_TYPE,
    ITEM_LIST_TYPE,
    ITEM_DICT_TYPE,
    SEGMENT_TYPE,
    COMPRESSED_ITEM + "msgpack",
    COMPRESSED_CHECKPOINT + "msgpack",
    WRITES_TYPE,
)
TYPE_ESCAPE: Final = "\x1f"
_TYPE_CODE: Final = {type_: chr(1 + number) for number, type_ in enumerate(TYPE_CODES)}
STORED_WRITES_TYPE: Final = _TYPE_CODE[WRITES_TYPE]

# Parts of a checkpoint key in SQL (``{key}`` is a column): its namespace with the 0x00
# after it, and its ordered id.
NS_PART_SQL: Final = "substring({key} FROM 2 FOR position('\\x00'::bytea IN {key}) - 1)"
ID_PART_SQL: Final = "substring({key} FROM position('\\x00'::bytea IN {key}) + 1)"
CHECKPOINT_RANGE_SQL: Final = "{key} >= '\\x63'::bytea AND {key} < '\\x64'::bytea"
# The writes of the checkpoint with key ``{key}`` lie in [prefix, prefix || WRITES_END_SQL).
WRITE_PREFIX_SQL: Final = "('\\x77'::bytea || substring({key} FROM 2))"
WRITES_END_SQL: Final = "'\\x03'::bytea"
BLOB_KEY_SQL: Final = (
    "('\\x62'::bytea || {ns_part} || convert_to({version}, 'UTF8') || '\\x00'::bytea || "
    "convert_to({channel}, 'UTF8'))"
)
ITEM_KEY_SQL: Final = "('\\x69'::bytea || {ref})"
# The item references packed in a bytea, as rows (``ref``). unnest() of an array makes
# the planner expect a few rows, where generate_series() alone would make it expect a
# thousand per row and cost generic plans high enough to be JIT-compiled (seconds).
REFS_OF: Final = (
    "(SELECT unnest(ARRAY(SELECT substring({refs} FROM n * " + str(ITEM_REF_SIZE) + " + 1 FOR "
    + str(ITEM_REF_SIZE) + ") "
    "FROM generate_series(0, length({refs}) / " + str(ITEM_REF_SIZE) + " - 1) AS n)) AS ref)"
)


def _sql(template: str, **columns: str) -> str:
    for name, column in columns.items():
        template = template.replace("{" + name + "}", column)
    return template


# -- statements -----------------------------------------------------------------------------

ALL_BASES_STORED: Final = "WHERE NOT EXISTS (SELECT 1 FROM missing)"

# One statement: shared thread lock, the check that every blob the put relies on without
# sending it is still stored (blobs whose items a list extends, blobs it inherits), then
# (only if so) new items and blobs (insert-if-absent rows) and the checkpoint; it returns
# the missing ones, so a non-empty result means nothing was written (the core re-sends).
#
# Why no collection can leave this put naming a row it removed. The put P runs in READ
# COMMITTED, so its snapshot S is taken when the statement starts, before it gets the
# thread's shared advisory lock. A collection G (delete_thread, retain, delete_for_runs)
# takes the thread's exclusive lock in one statement, then deletes in a second one whose
# snapshot follows the lock, then commits. Every interleaving is one of:
# 1. G commits before S: P's snapshot no longer shows the rows; the checks miss them.
# 2. G holds the lock when P starts: P waits for it; once G commits P goes on with the
#    older S, which still shows the deleted rows. So the checks are locking reads (FOR
#    KEY SHARE): in READ COMMITTED a locking read looks at the newest committed version
#    of each row, and a row G deleted is not returned, so it is reported missing. A row P
#    sends that G deleted is inserted again: ON CONFLICT's arbiter also looks at the
#    newest version, not at S.
# 3. P gets the lock first: G's exclusive lock waits until P commits, and G's delete
#    statement then sees P's checkpoint, which names every blob it sent or inherits and,
#    through them, every item; G keeps them.
# So G's deletes never run while P runs: G never waits on a row lock of P's (the worry
# that a waiting DELETE does not re-check its NOT EXISTS cannot arise). The lock must be
# taken before the checks run, or P could hold a row lock G's DELETE waits for while P
# waits for G's advisory lock: ``missing`` joins ``thread_lock`` as the outer side of a
# nested loop, and tests/reliability/test_gc_races.py checks the plan keeps it so.
# $1 lock key, $2 thread, $3 checkpoint key, $4-$7 rows (key, type, data, refs) of items
# and blobs, $8-$10 the rows relied on (channel, version, key), $11 parent, $12 type,
# $13 data, $14 channel_versions, $15 metadata, $16 run_id.
PUT_CHECKPOINT: Final = """
WITH thread_lock AS (SELECT pg_advisory_xact_lock_shared($1::bigint){commit_mode}),
missing AS (
    SELECT b.channel, b.base
    FROM thread_lock, unnest($8::text[], $9::text[], $10::bytea[]) AS b(channel, base, key)
    WHERE NOT EXISTS (
        SELECT 1 FROM {schema}.lus_store x
        WHERE x.thread_id = $2::text AND x.key = b.key
        FOR KEY SHARE)
),
new_data AS (
    INSERT INTO {schema}.lus_store (thread_id, key, type, data, refs)
    SELECT $2::text, d.key, d.type, d.data, d.refs
    FROM thread_lock, unnest($4::bytea[], $5::text[], $6::bytea[], $7::bytea[])
        AS d(key, type, data, refs)
    """ + ALL_BASES_STORED + """
    ON CONFLICT DO NOTHING
),
new_checkpoint AS (
    INSERT INTO {schema}.lus_store (thread_id, key, type, data, refs, channel_versions,
        metadata, run_id)
    SELECT $2::text, $3::bytea, $12::text, $13::bytea, $11::bytea, $14::json, $15::jsonb,
        $16::text
    FROM thread_lock
    """ + ALL_BASES_STORED + """
    ON CONFLICT (thread_id, key) DO UPDATE SET
        type = EXCLUDED.type,
        data = EXCLUDED.data,
        refs = EXCLUDED.refs,
        channel_versions = EXCLUDED.channel_versions,
        metadata = EXCLUDED.metadata,
        run_id = EXCLUDED.run_id
)
SELECT channel, base FROM missing"""

# $1 lock key, $2 thread, $3-$6 items (key, type, data, refs), $7-$10 writes rows (key,
# type, data, refs), $11-$13 each row's condition (``_write_rows``): mode 0 always, mode 1
# only if the task's key range [$12, $13] holds no row yet. Returns the keys it stored.
PUT_WRITES: Final = """
WITH thread_lock AS (SELECT pg_advisory_xact_lock_shared($1::bigint){commit_mode}),
new_items AS (
    INSERT INTO {schema}.lus_store (thread_id, key, type, data, refs)
    SELECT $2::text, i.key, i.type, i.data, i.refs
    FROM thread_lock, unnest($3::bytea[], $4::text[], $5::bytea[], $6::bytea[])
        AS i(key, type, data, refs)
    ON CONFLICT DO NOTHING
)
INSERT INTO {schema}.lus_store (thread_id, key, type, data, refs)
SELECT $2::text, w.key, w.type, w.data, w.refs
FROM thread_lock, unnest($7::bytea[], $8::text[], $9::bytea[], $10::bytea[], $11::int[],
    $12::bytea[], $13::bytea[]) AS w(key, type, data, refs, mode, low, high)
WHERE w.mode = 0 OR NOT EXISTS (
    SELECT 1 FROM {schema}.lus_store x
    WHERE x.thread_id = $2::text AND x.key >= w.low AND x.key <= w.high)
ON CONFLICT (thread_id, key) DO {conflict}
RETURNING key"""
PUT_WRITES_KEEP: Final = PUT_WRITES.replace("{conflict}", "NOTHING")
PUT_WRITES_REPLACE: Final = PUT_WRITES.replace(
    "{conflict}", "UPDATE SET type = EXCLUDED.type, data = EXCLUDED.data, refs = EXCLUDED.refs"
)

CHECKPOINT_COLUMNS: Final = (
    "c.thread_id, c.key, c.refs, c.type, c.data, c.channel_versions, c.metadata, c.run_id"
)

# A damaged channel_versions that is not a JSON object names no blobs here, so the row
# still reaches Python, where load_channel_versions reports it as CorruptDataError.
VERSIONS_OBJECT: Final = (
    "CASE WHEN json_typeof({column}) = 'object' THEN {column} ELSE '{}'::json END"
)

# One index probe per key. LIMIT 1 (the key is unique anyway) keeps the planner from
# turning these into hash joins over a whole thread's rows.
LOOKUP_BLOB: Final = """
        SELECT x.type, x.data, x.refs FROM {schema}.lus_store x
        WHERE x.thread_id = p.thread_id AND x.key = """ + _sql(
    BLOB_KEY_SQL, ns_part="p.ns_part", version="v.version", channel="v.channel"
) + """
        LIMIT 1"""
# A checkpoint's writes are one key range; OFFSET 0 keeps it an index range scan per row
# (and, on the prefix, computes it once per checkpoint rather than once per bound).
LOOKUP_WRITES: Final = """
        SELECT x.key, x.type, x.data, x.refs
        FROM {schema}.lus_store x
        WHERE x.thread_id = p.thread_id AND x.key >= k.prefix
            AND x.key < k.prefix || """ + WRITES_END_SQL + """
        OFFSET 0"""
LOOKUP_ITEM: Final = """
        SELECT x.type, x.data, x.refs FROM {schema}.lus_store x
        WHERE x.thread_id = n.thread_id AND x.key = """ + _sql(ITEM_KEY_SQL, ref="n.ref") + """
        LIMIT 1"""

# Checkpoints with their blobs and writes, one row each, in one statement; the items
# they need (and the items those name) come once per page, on the first row.
# ``{where}`` and ``{order}`` are fixed fragments chosen by ``_Statements.page``.
READ_CHECKPOINTS_TEMPLATE: Final = """
WITH page AS (
    SELECT {columns}, {ns_part_of_c} AS ns_part,
        row_number() OVER (ORDER BY {order}) AS position
    FROM {schema}.lus_store c
    WHERE {checkpoint_range_of_c} AND {where}
    ORDER BY {order}
    LIMIT {limit}
),
page_blobs AS (
    SELECT p.position, p.thread_id, v.channel, v.version, b.type, b.data, b.refs
    FROM page p
    CROSS JOIN LATERAL json_each_text({versions_of_p}) AS v(channel, version)
    CROSS JOIN LATERAL ({lookup_blob}) b
),
page_writes AS (
    SELECT p.position, p.thread_id, w.key, w.type, w.data, w.refs
    FROM page p
    CROSS JOIN LATERAL (SELECT {write_prefix_of_p} AS prefix OFFSET 0) k
    CROSS JOIN LATERAL ({lookup_writes}) w
),
named AS (
    SELECT DISTINCT r.thread_id, r.ref FROM (
        SELECT b.thread_id, u.ref FROM page_blobs b CROSS JOIN LATERAL {refs_of_b} u
        UNION ALL
        SELECT w.thread_id, u.ref FROM page_writes w CROSS JOIN LATERAL {refs_of_w} u
    ) r
),
first_items AS (
    SELECT n.thread_id, n.ref, i.type, i.data, i.refs
    FROM named n CROSS JOIN LATERAL ({lookup_item}) i
),
inner_items AS (
    SELECT n.thread_id, n.ref, i.type, i.data, i.refs
    FROM (
        SELECT DISTINCT f.thread_id, u.ref
        FROM first_items f CROSS JOIN LATERAL {refs_of_f} u
    ) n
    CROSS JOIN LATERAL ({lookup_item}) i
    WHERE NOT EXISTS (
        SELECT 1 FROM named m WHERE m.thread_id = n.thread_id AND m.ref = n.ref)
),
blob_lists AS (
    SELECT position, array_agg((channel, version, type, data, refs)) AS blobs
    FROM page_blobs GROUP BY position
),
write_lists AS (
    SELECT position, array_agg((key, type, data, refs)) AS writes
    FROM page_writes GROUP BY position
)
SELECT p.thread_id, p.key, p.refs, p.type, p.data, p.channel_versions, p.metadata,
    p.run_id, bl.blobs, wl.writes,
    CASE WHEN p.position = 1 THEN (
        SELECT array_agg((a.thread_id, a.ref, a.type, a.data, a.refs)) FROM (
            SELECT thread_id, ref, type, data, refs FROM first_items
            UNION ALL
            SELECT thread_id, ref, type, data, refs FROM inner_items
        ) a
    ) END AS items
FROM page p
LEFT JOIN blob_lists bl ON bl.position = p.position
LEFT JOIN write_lists wl ON wl.position = p.position
ORDER BY p.position"""
READ_CHECKPOINTS: Final = (
    READ_CHECKPOINTS_TEMPLATE.replace("{columns}", CHECKPOINT_COLUMNS)
    .replace("{ns_part_of_c}", _sql(NS_PART_SQL, key="c.key"))
    .replace("{checkpoint_range_of_c}", _sql(CHECKPOINT_RANGE_SQL, key="c.key"))
    .replace("{lookup_blob}", LOOKUP_BLOB)
    .replace("{lookup_item}", LOOKUP_ITEM)
    .replace("{lookup_writes}", LOOKUP_WRITES)
    .replace("{write_prefix_of_p}", _sql(WRITE_PREFIX_SQL, key="p.key"))
    .replace("{refs_of_b}", _sql(REFS_OF, refs="b.refs"))
    .replace("{refs_of_w}", _sql(REFS_OF, refs="w.refs"))
    .replace("{refs_of_f}", _sql(REFS_OF, refs="f.refs"))
    .replace("{versions_of_p}", VERSIONS_OBJECT.replace("{column}", "p.channel_versions"))
)
# Sort keys of a listing (expressions of ``c``), when the namespace is not pinned.
ORDER_BY_ID: Final = _sql(ID_PART_SQL, key="c.key")
ORDER_BY_NS: Final = _sql(NS_PART_SQL, key="c.key")

SELECT_HEADS: Final = (
    "SELECT DISTINCT ON (" + ORDER_BY_NS + ") " + CHECKPOINT_COLUMNS + """
FROM {schema}.lus_store c
WHERE c.thread_id = $1 AND """ + _sql(CHECKPOINT_RANGE_SQL, key="c.key") + """
ORDER BY """ + ORDER_BY_NS + ", c.key DESC"
)
SELECT_THREAD_IDS: Final = (
    "SELECT DISTINCT thread_id FROM {schema}.lus_store c WHERE "
    + _sql(CHECKPOINT_RANGE_SQL, key="c.key")
    + " ORDER BY thread_id"
)
SELECT_THREADS_OF_RUNS: Final = (
    "SELECT DISTINCT thread_id FROM {schema}.lus_store WHERE run_id = ANY($1::text[])"
)
# Locks are taken in array order; callers sort the keys so deleters never deadlock.
LOCK_THREADS: Final = (
    "SELECT pg_advisory_xact_lock(k){commit_mode} FROM unnest($1::bigint[]) AS k"
)
# ``{commit_mode}`` in the lock steps above: nothing for durable commits; with
# synchronous_commit=False, this transaction-scoped setting (so it works through
# PgBouncer too, unlike a session SET).
RELAXED_COMMIT: Final = ", set_config('synchronous_commit', 'off', true)"
# Sent once per connection of the saver's own pools: puts would otherwise be planned
# afresh on every call, as unnest() of parameter arrays looks dear to a generic plan.
GENERIC_PLANS: Final = "SET plan_cache_mode = force_generic_plan"

# The checkpoint rows retain and delete_for_runs delete; ``$1`` is always the thread ids
# in scope. Retain spares a checkpoint newer than every kept one of its namespace (core
# ``retained``): a key of the same namespace that sorts after it must be kept.
DOOMED_EXCEPT_KEPT: Final = """
    SELECT c.thread_id, c.key FROM {schema}.lus_store c
    WHERE c.thread_id = ANY($1::text[]) AND """ + _sql(CHECKPOINT_RANGE_SQL, key="c.key") + """
        AND c.key <> ALL($2::bytea[])
        AND EXISTS (
            SELECT 1 FROM unnest($2::bytea[]) AS k(key)
            WHERE k.key > c.key AND """ + _sql(NS_PART_SQL, key="k.key") + " = " + _sql(
    NS_PART_SQL, key="c.key"
) + """)"""
DOOMED_BY_RUN: Final = """
    SELECT c.thread_id, c.key FROM {schema}.lus_store c
    WHERE c.thread_id = ANY($1::text[]) AND c.run_id = ANY($2::text[])"""

# Delete the doomed checkpoints and everything only they needed: their writes, blobs no
# survivor names, items no surviving blob, write or named segment references. One
# statement, so every part sees the same snapshot (taken after the thread locks):
# it gathers the keys of every row a survivor needs, then deletes the rest. It returns
# how many checkpoints it deleted.
COLLECT_GARBAGE: Final = """
WITH doomed AS ({doomed}),
survivors AS (
    SELECT c.thread_id, c.key, c.channel_versions
    FROM {schema}.lus_store c
    WHERE c.thread_id = ANY($1::text[]) AND {checkpoint_range_of_c} AND NOT EXISTS (
        SELECT 1 FROM doomed d WHERE d.thread_id = c.thread_id AND d.key = c.key)
),
live_blob_keys AS (
    SELECT DISTINCT s.thread_id, {blob_key_of_s} AS key
    FROM survivors s
    CROSS JOIN LATERAL json_each_text({versions_of_s}) AS v(channel, version)
),
live_rows AS (
    SELECT x.thread_id, x.key, x.refs FROM {schema}.lus_store x JOIN live_blob_keys l
        ON x.thread_id = l.thread_id AND x.key = l.key
    UNION ALL
    SELECT x.thread_id, x.key, x.refs
    FROM survivors s
    CROSS JOIN LATERAL (SELECT {write_prefix_of_s} AS prefix OFFSET 0) k
    JOIN {schema}.lus_store x ON x.thread_id = s.thread_id AND x.key >= k.prefix
        AND x.key < k.prefix || {writes_end}
),
named AS (
    SELECT DISTINCT r.thread_id, {item_key_of_u} AS key
    FROM live_rows r CROSS JOIN LATERAL {refs_of_r} u
),
live_keys AS (
    SELECT thread_id, key FROM survivors
    UNION
    SELECT thread_id, key FROM live_rows
    UNION
    SELECT thread_id, key FROM named
    UNION
    SELECT i.thread_id, {item_key_of_u} FROM {schema}.lus_store i
        JOIN named n ON i.thread_id = n.thread_id AND i.key = n.key
        CROSS JOIN LATERAL {refs_of_i} u
),
gone AS (
    DELETE FROM {schema}.lus_store x
    WHERE x.thread_id = ANY($1::text[]) AND NOT EXISTS (
        SELECT 1 FROM live_keys l WHERE l.thread_id = x.thread_id AND l.key = x.key)
    RETURNING x.key
)
SELECT count(*) FROM gone WHERE get_byte(key, 0) = 99"""
COLLECT_GARBAGE_SAFE: Final = (
    COLLECT_GARBAGE.replace("{checkpoint_range_of_c}", _sql(CHECKPOINT_RANGE_SQL, key="c.key"))
    .replace("{versions_of_s}", VERSIONS_OBJECT.replace("{column}", "s.channel_versions"))
    .replace(
        "{blob_key_of_s}",
        _sql(
            BLOB_KEY_SQL,
            ns_part=_sql(NS_PART_SQL, key="s.key"),
            version="v.version",
            channel="v.channel",
        ),
    )
    .replace("{write_prefix_of_s}", _sql(WRITE_PREFIX_SQL, key="s.key"))
    .replace("{writes_end}", WRITES_END_SQL)
    .replace("{item_key_of_u}", _sql(ITEM_KEY_SQL, ref="u.ref"))
    .replace("{refs_of_r}", _sql(REFS_OF, refs="r.refs"))
    .replace("{refs_of_i}", _sql(REFS_OF, refs="i.refs"))
)
RETAIN: Final = COLLECT_GARBAGE_SAFE.replace("{doomed}", DOOMED_EXCEPT_KEPT)
DELETE_RUNS: Final = COLLECT_GARBAGE_SAFE.replace("{doomed}", DOOMED_BY_RUN)

DELETE_THREAD: Final = "DELETE FROM {schema}.lus_store WHERE thread_id = $1"

# $1 source, $2 target, $3 target's lock key. Target checkpoints and writes are
# overwritten like a put; blobs and items are insert-if-absent (a key names one content).
COPY_THREAD: Final = """
WITH thread_lock AS (SELECT pg_advisory_xact_lock_shared($3::bigint){commit_mode})
INSERT INTO {schema}.lus_store (thread_id, key, type, data, refs, channel_versions,
    metadata, run_id)
SELECT $2::text, x.key, x.type, x.data, x.refs, x.channel_versions, x.metadata, x.run_id
FROM thread_lock, {schema}.lus_store x WHERE x.thread_id = $1::text
ON CONFLICT (thread_id, key) DO UPDATE SET
    type = EXCLUDED.type, data = EXCLUDED.data, refs = EXCLUDED.refs,
    channel_versions = EXCLUDED.channel_versions, metadata = EXCLUDED.metadata,
    run_id = EXCLUDED.run_id
    WHERE get_byte(EXCLUDED.key, 0) IN (99, 119)"""


# -- helpers --------------------------------------------------------------------------------


def quote_schema(schema: str) -> str:
    """The schema as a quoted identifier (``registry.postgres_schema`` checked it is a
    plain one)."""
    return f'"{schema}"'


def _qualify(statement: str, quoted_schema: str) -> str:
    return statement.replace("{schema}", quoted_schema)


class _Dsn:
    """What a connection string may show: where it points, never its password."""

    def __init__(self, dsn: str) -> None:
        if not isinstance(dsn, str) or not re.match(r"postgres(ql)?://", dsn):
            raise InvalidConfigError(
                "the connection string must be a postgresql:// URL "
                "(e.g. postgresql://user@127.0.0.1:5432/mydb)"
            )
        parts = urlsplit(dsn)
        netloc = parts.netloc
        credentials, _, hosts = netloc.rpartition("@")
        user, _, password = credentials.partition(":")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.hosts = query.get("host") or unquote(hosts) or "localhost"
        if query.get("port"):
            self.hosts = f"{self.hosts}:{query['port']}"
        self.database = query.get("dbname") or query.get("database") or unquote(
            parts.path.lstrip("/")
        )
        self.user = query.get("user") or unquote(user)
        self.secrets = [s for s in {password, unquote(password), query.get("password", "")} if s]
        self.secrets.append(dsn)

    def describe(self) -> str:
        where = f"PostgreSQL at {self.hosts}"
        if self.database:
            where += f", database {self.database!r}"
        if self.user:
            where += f", user {self.user!r}"
        return where

    def scrub(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def _lock_key(schema: str, thread_id: str) -> int:
    """A thread's advisory lock key (a signed 64-bit int), scoped to the schema."""
    digest = hashlib.blake2b(
        f"{schema}\0{thread_id}".encode("utf-8", "surrogatepass"), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def _storable(value: str) -> bool:
    """Can PostgreSQL text hold this string? Not with NUL, nor with lone surrogates."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _any_unstorable(values: Iterable[str | None]) -> bool:
    """True when some value cannot be stored as text (so no stored row can match it)."""
    return any(v is not None and not _storable(v) for v in values)


# PostgreSQL's btree holds an index entry of at most this many bytes (a third of a page,
# after compressing each column): the thread id and the row key together must fit.
BTREE_ENTRY_MAX: Final = 2704


def _too_long(
    operation: str, exc: BaseException, named: Iterable[tuple[str, str | None]]
) -> InvalidConfigError:
    """The error for a key PostgreSQL cannot index, naming the longest id that went in."""
    sizes = sorted(
        ((len(value.encode()), what) for what, value in named if value),
        reverse=True,
    )
    what, size = (sizes[0][1], sizes[0][0]) if sizes else ("key", 0)
    return InvalidConfigError(
        f"{operation}: the {what} is too long for PostgreSQL ({size} bytes; a btree index "
        f"entry holds at most {BTREE_ENTRY_MAX} bytes after compression, for the thread id "
        f"and the row's key together): use a shorter {what} ({str(exc).splitlines()[0]})"
    )


def _id_bytes(value: str) -> bytes:
    """An id inside a key: a canonical UUID in 17 bytes, any other text NUL-terminated."""
    if len(value) == 36 and CANONICAL_UUID.fullmatch(value):
        return UUID_ID + bytes.fromhex(value.replace("-", ""))
    return TEXT_ID + value.encode() + b"\x00"


def _read_id(key: bytes, start: int) -> tuple[str, int]:
    """The id encoded by ``_id_bytes`` at ``start`` of a key, and where it ends."""
    if key[start : start + 1] == UUID_ID:
        h = key[start + 1 : start + 17].hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", start + 17
    end = key.index(0, start + 1)
    return key[start + 1 : end].decode(), end + 1


async def _fetch_stored(conn: Connection, statement: str, args: Sequence[Any], where: str) -> list[Any]:
    """Rows of a read; a stored value the server itself cannot process (a planted
    channel_versions key holding \\u0000, which json_each_text refuses) is
    CorruptDataError, not a driver error."""
    try:
        return list(await conn.fetch(statement, *args))
    except asyncpg.exceptions.DataError as exc:
        if not isinstance(exc, asyncpg.PostgresError):
            raise  # a client-side argument error: bad input, handled by _run
        raise CorruptDataError(f"{where}: PostgreSQL cannot read a stored row ({exc})") from None


def _stored_type(type_: str) -> str:
    code = _TYPE_CODE.get(type_)
    if code is not None:
        return code
    return TYPE_ESCAPE + type_ if type_ and type_[0] < " " else type_


def _read_type(stored: str) -> str:
    if stored and stored[0] < " ":
        if stored[0] == TYPE_ESCAPE:
            return stored[1:]
        if len(stored) == 1 and ord(stored) <= len(TYPE_CODES):
            return TYPE_CODES[ord(stored) - 1]
    return stored


def _stored_id(value: str | None) -> bytes | None:
    return None if value is None else _id_bytes(value)


def _read_stored_id(stored: bytes | None) -> str | None:
    return None if stored is None else _read_id(stored, 0)[0]


def _blob_key(checkpoint_ns: str, channel: str, version: str) -> bytes:
    return BLOB_KIND + checkpoint_ns.encode() + b"\x00" + version.encode() + b"\x00" + channel.encode()


def _item_key(ref: bytes) -> bytes:
    return ITEM_KIND + ref


def _checkpoint_prefix(checkpoint_ns: str) -> bytes:
    """The keys of a namespace's checkpoints all start with this."""
    return CHECKPOINT_KIND + checkpoint_ns.encode() + b"\x00"


def _checkpoint_key(checkpoint_ns: str, checkpoint_id: str) -> bytes:
    return _checkpoint_prefix(checkpoint_ns) + encode_ordered_id(checkpoint_id)


def _read_checkpoint_key(thread_id: str, key: bytes) -> tuple[str, str]:
    """(checkpoint_ns, checkpoint_id) of a checkpoint row's key."""
    try:
        end = key.index(0, 1)
        return key[1:end].decode(), decode_ordered_id(key, end + 1)[0]
    except ValueError:
        raise CorruptDataError(
            f"thread {thread_id!r}: a stored checkpoint key is damaged ({bytes(key)!r})"
        ) from None


def _prefix_end(prefix: bytes) -> bytes:
    """The least key above every key starting with ``prefix`` (which ends in 0x00)."""
    return prefix[:-1] + b"\x01"


def _write_prefix(checkpoint_ns: str, checkpoint_id: str) -> bytes:
    return WRITE_KIND + checkpoint_ns.encode() + b"\x00" + encode_ordered_id(checkpoint_id)


def _write_index(idx: int) -> bytes:
    if not -WRITE_IDX_OFFSET <= idx < WRITE_IDX_OFFSET:
        raise InvalidConfigError(f"write index {idx!r} does not fit in 32 bits")
    return (idx + WRITE_IDX_OFFSET).to_bytes(4, "big")


def _write_key(prefix: bytes, task_id: str, idx: int) -> bytes:
    return prefix + _id_bytes(task_id) + _write_index(idx)


def _read_write_key(key: bytes, prefix_length: int) -> tuple[str, int]:
    """(task_id, first idx) of a writes row's key."""
    task_id, end = _read_id(key, prefix_length)
    return task_id, int.from_bytes(key[end : end + 4], "big") - WRITE_IDX_OFFSET


def _packed(refs: Sequence[bytes]) -> bytes | None:
    return b"".join(refs) if refs else None


def _pack_writes(task_path: str, writes: Sequence[WriteRecord]) -> tuple[bytes, bytes | None]:
    """The data and refs of a writes row: msgpack of the task path and, per write, its
    index, channel, stored type, data and number of item references."""
    entries = [[w.idx, w.channel, _stored_type(w.type), w.data, len(w.item_refs)] for w in writes]
    return (
        ormsgpack.packb([task_path, entries]),
        _packed([ref for w in writes for ref in w.item_refs]),
    )


def _unpack_writes(task_id: str, data: bytes, refs: bytes | None) -> list[WriteRecord]:
    task_path, entries = ormsgpack.unpackb(data)
    every_ref = _split_refs(refs)
    writes = []
    used = 0
    for idx, channel, type_, payload, count in entries:
        writes.append(
            WriteRecord(
                task_id, idx, channel, _read_type(type_), payload, task_path,
                every_ref[used : used + count],
            )
        )
        used += count
    if used != len(every_ref) or not isinstance(task_path, str):
        raise ValueError("references do not match the writes")
    return writes


WriteRow = tuple[bytes, str, bytes, bytes | None, int, bytes | None, bytes | None]
ALWAYS, IF_TASK_HAS_NONE = 0, 1


def _writes_row(
    prefix: bytes,
    task_id: str,
    task_path: str,
    batch: list[WriteRecord],
    mode: int,
    low: bytes | None = None,
    high: bytes | None = None,
) -> WriteRow:
    """One writes row, keyed by its first write's index."""
    data, refs = _pack_writes(task_path, batch)
    return (_write_key(prefix, task_id, batch[0].idx), STORED_WRITES_TYPE, data, refs, mode, low, high)


def _write_rows(
    prefix: bytes, writes: Sequence[WriteRecord], *, replace: bool
) -> tuple[list[WriteRow], dict[bytes, list[WriteRow]]]:
    """The rows of one ``put_writes`` call (see PUT_WRITES for the modes), and for each
    row that packs several writes, the rows to store instead if it was not stored.

    Regular writes (index >= 0) of a task become one row when the task has none stored
    yet, which is every task's first call: a chat turn's writes then cost one row, not
    one per channel. Otherwise, and for special writes (negative indexes, which replace
    each other), each write is its own row, so the first stored write per (task, index)
    is kept and a replaced special write replaces only itself. A reader takes each
    (task, index) from the first row in key order that holds it (``_stored_writes``).
    """
    rows: list[WriteRow] = []
    instead: dict[bytes, list[WriteRow]] = {}
    groups: dict[tuple[str, str], list[WriteRecord]] = {}
    for write in writes:
        groups.setdefault((write.task_id, write.task_path), []).append(write)
    for (task_id, task_path), group in groups.items():
        row = functools.partial(_writes_row, prefix, task_id, task_path)
        together = [] if replace else [w for w in group if w.idx >= 0]
        if len(together) > 1:
            low = _write_key(prefix, task_id, 0)
            packed = row(together, IF_TASK_HAS_NONE, low, low[:-4] + WRITE_IDX_MAX)
            rows.append(packed)
            instead[packed[0]] = [row([write], ALWAYS) for write in together]
        for write in group if len(together) <= 1 else [w for w in group if w.idx < 0]:
            rows.append(row([write], ALWAYS))
    return rows, instead


Rows = tuple[list[bytes], list[str], list[bytes], list[bytes | None]]


def _columns(rows: Sequence[WriteRow]) -> list[list[Any]]:
    """Rows as the parameter arrays PUT_WRITES unnests."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 7


def _item_rows(items: Iterable[ItemRecord]) -> Rows:
    """lus_store rows (key, type, data, refs) of items, each once."""
    unique = {item.ref: item for item in items}.values()
    return (
        [_item_key(i.ref) for i in unique],
        [_stored_type(i.type) for i in unique],
        [i.data for i in unique],
        [_packed(i.item_refs) for i in unique],
    )


def _split_refs(packed: bytes | None) -> tuple[bytes, ...]:
    if not packed:
        return ()
    return tuple(packed[i : i + ITEM_REF_SIZE] for i in range(0, len(packed), ITEM_REF_SIZE))


def _record(row: Any) -> CheckpointRecord:
    thread_id = row[0]
    checkpoint_ns, checkpoint_id = _read_checkpoint_key(thread_id, row[1])
    return CheckpointRecord(
        thread_id=thread_id,
        checkpoint_ns=checkpoint_ns,
        checkpoint_id=checkpoint_id,
        parent_checkpoint_id=_read_stored_id(row[2]),
        type=_read_type(row[3]),
        data=row[4],
        channel_versions=load_channel_versions(row[5], thread_id, checkpoint_ns, checkpoint_id),
        metadata=row[6].encode(),
        run_id=row[7],
    )


def _stored_writes(
    record: CheckpointRecord, prefix_length: int, rows: Sequence[Any]
) -> list[WriteRecord]:
    """A checkpoint's writes rows (key, type, data, refs) as writes, the first stored
    per (task, index) (see ``_write_rows``). Their keys start with ``prefix_length``
    bytes of the checkpoint's write prefix, as long as its key."""
    writes: dict[tuple[str, int], WriteRecord] = {}
    for key, type_, data, refs in sorted(rows, key=lambda row: bytes(row[0])):
        try:
            task_id, _ = _read_write_key(key, prefix_length)
            if type_ != STORED_WRITES_TYPE:
                raise ValueError(f"type {type_!r}")
            unpacked = _unpack_writes(task_id, data, refs)
        except (ValueError, TypeError, IndexError, ormsgpack.MsgpackDecodeError) as exc:
            raise CorruptDataError(
                f"thread {record.thread_id!r}, namespace {record.checkpoint_ns!r}, checkpoint "
                f"{record.checkpoint_id!r}: a stored pending-writes row is damaged ({exc})"
            ) from None
        for write in unpacked:
            writes.setdefault((write.task_id, write.idx), write)
    return list(writes.values())


def _stored_page(rows: Sequence[Any]) -> list[StoredCheckpoint]:
    """READ_CHECKPOINTS rows as StoredCheckpoints; each shares its thread's item map."""
    by_thread: dict[str, dict[bytes, ItemRecord]] = {}
    if rows and rows[0][10]:
        for thread_id, ref, type_, data, refs in rows[0][10]:
            by_thread.setdefault(thread_id, {})[ref] = ItemRecord(
                ref, _read_type(type_), data, _split_refs(refs)
            )
    page = []
    for row in rows:
        stored = StoredCheckpoint(_record(row))
        if row[8]:
            stored.blobs = {
                channel: BlobRecord(channel, version, _read_type(type_), data, _split_refs(refs))
                for channel, version, type_, data, refs in row[8]
            }
        if row[9]:
            stored.writes = _stored_writes(stored.record, len(row[1]), row[9])
        stored.items = by_thread.get(row[0], {})
        page.append(stored)
    return page


async def _migrate_to_v2(conn: Connection, quoted_schema: str) -> None:
    """Version 2: one table. Blobs and items are copied in SQL; checkpoints (whose keys
    now hold ordered ids) and writes (now packed) pass through here, in batches."""
    await conn.execute(_qualify(MIGRATION_2_CREATE, quoted_schema))
    insert = _qualify(INSERT_ROWS, quoted_schema)
    columns: list[list[Any]] = [[] for _ in range(8)]

    async def flush() -> None:
        if columns[0]:
            await conn.execute(insert, *columns)
            for column in columns:
                column.clear()

    def add(*row: Any) -> None:
        for column, value in zip(columns, row, strict=True):
            column.append(value)

    query = _qualify(SELECT_V1_CHECKPOINTS, quoted_schema)
    async for r in conn.cursor(query, prefetch=MIGRATION_BATCH):
        add(r[0], _checkpoint_key(r[1], r[2]), r[4], r[5], r[3], r[6], r[7], r[8])
        if len(columns[0]) >= MIGRATION_BATCH:
            await flush()
    await flush()
    async for r in conn.cursor(_qualify(SELECT_V1_WRITES, quoted_schema), prefetch=MIGRATION_BATCH):
        thread_id, key, type_, data, refs, channel, task_path = r
        ns_end = key.index(0, 1)
        checkpoint_id, end = _read_id(key, ns_end + 1)
        task_id, idx = _read_write_key(key, end)
        write = WriteRecord(
            task_id, idx, channel, _read_type(type_), data, task_path or "", _split_refs(refs)
        )
        packed, packed_refs = _pack_writes(write.task_path, [write])
        new_key = _write_prefix(key[1:ns_end].decode(), checkpoint_id) + key[end:]
        add(thread_id, new_key, STORED_WRITES_TYPE, packed, packed_refs, None, None, None)
        if len(columns[0]) >= MIGRATION_BATCH:
            await flush()
    await flush()
    await conn.execute(_qualify(MIGRATION_2_DROP, quoted_schema))


Migration = str | Callable[[Connection, str], Awaitable[None]]
MIGRATIONS: Final[tuple[Migration, ...]] = (MIGRATION_1, _migrate_to_v2)
SCHEMA_VERSION: Final = len(MIGRATIONS)


async def _prefer_generic_plans(connection: Connection) -> None:
    await connection.execute(GENERIC_PLANS)


async def _keep_session(connection: Connection) -> None:
    """Pool reset hook: we leave no session state behind, so skip asyncpg's reset query
    (a round trip on every release). asyncpg still rolls back an unfinished transaction."""


def _connection_lost(exc: BaseException, connection: Connection | None) -> bool:
    """Did this error come from the server or network dropping the connection?"""
    if isinstance(exc, (OSError, asyncpg.PostgresConnectionError)):
        return True
    if isinstance(
        exc,
        (
            asyncpg.AdminShutdownError,
            asyncpg.CrashShutdownError,
            asyncpg.CannotConnectNowError,
            asyncpg.InvalidCachedStatementError,
        ),
    ):
        return True
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        # The server's goodbye (e.g. pg_terminate_backend) arrived on an idle connection
        # and left asyncpg's protocol out of step: that connection is done for.
        return True
    if isinstance(exc, asyncpg.InterfaceError) and connection is not None:
        try:
            return bool(connection.is_closed())
        except asyncpg.InterfaceError:
            return True  # asyncpg already took the closed connection back from us
    return False


def _discard(connection: Connection) -> None:
    """Make sure a broken connection is never handed out again."""
    with contextlib.suppress(Exception):
        connection.terminate()


def _terminate_pool(pool: Any) -> None:
    """Drop a pool whose event loop has stopped (nothing can close it politely)."""
    with contextlib.suppress(Exception):
        pool.terminate()


# -- the backend ----------------------------------------------------------------------------


class PostgresBackend(Backend):
    name: ClassVar[str] = "postgres"

    def __init__(
        self,
        conn: str | Any,
        *,
        schema: str = DEFAULT_SCHEMA,
        prepared_statements: bool = True,
        min_size: int = DEFAULT_MIN_SIZE,
        max_size: int = DEFAULT_MAX_SIZE,
        max_queries: int = DEFAULT_MAX_QUERIES,
        max_inactive_connection_lifetime: float = DEFAULT_MAX_INACTIVE_LIFETIME,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
        synchronous_commit: bool = True,
        connect_options: dict[str, Any] | None = None,
    ) -> None:
        if asyncpg is None:
            raise missing_extra("postgres", "asyncpg")
        checked = check_backend_options(
            "postgres",
            {
                "schema": schema,
                "prepared_statements": prepared_statements,
                "min_size": min_size,
                "max_size": max_size,
                "max_queries": max_queries,
                "max_inactive_connection_lifetime": max_inactive_connection_lifetime,
                "connect_timeout": connect_timeout,
                "command_timeout": command_timeout,
                "synchronous_commit": synchronous_commit,
            },
        )
        self.schema = schema
        self._quoted = quote_schema(schema)
        self._external: Any = None
        self._user_pool: UserClient[Any] | None = None
        self._dsn: _Dsn | None = None
        if isinstance(conn, asyncpg.Pool):
            self._external = conn
            self._user_pool = UserClient(
                conn, ForeignLoop.HAND_OFF, home=getattr(conn, "_loop", None),
                kind="an asyncpg pool",
            )
        elif isinstance(conn, str):
            self._dsn = _Dsn(conn)
            self._conn_string = conn
        else:
            raise InvalidConfigError(
                f"conn must be a postgresql:// connection string or an asyncpg.Pool, "
                f"not {type(conn).__name__}"
            )
        options = dict(connect_options or {})
        known = set(inspect.signature(asyncpg.connect).parameters) - {"dsn", "loop"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidConfigError(f"unknown PostgreSQL connection option(s): {', '.join(unknown)}")
        if self._dsn is not None and options.get("password"):
            self._dsn.secrets.append(str(options["password"]))
        self.prepared_statements = prepared_statements
        self.connect_timeout = checked["connect_timeout"]
        self.command_timeout = checked["command_timeout"]
        self._pool_options: dict[str, Any] = {
            name: checked[name]
            for name in ("min_size", "max_size", "max_queries", "max_inactive_connection_lifetime")
        }
        self._connect_options = options
        self._pools: LoopLocal[Any] = LoopLocal(self._open_pool, self._close_pool, _terminate_pool)
        self._ready = False
        self.synchronous_commit = synchronous_commit
        self._statements = _Statements(self._quoted, synchronous_commit=synchronous_commit)

    def __repr__(self) -> str:
        if self._dsn is None:
            return f"PostgresBackend(pool=<asyncpg.Pool>, schema={self.schema!r})"
        return (
            f"PostgresBackend(hosts={self._dsn.hosts!r}, database={self._dsn.database!r}, "
            f"schema={self.schema!r})"
        )

    # -- connections ----------------------------------------------------------------------

    def _where(self) -> str:
        return "PostgreSQL (the given pool)" if self._dsn is None else self._dsn.describe()

    def _scrub(self, text: str) -> str:
        return text if self._dsn is None else self._dsn.scrub(text)

    def _unavailable(self, doing: str, exc: BaseException) -> BackendUnavailableError:
        reason = self._scrub(str(exc)) or type(exc).__name__
        return BackendUnavailableError(f"{doing} {self._where()}: {type(exc).__name__}: {reason}")

    async def _open_pool(self) -> Any:
        try:
            return await asyncpg.create_pool(
                self._conn_string,
                statement_cache_size=100 if self.prepared_statements else 0,
                timeout=self.connect_timeout,
                command_timeout=self.command_timeout,
                reset=_keep_session,
                init=_prefer_generic_plans if self.prepared_statements else None,
                **self._pool_options,
                **self._connect_options,
            )
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise self._unavailable("cannot connect to", exc) from None
        except (ValueError, TypeError) as exc:
            raise InvalidConfigError(f"bad PostgreSQL connection settings: {self._scrub(str(exc))}") from None

    @staticmethod
    async def _close_pool(pool: Any) -> None:
        try:
            await asyncio.wait_for(pool.close(), POOL_CLOSE_TIMEOUT)
        except Exception:
            pool.terminate()

    async def _run(self, operation: Operation[T], *, setup: bool = True) -> T:
        """Run one operation on a pooled connection, retrying on a fresh one if the
        server dropped the connection, and naming the server (never the password)."""
        if self._user_pool is not None and not self._user_pool.at_home():
            return await self._user_pool.run_at_home(self._run(operation, setup=setup))
        if setup and not self._ready:
            await self.setup()
        recreated = False
        for attempt in range(1, CONNECTION_ATTEMPTS + 1):
            pool = self._external if self._external is not None else await self._pools.get()
            try:
                connection = await pool.acquire()
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                raise self._unavailable("cannot connect to", exc) from None
            except asyncpg.InterfaceError as exc:  # "pool is closing" / "pool is closed"
                if self._external is None:  # our pools close only when the saver does
                    raise SaverClosedError(repr(self)) from None
                raise self._unavailable("cannot use the given pool for", exc) from None
            tables_gone = False
            try:
                return await operation(connection)
            except TimeoutError as exc:
                raise BackendUnavailableError(
                    f"{self._where()} did not answer within command_timeout="
                    f"{self.command_timeout}s"
                ) from exc
            except asyncpg.UndefinedTableError:
                if not setup or recreated:
                    raise
                tables_gone = True
            except asyncpg.exceptions.DataError as exc:
                if not str(exc).startswith("invalid input for query argument"):
                    raise
                # asyncpg's client-side refusal to encode an argument: bad input.
                raise InvalidConfigError(f"PostgreSQL cannot take this value: {exc}") from None
            except Exception as exc:
                if not _connection_lost(exc, connection):
                    raise
                _discard(connection)
                await pool.expire_connections()  # its siblings were most likely dropped too
                if attempt == CONNECTION_ATTEMPTS:
                    if isinstance(exc, asyncpg.exceptions.InternalClientError):
                        raise
                    raise self._unavailable("lost the connection to", exc) from None
                logger.info("PostgreSQL connection lost (%s); retrying", type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    await pool.release(connection)
            if tables_gone:
                # Our tables were dropped under us (another process's drop_all, a DBA):
                # set the schema up again, once, and retry.
                recreated, self._ready = True, False
                await self.setup()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- schema -----------------------------------------------------------------------------

    async def setup(self) -> None:
        """Create or upgrade the schema (idempotent; concurrent processes queue on an
        advisory lock). Also runs by itself before the first operation."""
        if self._ready:
            return
        await self._run(self._migrate, setup=False)
        self._ready = True

    async def _migrate(self, conn: Connection) -> None:
        s = self._statements
        table = f"{self._quoted}.lus_migrations"
        if await conn.fetchval(SELECT_MIGRATIONS_TABLE, table):
            version = await conn.fetchval(s.schema_version)
            if version >= SCHEMA_VERSION:
                if version > SCHEMA_VERSION:
                    logger.warning(
                        "schema %s is at version %s, newer than this library's %s",
                        self.schema, version, SCHEMA_VERSION,
                    )
                return
        digest = hashlib.blake2b(self.schema.encode(), digest_size=4).digest()
        schema_key = int.from_bytes(digest, "big", signed=True)
        async with conn.transaction():
            await conn.execute(LOCK_MIGRATIONS, MIGRATION_LOCK_CLASS, schema_key)
            if not await conn.fetchval(SELECT_SCHEMA_EXISTS, self.schema):
                await conn.execute(s.create_schema)
            await conn.execute(s.migrations_table)
            version = await conn.fetchval(s.schema_version)
            for number in range(version + 1, SCHEMA_VERSION + 1):
                step = MIGRATIONS[number - 1]
                if isinstance(step, str):
                    await conn.execute(_qualify(step, self._quoted))
                else:
                    await step(conn, self._quoted)
                await conn.execute(s.insert_version, number)
                logger.info("schema %s migrated to version %s", self.schema, number)

    async def drop_all(self) -> None:
        """Drop everything this saver stored: the schema, or in "public" just its tables."""
        statement = self._statements.drop_tables if self.schema == "public" else self._statements.drop_schema

        async def drop(conn: Connection) -> None:
            await conn.execute(statement)

        await self._run(drop, setup=False)
        self._ready = False

    async def aclose(self) -> None:
        await self._pools.aclose()

    # -- writing ----------------------------------------------------------------------------

    def _key(self, thread_id: str) -> int:
        return _lock_key(self.schema, thread_id)

    async def put_checkpoint(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        items: Sequence[ItemRecord],
        inherited: Collection[str] = (),
    ) -> None:
        ns = record.checkpoint_ns
        keys, types, datas, refs = _item_rows(items)
        for b in blobs:
            keys.append(_blob_key(ns, b.channel, b.version))
            types.append(_stored_type(b.type))
            datas.append(b.data)
            refs.append(_packed(b.item_refs))
        # What the put relies on without sending (PUT_CHECKPOINT checks each with a locking
        # read): the blobs whose items a list extends, and the blobs it inherits.
        relied = [(b.channel, b.base_version) for b in blobs if b.base_version is not None]
        relied += [(c, record.channel_versions[c]) for c in inherited]
        args = (
            self._key(record.thread_id),
            record.thread_id,
            _checkpoint_key(ns, record.checkpoint_id),
            keys,
            types,
            datas,
            refs,
            [channel for channel, _ in relied],
            [version for _, version in relied],
            [_blob_key(ns, channel, version) for channel, version in relied],
            _stored_id(record.parent_checkpoint_id),
            _stored_type(record.type),
            record.data,
            orjson.dumps(record.channel_versions).decode(),
            record.metadata.decode(),
            record.run_id,
        )
        statement = self._statements.put_checkpoint

        async def put(conn: Connection) -> list[Any]:
            return list(await conn.fetch(statement, *args))

        try:
            missing = await self._run(put)
        except asyncpg.ProgramLimitExceededError as exc:
            raise _too_long(
                "put",
                exc,
                [
                    ("thread id", record.thread_id),
                    ("checkpoint namespace", record.checkpoint_ns),
                    ("checkpoint id", record.checkpoint_id),
                    ("run id", record.run_id),
                    *(("channel name", b.channel) for b in blobs),
                    *(("channel version", b.version) for b in blobs),
                ],
            ) from None
        gone = [channel for channel, _ in missing if channel in inherited]
        if gone:
            raise BlobsMissingError(record.thread_id, ns, record.checkpoint_id, gone)
        if missing:
            channel, base = missing[0]
            raise ItemsMissingError.base_gone(record.thread_id, channel, base)

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
        # One row per key: the last one wins when replacing, the first one otherwise.
        by_key: dict[tuple[str, int], WriteRecord] = {}
        for write in writes:
            key = (write.task_id, write.idx)
            if replace or key not in by_key:
                by_key[key] = write
        unique = list(by_key.values())
        rows, instead = _write_rows(
            _write_prefix(checkpoint_ns, checkpoint_id), unique, replace=replace
        )
        lock_key = self._key(thread_id)
        args = (lock_key, thread_id, *_item_rows(items), *_columns(rows))
        statement = self._statements.put_writes_replace if replace else self._statements.put_writes_keep

        async def put(conn: Connection) -> None:
            stored = {bytes(row[0]) for row in await conn.fetch(statement, *args)}
            # A task that already had writes stored: one row per write (a repeated call).
            again = [r for key, rows in instead.items() if key not in stored for r in rows]
            if again:
                await conn.fetch(statement, lock_key, thread_id, [], [], [], [], *_columns(again))

        try:
            await self._run(put)
        except asyncpg.ProgramLimitExceededError as exc:
            raise _too_long(
                "put_writes",
                exc,
                [
                    ("thread id", thread_id),
                    ("checkpoint namespace", checkpoint_ns),
                    ("checkpoint id", checkpoint_id),
                    *(("task id", w.task_id) for w in unique),
                ],
            ) from None

    # -- reading ----------------------------------------------------------------------------

    async def get_checkpoint(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> StoredCheckpoint | None:
        if _any_unstorable((thread_id, checkpoint_ns, checkpoint_id)):
            return None  # nothing stored can have that key
        args: tuple[str | bytes, ...]
        if checkpoint_id is None:
            prefix = _checkpoint_prefix(checkpoint_ns)
            statement, args = self._statements.get_latest, (thread_id, prefix, _prefix_end(prefix))
        else:
            key = _checkpoint_key(checkpoint_ns, checkpoint_id)
            statement, args = self._statements.get_by_id, (thread_id, key)

        async def fetch(conn: Connection) -> list[Any]:
            return await _fetch_stored(conn, statement, args, f"thread {thread_id!r}")

        page = _stored_page(await self._run(fetch))
        return page[0] if page else None

    async def list_checkpoints(self, query: ListQuery) -> AsyncIterator[StoredCheckpoint]:
        if _any_unstorable((query.thread_id, query.checkpoint_ns, query.checkpoint_id, query.before)):
            return
        metadata_filter: str | None = None
        if query.filter:
            if _any_unstorable(query.filter) or _any_unstorable(
                v for v in query.filter.values() if isinstance(v, str)
            ):
                return  # stored metadata never holds NUL
            if any(isinstance(v, float) and not math.isfinite(v) for v in query.filter.values()):
                return  # stored JSON cannot hold inf
            try:
                metadata_filter = orjson.dumps(query.filter).decode()
            except TypeError:
                return  # e.g. an int beyond 64 bits: metadata could not have stored it
        fixed_args: list[Any] = []
        clauses: list[str] = []

        def pin(clause: str, value: Any) -> None:
            fixed_args.append(value)
            clauses.append(clause.replace("$?", f"${len(fixed_args)}"))

        if query.thread_id is not None:
            pin("c.thread_id = $?", query.thread_id)
        # With the namespace pinned, the checkpoint key orders by id and bounds the
        # scan; otherwise listing sorts by the key's parts.
        order_columns: list[str]
        if query.checkpoint_ns is not None:
            prefix = _checkpoint_prefix(query.checkpoint_ns)
            pin("c.key >= $?", prefix)
            pin("c.key < $?", _prefix_end(prefix))
            if query.checkpoint_id is not None:
                pin("c.key = $?", prefix + encode_ordered_id(query.checkpoint_id))
            if query.before is not None:
                pin("c.key < $?", prefix + encode_ordered_id(query.before))
            order_columns = ["c.key"]
        else:
            if query.checkpoint_id is not None:
                pin(f"{ORDER_BY_ID} = $?", encode_ordered_id(query.checkpoint_id))
            if query.before is not None:
                pin(f"{ORDER_BY_ID} < $?", encode_ordered_id(query.before))
            order_columns = [ORDER_BY_ID]
        if metadata_filter is not None:
            pin("c.metadata @> $?::jsonb", metadata_filter)
        # Keyset pagination on the sort key, minus the columns the query pins.
        if query.thread_id is None:
            order_columns.append("c.thread_id")
        if query.checkpoint_ns is None:
            order_columns.append(ORDER_BY_NS)
        first = len(fixed_args) + 1
        marks = ", ".join(f"${first + i}" for i in range(len(order_columns)))
        cursor_clause = f"({', '.join(order_columns)}) < ({marks})"
        limit_mark = f"${first + len(order_columns)}"
        first_page = self._statements.page(clauses, order_columns, f"${first}")
        next_page = self._statements.page([*clauses, cursor_clause], order_columns, limit_mark)

        cursor: list[str | bytes] | None = None
        remaining = query.limit
        while remaining is None or remaining > 0:
            size = LIST_PAGE_SIZE if remaining is None else min(LIST_PAGE_SIZE, remaining)
            if cursor is None:
                statement, args = first_page, [*fixed_args, size]
            else:
                statement, args = next_page, [*fixed_args, *cursor, size]

            async def fetch(conn: Connection, statement: str = statement, args: list[Any] = args) -> list[Any]:
                return await _fetch_stored(conn, statement, args, "list")

            page = _stored_page(await self._run(fetch))
            for stored in page:
                yield stored
            if len(page) < size:
                return
            last = page[-1].record
            cursor = [_checkpoint_key(last.checkpoint_ns, last.checkpoint_id)]
            if query.checkpoint_ns is None:
                cursor = [encode_ordered_id(last.checkpoint_id)]
            if query.thread_id is None:
                cursor.append(last.thread_id)
            if query.checkpoint_ns is None:
                cursor.append(_checkpoint_prefix(last.checkpoint_ns)[1:])
            if remaining is not None:
                remaining -= len(page)

    async def checkpoint_heads(self, thread_id: str) -> list[CheckpointRecord]:
        if _any_unstorable((thread_id,)):
            return []
        statement = self._statements.heads

        async def fetch(conn: Connection) -> list[Any]:
            return list(await conn.fetch(statement, thread_id))

        return [_record(row) for row in await self._run(fetch)]

    async def list_thread_ids(self) -> list[str]:
        statement = self._statements.thread_ids

        async def fetch(conn: Connection) -> list[str]:
            return [row[0] for row in await conn.fetch(statement)]

        return await self._run(fetch)

    # -- deleting and copying ---------------------------------------------------------------

    async def _locked(self, conn: Connection, thread_ids: Sequence[str]) -> None:
        """Take the threads' exclusive locks in key order (no deadlock between deleters)."""
        keys = sorted({self._key(t) for t in thread_ids})
        await conn.execute(self._statements.lock_threads, keys)

    async def delete_thread(self, thread_id: str) -> None:
        if _any_unstorable((thread_id,)):
            return
        statement = self._statements.delete_thread

        async def delete(conn: Connection) -> None:
            async with conn.transaction():
                await self._locked(conn, [thread_id])
                await conn.execute(statement, thread_id)

        await self._run(delete)

    async def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        runs = [r for r in dict.fromkeys(run_ids) if "\x00" not in r]
        if not runs:
            return
        s = self._statements

        async def delete(conn: Connection) -> None:
            async with conn.transaction():
                threads = [row[0] for row in await conn.fetch(s.threads_of_runs, runs)]
                if threads:
                    await self._locked(conn, threads)
                    await conn.fetchval(s.delete_runs, threads, runs)

        await self._run(delete)

    async def retain(self, thread_id: str, keep: Collection[tuple[str, str]]) -> None:
        if _any_unstorable((thread_id,)):
            return
        kept = [
            _checkpoint_key(ns, cid) for ns, cid in keep if not _any_unstorable((ns, cid))
        ]
        args = ([thread_id], kept)
        statement = self._statements.retain

        async def collect(conn: Connection) -> None:
            async with conn.transaction():
                await self._locked(conn, [thread_id])
                await conn.fetchval(statement, *args)

        await self._run(collect)

    async def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        if _any_unstorable((source_thread_id,)):
            return
        args = (source_thread_id, target_thread_id, self._key(target_thread_id))
        statement = self._statements.copy_thread

        async def copy(conn: Connection) -> None:
            await conn.execute(statement, *args)

        try:
            await self._run(copy)
        except asyncpg.ProgramLimitExceededError as exc:
            raise _too_long("copy_thread", exc, [("target thread id", target_thread_id)]) from None


class _Statements:
    """Every statement, qualified with one schema once, so each call reuses the same
    text (and so the same prepared statement on each connection)."""

    def __init__(self, quoted_schema: str, *, synchronous_commit: bool = True) -> None:
        self._schema = quoted_schema
        commit_mode = "" if synchronous_commit else RELAXED_COMMIT

        def bind(statement: str) -> str:
            return _qualify(statement, quoted_schema).replace("{commit_mode}", commit_mode)

        self.create_schema = bind(CREATE_SCHEMA)
        self.migrations_table = bind(MIGRATIONS_TABLE_DDL)
        self.schema_version = bind(SELECT_SCHEMA_VERSION)
        self.insert_version = bind(INSERT_SCHEMA_VERSION)
        self.drop_schema = bind(DROP_SCHEMA)
        self.drop_tables = bind(DROP_TABLES)
        self.put_checkpoint = bind(PUT_CHECKPOINT)
        self.put_writes_keep = bind(PUT_WRITES_KEEP)
        self.put_writes_replace = bind(PUT_WRITES_REPLACE)
        self.heads = bind(SELECT_HEADS)
        self.thread_ids = bind(SELECT_THREAD_IDS)
        self.threads_of_runs = bind(SELECT_THREADS_OF_RUNS)
        self.retain = bind(RETAIN)
        self.delete_runs = bind(DELETE_RUNS)
        self.delete_thread = bind(DELETE_THREAD)
        self.copy_thread = bind(COPY_THREAD)
        self.lock_threads = bind(LOCK_THREADS)
        self._pages: dict[tuple[tuple[str, ...], tuple[str, ...], str], str] = {}
        self.get_latest = self.page(
            ["c.thread_id = $1", "c.key >= $2", "c.key < $3"], ["c.key"], "1"
        )
        self.get_by_id = self.page(["c.thread_id = $1", "c.key = $2"], ["c.key"], "1")

    def page(self, clauses: Sequence[str], order_columns: Sequence[str], limit: str) -> str:
        """READ_CHECKPOINTS for one shape of query (clauses are fixed fragments with
        numbered parameters; no user text is ever spliced in)."""
        key = (tuple(clauses), tuple(order_columns), limit)
        statement = self._pages.get(key)
        if statement is None:
            order = ", ".join(f"{column} DESC" for column in order_columns)
            statement = _qualify(
                READ_CHECKPOINTS.replace("{where}", " AND ".join(clauses) or "true")
                .replace("{order}", order)
                .replace("{limit}", limit),
                self._schema,
            )
            self._pages[key] = statement
        return statement


# -- the saver ------------------------------------------------------------------------------


class PostgresSaver(UnifiedCheckpointSaver):
    """A LangGraph checkpointer on PostgreSQL (asyncpg), for sync and async graphs.

    ``PostgresSaver("postgresql://user@host/db")`` (or ``PostgresSaver.from_conn_string``)
    opens a connection pool per event loop on first use: one for the async API on your
    loop, one for the blocking API on the saver's private I/O loop. Calls from different
    threads or tasks run side by side on the pool; there is no saver-wide lock. Use it with
    ``with`` / ``async with`` (setup on entry, pools closed on exit), or call ``close()``.

    Options:

    - ``schema``: the PostgreSQL schema for the tables (created if missing), so several
      applications can share one database. Tables are named ``lus_*``, so even "public"
      never collides with LangGraph's own saver.
    - ``prepared_statements=False`` for PgBouncer (or any pooler) in *transaction* or
      *statement* pooling mode, which cannot keep named prepared statements: it sets
      asyncpg's ``statement_cache_size=0``. Listing pages by key and every lock is
      transaction-scoped, so nothing else needs a session. Pass ``server_settings`` only
      if the pooler accepts them (PgBouncer: ``ignore_startup_parameters``).
    - ``min_size``, ``max_size``, ``max_queries``, ``max_inactive_connection_lifetime``:
      each pool's size and recycling (asyncpg pool options).
    - ``connect_timeout`` (seconds to open a connection) and ``command_timeout`` (seconds
      per statement, None for no limit): a call that cannot reach the server raises
      ``BackendUnavailableError`` within them. A connection the server dropped (restart,
      ``pg_terminate_backend``, failover) is replaced and the call retried.
    - ``synchronous_commit=False`` makes each write commit without waiting for its WAL
      flush (PostgreSQL's ``synchronous_commit = off``, for this saver's transactions
      only): writes get several times faster where a disk flush is slow, and a *server*
      crash may lose the last fraction of a second of checkpoints (never corrupting
      anything). The default keeps every returned write durable.
    - ``ssl`` and any other ``asyncpg.connect`` option (``password``, ``server_settings``,
      ``direct_tls``, ...) as keyword arguments; ``sslmode`` in the URL works too.
    - ``serde`` / ``encryption_key`` / ``close_timeout`` / ``read_limits``: as for every saver of this library.

    Built from an existing ``asyncpg.Pool`` instead, the saver uses only that pool, which
    stays yours to close, with the pool's own timeouts. A pool belongs to the event loop
    that made it: async calls on that loop use it directly; calls made elsewhere (the
    blocking API from a worker thread, another thread's loop) are handed to that loop, so
    it must be running. A blocking call on the pool's own loop thread is refused, as it
    would stall the loop. For a blocking-only program, pass a connection string.

    Errors name the host, database and user, never the password.
    """

    backend: PostgresBackend

    def __init__(
        self,
        conn: str | Any,
        *,
        schema: str = DEFAULT_SCHEMA,
        prepared_statements: bool = True,
        min_size: int | None = None,
        max_size: int | None = None,
        max_queries: int | None = None,
        max_inactive_connection_lifetime: float | None = None,
        connect_timeout: float | None = None,
        command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
        synchronous_commit: bool = True,
        ssl: Any = None,
        serde: SerializerProtocol | None = None,
        encryption_key: bytes | str | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        read_limits: ReadLimits | None = None,
        **connect_options: Any,
    ) -> None:
        if asyncpg is None:
            raise missing_extra("postgres", "asyncpg")
        given = {
            "prepared_statements": None if prepared_statements else False,
            "min_size": min_size,
            "max_size": max_size,
            "max_queries": max_queries,
            "max_inactive_connection_lifetime": max_inactive_connection_lifetime,
            "connect_timeout": connect_timeout,
            "ssl": ssl,
            **connect_options,
        }
        if command_timeout != DEFAULT_COMMAND_TIMEOUT:
            given["command_timeout"] = command_timeout
        if isinstance(conn, asyncpg.Pool):
            set_here = sorted(k for k, v in given.items() if v is not None)
            if set_here:
                raise InvalidConfigError(
                    f"{', '.join(set_here)} configure pools this saver makes; a saver built "
                    "on an existing asyncpg.Pool uses that pool's own settings"
                )
        if ssl is not None:
            connect_options["ssl"] = ssl
        # None means "the backend's default" (registry), so that a pool can be told apart.
        pool_options = {
            name: given[name]
            for name in (
                "min_size", "max_size", "max_queries", "max_inactive_connection_lifetime",
                "connect_timeout",
            )
            if given[name] is not None
        }
        backend = PostgresBackend(
            conn,
            schema=schema,
            prepared_statements=prepared_statements,
            command_timeout=command_timeout,
            synchronous_commit=synchronous_commit,
            connect_options=connect_options,
            **pool_options,
        )
        super().__init__(
            backend,
            serde=serde,
            encryption_key=encryption_key,
            close_timeout=close_timeout,
            read_limits=read_limits,
        )

    @classmethod
    def from_conn_string(cls, conn_string: str, **options: Any) -> PostgresSaver:
        """A saver on ``conn_string``; enter it with ``with`` or ``async with``."""
        return cls(conn_string, **options)
