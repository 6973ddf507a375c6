"""Every statement PostgresStoreBackend runs (the memory store and the node cache),
written out in full; the tables are ``migrations.MIGRATION_4``, the write function and the
search-order index ``MIGRATION_5``.

``{schema}`` (and ``{commit_mode}`` in the writes) are filled once per backend by
``sql.bind``, as for the saver. Searches and namespace listings have a few shapes (a
prefix or not, an equality filter or not, how many number ranges, refreshing or not, with
vectors or not):
``StoreStatements`` builds each from the fixed fragments below, once, numbering their
``$?`` parameters in order after ``$1`` (now, in every read). No user text is ever
spliced in: namespaces, keys, the filter's JSON (orjson, from ``ItemSearch.filter.equals``),
range paths and bounds all travel as bound parameters.

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

# A write is ONE statement, one round trip: the call of ``lus_write_items``
# (``migrations.MIGRATION_5``), which takes the exclusive advisory lock of every key it
# touches ($1: ``keys.lock_key`` of each key, taken in ascending order, so writers never
# deadlock), then writes with a snapshot taken after the locks, so it sees every earlier
# write of those keys committed. Without that, a put waiting for another's row lock would
# delete stale vectors as its older snapshot saw them, keeping the other put's; and
# deletes and puts of concurrent batches could interleave in no serial order. The write:
# the deletes ($2, $3), the puts ($4-$10: an upsert that keeps created_at of a live item,
# $11 being now), the put items' vectors no longer indexed, and the new vectors ($12-$15,
# upserted). The core never both puts and deletes one key in a call, and the backend sends
# each key once, so no row is touched twice. A put's vectors land after its item (the
# foreign key is checked at the end of the statement); a deleted item's vectors go with it
# (ON DELETE CASCADE).
WRITE_ITEMS: Final = """
SELECT {schema}.lus_write_items($1::bigint[], $2::text[], $3::text[], $4::text[],
    $5::text[], $6::text[], $7::float8[], $8::float8[], $9::float8[], $10::float8[],
    $11::float8, $12::text[], $13::text[], $14::text[], $15::bytea[]){commit_mode}"""

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
# A number range the core hints at (``store_rules.NumberRange``): keep the items whose
# value at the path (a text[] parameter, sent once per use: path, path, low, path, high)
# is a string or a boolean, or a number within [low, high] (NULL: unbounded). Numbers are
# compared as numeric, as jsonb holds them (a stored 1e400 never overflows a float8), and
# only after jsonb_typeof said number (CASE: no cast runs on anything else). The rows
# stay a superset of the matches: the core decides.
RANGE_CLAUSE: Final = """CASE jsonb_typeof(i.value #> $?::text[])
        WHEN 'number' THEN
            coalesce((i.value #> $?::text[])::numeric >= $?::float8::numeric, true)
            AND coalesce((i.value #> $?::text[])::numeric <= $?::float8::numeric, true)
        WHEN 'string' THEN true
        WHEN 'boolean' THEN true
        ELSE false
    END"""

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

# SEARCH_ITEMS decided at run time, for a search without an equality filter (which the GIN
# index answers best): a generic plan cannot know whether the prefix holds a few items (a
# primary key range, then a sort, is best) or most of the store (walking
# lus_memory_items_by_update newest first and stopping after the page is best). So walk
# the newest $2 items first, keeping the first $3 that match (offset + limit); if that
# many did, they are the first matches of the whole search and the answer comes from them
# (the walk's subquery is already in search order, so no sort runs over the store);
# otherwise (walk_done is false) the other branch runs SEARCH_ITEMS' own query. Each
# branch sits behind a one-time filter, so only one of them reads the table.
# Parameters: now, walk rows, {where}'s, offset + limit twice, limit, offset, {where}'s
# again, limit, offset.
SEARCH_WALKED: Final = """
WITH walked AS MATERIALIZED (
    SELECT i.namespace, i.key, i.value, i.created_at, i.updated_at, i.ttl, i.expires_at
    FROM (
        SELECT n.namespace, n.key, n.value, n.created_at, n.updated_at, n.ttl, n.expires_at
        FROM {schema}.lus_memory_items n
        ORDER BY n.updated_at DESC, n.namespace, n.key
        LIMIT $?::bigint
    ) i
    WHERE {where}
    ORDER BY i.updated_at DESC, i.namespace, i.key
    LIMIT $?::bigint
), walk_done AS MATERIALIZED (
    SELECT count(*) >= $?::bigint AS done FROM walked
), found AS (
    (SELECT w.namespace, w.key, w.value, w.created_at, w.updated_at, w.ttl, w.expires_at
    FROM walked w
    WHERE (SELECT d.done FROM walk_done d)
    ORDER BY w.updated_at DESC, w.namespace, w.key
    LIMIT $?::bigint OFFSET $?::bigint)
    UNION ALL
    (SELECT i.namespace, i.key, i.value, i.created_at, i.updated_at, i.ttl, i.expires_at
    FROM {schema}.lus_memory_items i
    WHERE NOT (SELECT d.done FROM walk_done d) AND {where}
    ORDER BY i.updated_at DESC, i.namespace, i.key
    LIMIT $?::bigint OFFSET $?::bigint)
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
        self.write_items = bound(WRITE_ITEMS)
        self.sweep_items = bound(SWEEP_ITEMS)
        self.cache_get = bound(CACHE_GET)
        self.cache_set = bound(CACHE_SET)
        self.cache_clear = bound(CACHE_CLEAR)
        self.cache_clear_all = bound(CACHE_CLEAR_ALL)
        self._shapes: dict[tuple[str, bool, bool, int, bool, bool], str] = {}

    def _read(
        self, shape: tuple[str, bool, bool, int, bool, bool], template: str, clauses: Sequence[str]
    ) -> str:
        """``template`` with the shape's clauses, numbered and bound (once per shape)."""
        statement = self._shapes.get(shape)
        if statement is None:
            _, _, _, _, refresh, vectors = shape
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

    def search(
        self,
        *,
        prefix: bool,
        equals: bool,
        refresh: bool,
        vectors: bool,
        ranges: int = 0,
        walked: bool = False,
    ) -> str:
        """SEARCH_ITEMS (or SEARCH_WALKED); the filter's parameters ({where}'s): now,
        [prefix, low, high], [equals JSON], then per range path, path, low, path, high;
        then limit, offset (SEARCH_WALKED: see there)."""
        clauses = [ITEM_LIVE_CLAUSE]
        clauses += [PREFIX_CLAUSE] if prefix else []
        clauses += [EQUALS_CLAUSE] if equals else []
        clauses += [RANGE_CLAUSE] * ranges
        kind = "walked" if walked else "search"
        shape = (kind, prefix, equals, ranges, refresh, vectors)
        return self._read(shape, SEARCH_WALKED if walked else SEARCH_ITEMS, clauses)

    def get(self, *, refresh: bool) -> str:
        """GET_ITEMS, with vectors; parameters: now, namespaces, keys."""
        return self._read(("get", False, False, 0, refresh, True), GET_ITEMS, [ITEM_LIVE_CLAUSE])

    def namespaces(self, *, prefix: bool) -> str:
        """ITEM_NAMESPACES; parameters: now, [prefix, low, high]."""
        clauses = [ITEM_LIVE_CLAUSE, *([PREFIX_CLAUSE] if prefix else [])]
        shape = ("namespaces", prefix, False, 0, False, False)
        return self._read(shape, ITEM_NAMESPACES, clauses)
