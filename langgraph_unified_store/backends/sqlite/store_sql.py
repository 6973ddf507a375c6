"""Every statement of the SQLite memory store and node cache, written out in full.

Tables (migration 4 in ``migrations.py``): ``memory_items`` ((namespace text, key) -> a
JSON object, times, ttl, expiry), ``memory_vectors`` (one little-endian float64 vector
per indexed path of an item), ``memory_vector_copies`` (migration 5: the float32 copy
of each at unit length, which sqlite-vec ranks on) and ``node_cache``. User strings (namespaces, keys, filter
keys and values) are always bound parameters: a filter key is compared with
``json_each``'s ``key`` column, never spliced into a JSON path (the official SqliteStore's
CVE-2025-8709 and CVE-2025-64104 were exactly that). A statement with ``{where}`` takes
a conjunction of the ``SEARCH_*`` / ``WALK_*`` conditions below, each fully bound, and
nothing else; ``range_condition`` composes the one family of conditions whose shape
depends on the filter (the depth of a field's path) from the two templates it uses.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

# -- items -----------------------------------------------------------------------------------

# The columns of an item row, in the order ``store._item`` reads them.
SELECT_ITEM: Final = """
SELECT namespace, key, value, created_at, updated_at, ttl, expires_at
FROM memory_items
WHERE namespace = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)"""
SELECT_VECTORS: Final = """
SELECT path, vector FROM memory_vectors WHERE namespace = ? AND key = ? ORDER BY path"""
# Takes now, then the item; only items with a ttl move.
REFRESH_ITEM: Final = """
UPDATE memory_items SET expires_at = ? + ttl
WHERE namespace = ? AND key = ? AND ttl IS NOT NULL"""

# Takes the row, then now: an item that is still live keeps its created_at.
UPSERT_ITEM: Final = """
INSERT INTO memory_items (namespace, key, value, created_at, updated_at, ttl, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (namespace, key) DO UPDATE SET
    value = excluded.value,
    created_at = CASE
        WHEN memory_items.expires_at IS NULL OR memory_items.expires_at > ?
        THEN memory_items.created_at ELSE excluded.created_at END,
    updated_at = excluded.updated_at,
    ttl = excluded.ttl,
    expires_at = excluded.expires_at"""
DELETE_ITEM: Final = "DELETE FROM memory_items WHERE namespace = ? AND key = ?"
DELETE_ITEM_VECTORS: Final = "DELETE FROM memory_vectors WHERE namespace = ? AND key = ?"
INSERT_VECTOR: Final = """
INSERT INTO memory_vectors (namespace, key, path, vector) VALUES (?, ?, ?, ?)"""
# Each vector's float32 copy at unit length (migration 5), kept in step with the vectors.
DELETE_ITEM_VECTOR_COPIES: Final = "DELETE FROM memory_vector_copies WHERE namespace = ? AND key = ?"
INSERT_VECTOR_COPY: Final = """
INSERT INTO memory_vector_copies (namespace, key, path, vector) VALUES (?, ?, ?, ?)"""

# A search: newest first, then namespace text, then key (core.store_rules.unranked_order);
# LIMIT -1 is none.
SELECT_ITEMS_PAGE: Final = """
SELECT namespace, key, value, created_at, updated_at, ttl, expires_at
FROM memory_items AS m
WHERE {where}
ORDER BY updated_at DESC, namespace, key
LIMIT ? OFFSET ?"""
# The same page read down ``memory_items_by_update`` (newest first, the key columns after
# updated_at in it), stopping once the page is full instead of sorting every candidate.
# ``u`` walks the index alone (``WALK_PREFIX`` is checked on it, so an item outside the
# prefix costs no table read); ``m`` is the item, read by primary key only for the rest.
SELECT_ITEMS_WALK: Final = """
SELECT m.namespace, m.key, m.value, m.created_at, m.updated_at, m.ttl, m.expires_at
FROM memory_items AS u INDEXED BY memory_items_by_update
CROSS JOIN memory_items AS m ON m.namespace = u.namespace AND m.key = u.key
WHERE {where}
ORDER BY u.updated_at DESC, u.namespace, u.key
LIMIT ? OFFSET ?"""
# How many items (live or not) are under a prefix, counted up to a cap (the last
# parameter): a small prefix is read whole by primary key and sorted, a large one walked.
COUNT_PREFIX_ITEMS: Final = """
SELECT count(*) FROM (
    SELECT 1 FROM memory_items AS m
    WHERE m.namespace = ? OR (m.namespace >= ? AND m.namespace < ?)
    LIMIT ?)"""
# The first item whose value SQLite's JSON functions cannot read (a search's json_each
# failed on it): malformed, or nested deeper than SQLite's limit.
SELECT_UNREADABLE_ITEM: Final = """
SELECT namespace, key FROM memory_items WHERE NOT json_valid(value) LIMIT 1"""
# Distinct namespaces holding a live item, in namespace-text order.
SELECT_NAMESPACES: Final = """
SELECT DISTINCT namespace FROM memory_items AS m WHERE {where} ORDER BY namespace"""
# Takes now.
SEARCH_LIVE: Final = "(m.expires_at IS NULL OR m.expires_at > ?)"
# Takes the prefix text, then the range [low, high) of namespaces strictly under it
# (core.store_rules.prefix_range): two ranges of the primary key, never LIKE.
SEARCH_PREFIX: Final = "(m.namespace = ? OR (m.namespace >= ? AND m.namespace < ?))"
# SEARCH_PREFIX on the walked index entry (SELECT_ITEMS_WALK's ``u``).
WALK_PREFIX: Final = "(u.namespace = ? OR (u.namespace >= ? AND u.namespace < ?))"
# JSON-typed equality of one top-level key to a string: the key, then the string.
SEARCH_EQUALS: Final = (
    "EXISTS (SELECT 1 FROM json_each(m.value) AS j"
    " WHERE j.key = ? AND j.type = 'text' AND j.value = ?)"
)
# A cheap test that runs before SEARCH_EQUALS parses the value: takes the wanted string
# as JSON (orjson's encoding, the one every stored value was written with). A value
# holding that string holds its encoding, unless it spells something with an escape
# sequence, and then it holds a backslash: the test keeps both, so it never drops a match.
SEARCH_TEXT_SEEN: Final = "(instr(m.value, ?) > 0 OR instr(m.value, '\\') > 0)"

# A NumberRange hint (core.store_rules): the value at a path of object keys is a string,
# a boolean, or a number in [low, high]. One ``json_each`` per level of the path, each
# level's key bound and compared (a level that is not an object gives json_each NULL,
# so no rows); then the leaf test on the last level. Takes each key of the path, then
# low and high (-inf / inf for an open end).
RANGE_FIRST_LEVEL: Final = "json_each(m.value) AS j1"
RANGE_NEXT_LEVEL: Final = (
    " JOIN json_each(CASE j{outer}.type WHEN 'object' THEN j{outer}.value END) AS j{inner}"
)
RANGE_CONDITION: Final = (
    "EXISTS (SELECT 1 FROM {levels} WHERE {keys}"
    " AND (j{leaf}.type IN ('text', 'true', 'false')"
    " OR (j{leaf}.type IN ('integer', 'real') AND j{leaf}.value BETWEEN ? AND ?)))"
)
RANGE_LEVEL_KEY: Final = "j{level}.key = ?"


@lru_cache(maxsize=64)
def range_condition(depth: int) -> str:
    """The range condition for a path of ``depth`` keys: built only from the templates
    above and level numbers, so its shape depends on nothing but ``depth``."""
    if depth < 1:
        raise ValueError(f"a range path has at least one key, not {depth}")
    levels = RANGE_FIRST_LEVEL + "".join(
        RANGE_NEXT_LEVEL.format(outer=level - 1, inner=level) for level in range(2, depth + 1)
    )
    keys = " AND ".join(RANGE_LEVEL_KEY.format(level=level) for level in range(1, depth + 1))
    return RANGE_CONDITION.format(levels=levels, keys=keys, leaf=depth)


# -- vector search with sqlite-vec (backends.sqlite.vectors) ------------------------------

# The items with vectors, by their best (max-pooled) float32 cosine distance to the query;
# a zero vector scores 0 (distance 1), as in core.store_rules.cosine_scores. Takes the
# query's float32 copy, the {where} conditions' parameters, then how many. CROSS JOIN
# keeps the copies the outer loop (twice as fast as the planner's choice of the items
# first): a scan of the small rows, or of a prefix's range of their key
# (SEARCH_VECTOR_PREFIX), each row's item found by its primary key.
RANK_VECTOR_CANDIDATES: Final = """
SELECT v.namespace, v.key, min(coalesce(vec_distance_cosine(v.vector, ?), 1.0)) AS distance
FROM memory_vector_copies AS v CROSS JOIN memory_items AS m ON m.namespace = v.namespace AND m.key = v.key
WHERE {where}
GROUP BY v.namespace, v.key
ORDER BY distance
LIMIT ?"""
# SEARCH_PREFIX on the copies' namespace (the item's, by the join).
SEARCH_VECTOR_PREFIX: Final = "(v.namespace = ? OR (v.namespace >= ? AND v.namespace < ?))"
# An item without vectors (ranked after the scored ones).
SEARCH_NO_VECTORS: Final = (
    "NOT EXISTS (SELECT 1 FROM memory_vectors AS v WHERE v.namespace = m.namespace AND v.key = m.key)"
)
# A float32 copy that is not the query's size, for the error: takes that size in bytes.
SELECT_MISSIZED_VECTOR: Final = """
SELECT namespace, key, path, length(vector) FROM memory_vector_copies WHERE length(vector) != ? LIMIT 1"""

# Takes now; the vectors (and their copies) of expired items first, then the items (their count is the sweep's).
SWEEP_VECTORS: Final = """
DELETE FROM memory_vectors WHERE (namespace, key) IN (
    SELECT namespace, key FROM memory_items WHERE expires_at <= ?)"""
SWEEP_VECTOR_COPIES: Final = """
DELETE FROM memory_vector_copies WHERE (namespace, key) IN (
    SELECT namespace, key FROM memory_items WHERE expires_at <= ?)"""
SWEEP_ITEMS: Final = "DELETE FROM memory_items WHERE expires_at <= ?"

# -- the node cache --------------------------------------------------------------------------

SELECT_CACHE_ENTRY: Final = """
SELECT type, data, expires_at FROM node_cache
WHERE namespace = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)"""
UPSERT_CACHE_ENTRY: Final = """
INSERT OR REPLACE INTO node_cache (namespace, key, type, data, expires_at) VALUES (?, ?, ?, ?, ?)"""
DELETE_CACHE_NAMESPACE: Final = "DELETE FROM node_cache WHERE namespace = ?"
# Expired entries go with each set (BaseCache has no sweep); the partial index finds them.
DELETE_EXPIRED_CACHE: Final = "DELETE FROM node_cache WHERE expires_at <= ?"
DELETE_CACHE: Final = "DELETE FROM node_cache"
