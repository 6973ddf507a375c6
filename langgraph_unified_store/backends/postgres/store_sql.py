"""Every statement PostgresStoreBackend runs (the memory store and the node cache),
written out in full; the tables are ``migrations.MIGRATION_4``.

``{schema}`` (and ``{commit_mode}`` in the writes) are filled once per backend by
``sql.bind``, as for the saver. Searches and namespace listings have a few shapes (a
prefix or not, an equality filter or not, refreshing or not, with vectors or not):
``StoreStatements`` builds each from the fixed fragments below, once, numbering their
``$?`` parameters in order after ``$1`` (now, in every read). No user text is ever
spliced in: namespaces, keys, the filter's JSON (orjson, from ``ItemSearch.filter.equals``) all
travel as bound parameters.

Item times are the core's (``now``, epoch seconds); an item whose ``expires_at`` is at or
before ``now`` is invisible (ITEM_LIVE_CLAUSE) until a sweep deletes it. Vectors are
float64 little-endian bytes per (item, indexed path), deleted with their item by the
foreign key's ON DELETE CASCADE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .sql import bind

# -- writing --------------------------------------------------------------------------------

# A write is a transaction of two statements: LOCK_ITEMS takes the exclusive advisory lock
# of every key it touches (``keys.lock_key`` of the key, in ascending order, so writers
# never deadlock), then WRITE_ITEMS runs with a snapshot taken after the locks, so it sees
# every earlier write of those keys committed. Without that, a put waiting for another's
# row lock would delete stale vectors as its older snapshot saw them, keeping the other
# put's; and deletes and puts of concurrent batches could interleave in no serial order.
LOCK_ITEMS: Final = (
    "SELECT pg_advisory_xact_lock(k){commit_mode} FROM unnest($1::bigint[]) AS k"
)

# One statement: the deletes ($1, $2), the puts ($3-$9: an
# upsert that keeps created_at of a live item, $10 being now), the put items' vectors no
# longer indexed, and the new vectors ($11-$14, upserted). The core never both puts and
# deletes one key in a call, and the backend sends each key once, so no row is touched
# twice. A put's vectors land after its item (the foreign key is checked at the end of
# the statement); a deleted item's vectors go with it (ON DELETE CASCADE).
WRITE_ITEMS: Final = """
WITH gone AS (
    DELETE FROM {schema}.lus_memory_items i
    USING unnest($1::text[], $2::text[]) AS d(namespace, key)
    WHERE i.namespace = d.namespace AND i.key = d.key
    RETURNING 1
), put AS (
    INSERT INTO {schema}.lus_memory_items AS i
        (namespace, key, value, created_at, updated_at, ttl, expires_at)
    SELECT p.namespace, p.key, p.value::jsonb, p.created_at, p.updated_at, p.ttl, p.expires_at
    FROM unnest($3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::float8[],
        $9::float8[]) AS p(namespace, key, value, created_at, updated_at, ttl, expires_at)
    ON CONFLICT (namespace, key) DO UPDATE SET
        value = excluded.value,
        created_at = CASE WHEN i.expires_at IS NULL OR i.expires_at > $10::float8
            THEN i.created_at ELSE excluded.created_at END,
        updated_at = excluded.updated_at,
        ttl = excluded.ttl,
        expires_at = excluded.expires_at
    RETURNING 1
), stale AS (
    DELETE FROM {schema}.lus_memory_vectors v
    USING unnest($3::text[], $4::text[]) AS p(namespace, key)
    WHERE v.namespace = p.namespace AND v.key = p.key
        AND NOT EXISTS (
            SELECT 1 FROM unnest($11::text[], $12::text[], $13::text[]) AS n(namespace, key, path)
            WHERE n.namespace = v.namespace AND n.key = v.key AND n.path = v.path)
    RETURNING 1
), indexed AS (
    INSERT INTO {schema}.lus_memory_vectors AS v (namespace, key, path, vector)
    SELECT n.namespace, n.key, n.path, n.vector
    FROM unnest($11::text[], $12::text[], $13::text[], $14::bytea[])
        AS n(namespace, key, path, vector)
    ON CONFLICT (namespace, key, path) DO UPDATE SET vector = excluded.vector
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM put), (SELECT count(*) FROM stale),
    (SELECT count(*) FROM indexed)"""

# Expired items (through lus_memory_items_by_expiry), and their vectors by cascade.
SWEEP_ITEMS: Final = """
WITH gone AS (
    DELETE FROM {schema}.lus_memory_items WHERE expires_at <= $1::float8 RETURNING 1
)
SELECT count(*) FROM gone"""

# -- reading --------------------------------------------------------------------------------

# ``$1`` is now in every read; the other parameters are numbered by shape.
ITEM_LIVE_CLAUSE: Final = "(i.expires_at IS NULL OR i.expires_at > $1::float8)"
# A prefix (``store_rules.prefix_range``): the namespace itself, or one strictly under it
# (the half-open range of texts after its separator); a primary key range scan, never LIKE.
PREFIX_CLAUSE: Final = (
    "(i.namespace = $?::text OR (i.namespace >= $?::text AND i.namespace < $?::text))"
)
# The exact part of a filter: top-level keys equal to these strings (jsonb containment,
# through lus_memory_items_value_idx).
EQUALS_CLAUSE: Final = "i.value @> $?::jsonb"

# ``{where}``: ITEM_LIVE_CLAUSE and the shape's clauses; ``{refresh}`` empty or
# REFRESH_FOUND; ``{expires}``, ``{vectors}``, ``{joins}`` the matching columns and joins.
SEARCH_ITEMS: Final = """
WITH found AS (
    SELECT i.namespace, i.key, i.value, i.created_at, i.updated_at, i.ttl, i.expires_at
    FROM {schema}.lus_memory_items i
    WHERE {where}
    ORDER BY i.updated_at DESC, i.namespace, i.key
    LIMIT $?::bigint OFFSET $?::bigint
){refresh}
SELECT f.namespace, f.key, f.value::text, f.created_at, f.updated_at, f.ttl, {expires}, {vectors}
FROM found f{joins}
ORDER BY f.updated_at DESC, f.namespace, f.key"""

# ``{where}``: ITEM_LIVE_CLAUSE and the requested keys; the same tail as SEARCH_ITEMS.
# ``n`` is each key's position in the request (a key asked twice comes back twice).
GET_ITEMS: Final = """
WITH found AS (
    SELECT a.n, i.namespace, i.key, i.value, i.created_at, i.updated_at, i.ttl, i.expires_at
    FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS a(namespace, key, n)
    JOIN {schema}.lus_memory_items i ON i.namespace = a.namespace AND i.key = a.key
    WHERE {where}
){refresh}
SELECT f.namespace, f.key, f.value::text, f.created_at, f.updated_at, f.ttl, {expires}, {vectors},
    f.n
FROM found f{joins}"""

# With ``refresh``: the found items with a ttl expire ttl seconds from now ($1);
# RETURNING gives the new expiry to the outer SELECT. Rows are updated in key order, as
# writes lock them.
REFRESH_FOUND: Final = """, touched AS (
    UPDATE {schema}.lus_memory_items i SET expires_at = $1::float8 + i.ttl
    FROM (SELECT DISTINCT namespace, key FROM found ORDER BY namespace, key) f
    WHERE i.namespace = f.namespace AND i.key = f.key AND i.ttl IS NOT NULL
    RETURNING i.namespace, i.key, i.expires_at
)"""
REFRESH_JOIN: Final = """
LEFT JOIN touched t ON t.namespace = f.namespace AND t.key = f.key"""
REFRESHED_EXPIRY: Final = "coalesce(t.expires_at, f.expires_at)"
STORED_EXPIRY: Final = "f.expires_at"
# An item's vectors as two arrays in path order (NULL when it has none).
VECTORS_JOIN: Final = """
LEFT JOIN LATERAL (
    SELECT array_agg(v.path ORDER BY v.path) AS paths,
        array_agg(v.vector ORDER BY v.path) AS vectors
    FROM {schema}.lus_memory_vectors v
    WHERE v.namespace = f.namespace AND v.key = f.key
) v ON true"""
VECTOR_COLUMNS: Final = "v.paths, v.vectors"
NO_VECTOR_COLUMNS: Final = "NULL::text[], NULL::bytea[]"

# Every namespace holding a live item (``{where}``: ITEM_LIVE_CLAUSE and maybe
# PREFIX_CLAUSE), in text order (the primary key's).
ITEM_NAMESPACES: Final = """
SELECT DISTINCT i.namespace FROM {schema}.lus_memory_items i
WHERE {where}
ORDER BY i.namespace"""

# -- the node cache -------------------------------------------------------------------------

CACHE_GET: Final = """
SELECT a.n, c.type, c.data, c.expires_at
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS a(namespace, key, n)
JOIN {schema}.lus_node_cache c ON c.namespace = a.namespace AND c.key = a.key
WHERE c.expires_at IS NULL OR c.expires_at > $3::float8"""
# Entries expired at $6 go with each set (BaseCache has no sweep), except the keys this
# set writes (one statement may not delete and upsert the same row).
CACHE_SET: Final = """
WITH purged AS (
    DELETE FROM {schema}.lus_node_cache AS old
    WHERE old.expires_at <= $6::float8
      AND NOT EXISTS (
          SELECT 1 FROM unnest($1::text[], $2::text[]) AS given(namespace, key)
          WHERE given.namespace = old.namespace AND given.key = old.key)
), stored AS (
    INSERT INTO {schema}.lus_node_cache AS c (namespace, key, type, data, expires_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::float8[])
    ON CONFLICT (namespace, key) DO UPDATE SET
        type = excluded.type, data = excluded.data, expires_at = excluded.expires_at
    RETURNING 1
)
SELECT count(*){commit_mode} FROM stored"""
CACHE_CLEAR: Final = "DELETE FROM {schema}.lus_node_cache WHERE namespace = ANY($1::text[])"
CACHE_CLEAR_ALL: Final = "DELETE FROM {schema}.lus_node_cache"


def numbered(statement: str, first: int) -> str:
    """``statement`` with each ``$?`` replaced by the next parameter number."""
    parts = statement.split("$?")
    out = [parts[0]]
    for number, part in enumerate(parts[1:], first):
        out.append(f"${number}{part}")
    return "".join(out)


class StoreStatements:
    """Every store and cache statement, bound to one backend's schema once; the
    search, get and namespace shapes built on first use, then reused (the same text,
    so the same prepared statement on each connection)."""

    def __init__(self, quoted_schema: str, *, synchronous_commit: bool = True) -> None:
        def bound(statement: str) -> str:
            return bind(statement, quoted_schema, synchronous_commit=synchronous_commit)

        self._bound = bound
        self.lock_items = bound(LOCK_ITEMS)
        self.write_items = bound(WRITE_ITEMS)
        self.sweep_items = bound(SWEEP_ITEMS)
        self.cache_get = bound(CACHE_GET)
        self.cache_set = bound(CACHE_SET)
        self.cache_clear = bound(CACHE_CLEAR)
        self.cache_clear_all = bound(CACHE_CLEAR_ALL)
        self._shapes: dict[tuple[str, bool, bool, bool, bool], str] = {}

    def _read(
        self, shape: tuple[str, bool, bool, bool, bool], template: str, clauses: Sequence[str]
    ) -> str:
        statement = self._shapes.get(shape)
        if statement is None:
            _, _, _, refresh, vectors = shape
            joins = (REFRESH_JOIN if refresh else "") + (VECTORS_JOIN if vectors else "")
            filled = (
                template.replace("{where}", " AND ".join(clauses))
                .replace("{refresh}", REFRESH_FOUND if refresh else "")
                .replace("{expires}", REFRESHED_EXPIRY if refresh else STORED_EXPIRY)
                .replace("{vectors}", VECTOR_COLUMNS if vectors else NO_VECTOR_COLUMNS)
                .replace("{joins}", joins)
            )
            statement = self._shapes[shape] = self._bound(numbered(filled, 2))
        return statement

    def search(self, *, prefix: bool, equals: bool, refresh: bool, vectors: bool) -> str:
        """SEARCH_ITEMS; parameters: now, [prefix, low, high], [equals JSON], limit, offset."""
        clauses = [ITEM_LIVE_CLAUSE]
        clauses += [PREFIX_CLAUSE] if prefix else []
        clauses += [EQUALS_CLAUSE] if equals else []
        return self._read(("search", prefix, equals, refresh, vectors), SEARCH_ITEMS, clauses)

    def get(self, *, refresh: bool) -> str:
        """GET_ITEMS, with vectors; parameters: now, namespaces, keys."""
        return self._read(("get", False, False, refresh, True), GET_ITEMS, [ITEM_LIVE_CLAUSE])

    def namespaces(self, *, prefix: bool) -> str:
        """ITEM_NAMESPACES; parameters: now, [prefix, low, high]."""
        clauses = [ITEM_LIVE_CLAUSE, *([PREFIX_CLAUSE] if prefix else [])]
        return self._read(("namespaces", prefix, False, False, False), ITEM_NAMESPACES, clauses)
