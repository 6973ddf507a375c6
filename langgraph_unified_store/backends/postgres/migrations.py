"""The schema: its DDL, the versioned migrations table, and each migration step.

``migrate`` brings a schema to SCHEMA_VERSION, under a per-schema advisory lock so that
concurrent processes queue; every database, new or old, takes the same path through the
versions. ``quote_schema`` is the only way a schema name reaches SQL.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from ...core.observability import MIGRATED, emit
from ...core.records import WriteRecord
from ...core.rules import split_refs
from ...registry import postgres_schema
from .keys import (
    STORED_WRITES_TYPE,
    checkpoint_key,
    read_id,
    read_type,
    read_write_key,
    write_prefix,
)
from .rows import pack_writes
from .sql import bind

logger = logging.getLogger(__name__)

Connection = Any  # asyncpg.Connection (asyncpg ships no type hints)

# Class id of the two-int advisory lock that serializes migrations ("LUS").
MIGRATION_LOCK_CLASS: Final = 0x4C5553

# -- DDL (``{schema}`` is replaced by the quoted schema name, by ``sql.bind``) -----------------

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
# - every row has a compact binary ``key`` (the layouts are in ``keys.py``; SQL only ever
#   takes keys apart, never encodes ids).
# - a checkpoint row holds its parent's id() in ``refs`` and fills the last three
#   columns; channel_versions is json (kept as sent: 10% smaller than jsonb and only
#   ever read whole), metadata jsonb for the GIN-indexed filters. Eight columns keep the
#   null bitmap in the 24-byte row header.
# - a writes row is one ``put_writes`` call of one task (or one write, see
#   ``rows.write_rows``), packed by ``rows.pack_writes``; its key has the call's first index.
# - ``type`` holds the common serde type tags as one character (``keys.TYPE_CODES``); ``refs``
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

# Version 3: the data lifecycle (``core.lifecycle``), one row per thread: when it was
# first and last written (``ThreadClock.now()``, epoch seconds), its own ttl (NULL: the
# saver's; 0, ``lifecycle.PINNED``: never expires) and when it expires (NULL: never).
# Every write upserts the row in its own statement (``sql.PUT_CHECKPOINT``); sweeps find
# expired threads through lus_threads_by_expiry, age-based deletes through
# lus_threads_by_last_write, listings through the primary key (thread id order, byte-wise as
# lus_store's). Threads stored before this version get a row stamped with the migration's
# time and no expiry: they get one at their next write.
MIGRATION_3: Final = """
CREATE TABLE {schema}.lus_threads (
    thread_id text COLLATE "C" PRIMARY KEY,
    first_write double precision NOT NULL,
    last_write double precision NOT NULL,
    own_ttl double precision,
    expires_at double precision
);
CREATE INDEX lus_threads_by_last_write ON {schema}.lus_threads (last_write);
CREATE INDEX lus_threads_by_expiry ON {schema}.lus_threads (expires_at) WHERE expires_at IS NOT NULL;
INSERT INTO {schema}.lus_threads (thread_id, first_write, last_write)
    SELECT DISTINCT s.thread_id, extract(epoch FROM now()), extract(epoch FROM now())
    FROM {schema}.lus_store s;
"""

# Version 4: the long-term memory store and the node cache (``store.py``, statements in
# ``store_sql.py``), beside the checkpoints and untouched by them.
# - lus_memory_items: one row per item, the namespace as its labels joined by "." (labels
#   never hold one), so a namespace prefix is a primary key range (COLLATE "C": byte
#   order); the value jsonb for filters pushed down as containment (@>) through the GIN
#   index; the core's times (epoch seconds); expired rows found by the partial index.
# - lus_memory_vectors: one row per (item, indexed path), the embedding as float64
#   little-endian bytes (any dims), gone with its item (ON DELETE CASCADE).
# - lus_node_cache: LangGraph's node cache, (namespace, key) -> serde type and bytes.
MIGRATION_4: Final = """
CREATE TABLE {schema}.lus_memory_items (
    namespace text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    value jsonb NOT NULL,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    ttl double precision,
    expires_at double precision,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX lus_memory_items_value_idx ON {schema}.lus_memory_items
    USING gin (value jsonb_path_ops);
CREATE INDEX lus_memory_items_by_expiry ON {schema}.lus_memory_items (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE TABLE {schema}.lus_memory_vectors (
    namespace text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    path text COLLATE "C" NOT NULL,
    vector bytea NOT NULL,
    PRIMARY KEY (namespace, key, path),
    FOREIGN KEY (namespace, key) REFERENCES {schema}.lus_memory_items (namespace, key)
        ON DELETE CASCADE
);
CREATE TABLE {schema}.lus_node_cache (
    namespace text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    type text NOT NULL,
    data bytea NOT NULL,
    expires_at double precision,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX lus_node_cache_by_expiry ON {schema}.lus_node_cache (expires_at)
    WHERE expires_at IS NOT NULL;
"""

# Version 5: a store write in ONE round trip, and searches that walk the items newest first.
# - lus_write_items(...) is a store write (``store_sql.WRITE_ITEMS``, called by one
#   statement): it takes the exclusive advisory lock of every key it touches (ascending,
#   so writers never deadlock), then writes. The function is VOLATILE plpgsql, so in READ
#   COMMITTED its write statement takes a fresh snapshot after the locks are held: it sees
#   every earlier write of those keys committed, as the transaction of two statements it
#   replaces did (a put waiting for another's lock deletes exactly the vectors the other
#   left). It holds no session state, so PgBouncer's transaction pooling keeps working.
#   Its statements always run generic plans (planned once per connection): a custom plan
#   of the write costs more to make (~0.7 ms) than the write itself, and a session without
#   our pools' setting (behind PgBouncer, a given pool) would make one on every call.
# - lus_memory_items_by_update: the search order (updated_at newest first, namespace, key),
#   so a filtered search stops after its page instead of sorting every item.
# - the value's GIN index with a short pending list (64 kB, the least allowed, flushed
#   once here): with the default 4 MB a freshly filled store kept thousands of entries
#   there, which every equality search scanned linearly and which made the planner shun
#   the index for a full scan. A short list still batches the index's updates (a put
#   costs half what it does with no list at all, fastupdate off).
MIGRATION_5: Final = """
CREATE OR REPLACE FUNCTION {schema}.lus_write_items(
    lock_ids bigint[],
    gone_namespaces text[], gone_keys text[],
    put_namespaces text[], put_keys text[], put_values text[], put_created float8[],
    put_updated float8[], put_ttls float8[], put_expiries float8[], write_time float8,
    vector_namespaces text[], vector_keys text[], vector_paths text[], vector_data bytea[]
) RETURNS void LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $lus$
BEGIN
    PERFORM pg_advisory_xact_lock(l.id) FROM unnest(lock_ids) AS l(id) ORDER BY l.id;
    WITH gone AS (
        DELETE FROM {schema}.lus_memory_items i
        USING unnest(gone_namespaces, gone_keys) AS d(namespace, key)
        WHERE i.namespace = d.namespace AND i.key = d.key
    ), put AS (
        INSERT INTO {schema}.lus_memory_items AS i
            (namespace, key, value, created_at, updated_at, ttl, expires_at)
        SELECT p.namespace, p.key, p.value::jsonb, p.created_at, p.updated_at, p.ttl,
            p.expires_at
        FROM unnest(put_namespaces, put_keys, put_values, put_created, put_updated, put_ttls,
            put_expiries) AS p(namespace, key, value, created_at, updated_at, ttl, expires_at)
        ON CONFLICT (namespace, key) DO UPDATE SET
            value = excluded.value,
            created_at = CASE WHEN i.expires_at IS NULL OR i.expires_at > write_time
                THEN i.created_at ELSE excluded.created_at END,
            updated_at = excluded.updated_at,
            ttl = excluded.ttl,
            expires_at = excluded.expires_at
    ), stale AS (
        DELETE FROM {schema}.lus_memory_vectors v
        USING unnest(put_namespaces, put_keys) AS p(namespace, key)
        WHERE v.namespace = p.namespace AND v.key = p.key
            AND NOT EXISTS (
                SELECT 1 FROM unnest(vector_namespaces, vector_keys, vector_paths)
                    AS n(namespace, key, path)
                WHERE n.namespace = v.namespace AND n.key = v.key AND n.path = v.path)
    )
    INSERT INTO {schema}.lus_memory_vectors AS v (namespace, key, path, vector)
    SELECT n.namespace, n.key, n.path, n.vector
    FROM unnest(vector_namespaces, vector_keys, vector_paths, vector_data)
        AS n(namespace, key, path, vector)
    ON CONFLICT (namespace, key, path) DO UPDATE SET vector = excluded.vector;
END
$lus$;
CREATE INDEX lus_memory_items_by_update ON {schema}.lus_memory_items
    (updated_at DESC, namespace, key);
ALTER INDEX {schema}.lus_memory_items_value_idx SET (gin_pending_list_limit = 64);
SELECT gin_clean_pending_list('{schema}.lus_memory_items_value_idx'::regclass);
"""

DROP_SCHEMA: Final = "DROP SCHEMA IF EXISTS {schema} CASCADE"
DROP_TABLES: Final = """
DROP TABLE IF EXISTS {schema}.lus_store, {schema}.lus_threads, {schema}.lus_checkpoints,
    {schema}.lus_data, {schema}.lus_memory_vectors, {schema}.lus_memory_items,
    {schema}.lus_node_cache, {schema}.lus_migrations;
DROP FUNCTION IF EXISTS {schema}.lus_write_items"""



def quote_schema(schema: str) -> str:
    """The schema as a quoted identifier, after the registry's check that it is a plain
    one (``registry.postgres_schema``): the one way a schema name reaches SQL."""
    return f'"{postgres_schema("schema", schema)}"'


async def _migrate_to_v2(conn: Connection, quoted_schema: str) -> None:
    """Version 2: one table. Blobs and items are copied in SQL; checkpoints (whose keys
    now hold ordered ids) and writes (now packed) pass through here, in batches."""
    await conn.execute(bind(MIGRATION_2_CREATE, quoted_schema))
    insert = bind(INSERT_ROWS, quoted_schema)
    columns: list[list[Any]] = [[] for _ in range(8)]

    async def flush() -> None:
        if columns[0]:
            await conn.execute(insert, *columns)
            for column in columns:
                column.clear()

    def add(*row: Any) -> None:
        for column, value in zip(columns, row, strict=True):
            column.append(value)

    query = bind(SELECT_V1_CHECKPOINTS, quoted_schema)
    async for r in conn.cursor(query, prefetch=MIGRATION_BATCH):
        add(r[0], checkpoint_key(r[1], r[2]), r[4], r[5], r[3], r[6], r[7], r[8])
        if len(columns[0]) >= MIGRATION_BATCH:
            await flush()
    await flush()
    async for r in conn.cursor(bind(SELECT_V1_WRITES, quoted_schema), prefetch=MIGRATION_BATCH):
        thread_id, key, type_, data, refs, channel, task_path = r
        ns_end = key.index(0, 1)
        checkpoint_id, end = read_id(key, ns_end + 1)
        task_id, idx = read_write_key(key, end)
        write = WriteRecord(
            task_id, idx, channel, read_type(type_), data, task_path or "", split_refs(refs)
        )
        packed, packed_refs = pack_writes(write.task_path, [write])
        new_key = write_prefix(key[1:ns_end].decode(), checkpoint_id) + key[end:]
        add(thread_id, new_key, STORED_WRITES_TYPE, packed, packed_refs, None, None, None)
        if len(columns[0]) >= MIGRATION_BATCH:
            await flush()
    await flush()
    await conn.execute(bind(MIGRATION_2_DROP, quoted_schema))


Migration = str | Callable[[Connection, str], Awaitable[None]]
MIGRATIONS: Final[tuple[Migration, ...]] = (
    MIGRATION_1, _migrate_to_v2, MIGRATION_3, MIGRATION_4, MIGRATION_5
)
SCHEMA_VERSION: Final = len(MIGRATIONS)


async def migrate(conn: Connection, schema: str) -> None:
    """Create or upgrade ``schema`` to SCHEMA_VERSION (idempotent)."""
    quoted = quote_schema(schema)
    schema_version = bind(SELECT_SCHEMA_VERSION, quoted)
    if await conn.fetchval(SELECT_MIGRATIONS_TABLE, f"{quoted}.lus_migrations"):
        version = await conn.fetchval(schema_version)
        if version >= SCHEMA_VERSION:
            if version > SCHEMA_VERSION:
                logger.warning(
                    "schema %s is at version %s, newer than this library's %s",
                    schema, version, SCHEMA_VERSION,
                )
            return
    digest = hashlib.blake2b(schema.encode(), digest_size=4).digest()
    schema_key = int.from_bytes(digest, "big", signed=True)
    applied: list[tuple[int, float]] = []
    async with conn.transaction():
        await conn.execute(LOCK_MIGRATIONS, MIGRATION_LOCK_CLASS, schema_key)
        if not await conn.fetchval(SELECT_SCHEMA_EXISTS, schema):
            await conn.execute(bind(CREATE_SCHEMA, quoted))
        await conn.execute(bind(MIGRATIONS_TABLE_DDL, quoted))
        version = await conn.fetchval(schema_version)
        for number in range(version + 1, SCHEMA_VERSION + 1):
            started = time.perf_counter()
            step = MIGRATIONS[number - 1]
            if isinstance(step, str):
                await conn.execute(bind(step, quoted))
            else:
                await step(conn, quoted)
            await conn.execute(bind(INSERT_SCHEMA_VERSION, quoted), number)
            applied.append((number, round((time.perf_counter() - started) * 1000, 3)))
    # Told once committed: a migration rolled back was never applied.
    for number, duration_ms in applied:
        emit(MIGRATED, "postgres", schema=schema, version=number, duration_ms=duration_ms)


async def stored_version(conn: Connection, schema: str) -> int:
    """``schema``'s version, 0 before the first migration (or without the schema); only
    reads (a health check must create nothing)."""
    quoted = quote_schema(schema)
    if not await conn.fetchval(SELECT_MIGRATIONS_TABLE, f"{quoted}.lus_migrations"):
        return 0
    return int(await conn.fetchval(bind(SELECT_SCHEMA_VERSION, quoted)))


def drop_statement(schema: str) -> str:
    """What drops everything a saver stored: the schema, or in "public" just its tables."""
    return bind(DROP_TABLES if schema == "public" else DROP_SCHEMA, quote_schema(schema))
