"""The long-term memory store and the node cache on SQLite: the saver's database file,
connection machinery (``database.SQLiteFile``: WAL, ``busy_timeout``, ``BEGIN
IMMEDIATE`` writes, blocking calls on the caller's thread) and versioned migrations
(version 4 adds ``memory_items``, ``memory_vectors`` and ``node_cache``; version 5 a
float32 copy of each vector, which sqlite-vec ranks on: ``vectors``).

Each backend call is one plain sqlite3 function below, run whole in one transaction;
the rules are ``core.store_backend``'s, the statements ``store_sql``'s.
"""

from __future__ import annotations

import math
import sqlite3
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final

import orjson
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.store.base import IndexConfig, TTLConfig

from ...core.cache import UnifiedCache
from ...core.lifecycle import Clock
from ...core.store import OpenedOnConnection, UnifiedStore
from ...core.store_backend import (
    CacheBackend,
    CacheEntry,
    ItemKey,
    ItemSearch,
    StoreBackend,
    StoredItem,
)
from ...core.store_rules import decode_value, namespace_of, namespace_text, nul_at, prefix_range
from ...core.sync import BlockingMode
from ...errors import CorruptDataError, InvalidConfigError
from ...registry import DEFAULT_BUSY_TIMEOUT, DEFAULT_SYNCHRONOUS
from . import store_sql as sql
from .database import SQLiteFile
from .transaction import Transaction
from .vectors import connect as connect_with_vec
from .vectors import cosine_error_bound, has_vec, unit_float32

Row = tuple[Any, ...]

MIN_VECTOR_CANDIDATES = 32
"""The fewest items sqlite-vec hands the core's exact re-ranking."""


# -- vectors ---------------------------------------------------------------------------------


def pack_vector(vector: Sequence[float]) -> bytes:
    """A vector as stored: little-endian float64, whatever the machine."""
    return struct.pack(f"<{len(vector)}d", *vector)


def unpack_vector(data: bytes, where: str) -> list[float]:
    if len(data) % 8:
        raise CorruptDataError(f"{where}: a stored vector of {len(data)} bytes is not float64s")
    return list(struct.unpack(f"<{len(data) // 8}d", data))


# -- the operations (each a plain function of a sqlite3 connection, one transaction) ---------


def _item(row: Row) -> StoredItem:
    value = row[2]
    return StoredItem(
        namespace=namespace_of(row[0]),
        key=row[1],
        value=value.encode() if isinstance(value, str) else bytes(value),
        created_at=float(row[3]),
        updated_at=float(row[4]),
        ttl=None if row[5] is None else float(row[5]),
        expires_at=None if row[6] is None else float(row[6]),
    )


def _vectors(db: sqlite3.Connection, namespace: str, key: str) -> dict[str, list[float]] | None:
    rows = db.execute(sql.SELECT_VECTORS, (namespace, key)).fetchall()
    if not rows:
        return None
    return {path: unpack_vector(bytes(data), f"memory_vectors {namespace!r} / {key!r}") for path, data in rows}


def _refreshed(db: sqlite3.Connection, stored: StoredItem, now: float) -> None:
    if stored.ttl is not None:
        db.execute(sql.REFRESH_ITEM, (now, namespace_text(stored.namespace), stored.key))
        stored.expires_at = now + stored.ttl


def get_items(
    db: sqlite3.Connection, keys: Sequence[ItemKey], now: float, refresh: bool
) -> list[StoredItem | None]:
    found: list[StoredItem | None] = []
    with Transaction(db, write=refresh):
        for namespace, key in keys:
            text = namespace_text(namespace)
            row = db.execute(sql.SELECT_ITEM, (text, key, now)).fetchone()
            if row is None:
                found.append(None)
                continue
            stored = _item(row)
            stored.vectors = _vectors(db, text, key)
            if refresh:
                _refreshed(db, stored, now)
            found.append(stored)
    return found


def write_items(
    db: sqlite3.Connection, puts: Sequence[StoredItem], deletes: Sequence[ItemKey], now: float
) -> None:
    for item in puts:
        where = nul_at(decode_value(item.value)) if b"\\u0000" in item.value else None
        if where is not None:
            raise InvalidConfigError(
                f"store put {item.namespace!r} / {item.key!r}: SQLite's JSON functions cut a "
                f"string at the NUL character (\\u0000), so a value holding one (at {where!r}) "
                "cannot be searched exactly; nothing was written"
            )
    with Transaction(db, write=True):
        for namespace, key in deletes:
            text = namespace_text(namespace)
            db.execute(sql.DELETE_ITEM_VECTORS, (text, key))
            db.execute(sql.DELETE_ITEM_VECTOR_COPIES, (text, key))
            db.execute(sql.DELETE_ITEM, (text, key))
        for item in puts:
            text = namespace_text(item.namespace)
            db.execute(
                sql.UPSERT_ITEM,
                (
                    text,
                    item.key,
                    item.value.decode(),
                    item.created_at,
                    item.updated_at,
                    item.ttl,
                    item.expires_at,
                    now,
                ),
            )
            db.execute(sql.DELETE_ITEM_VECTORS, (text, item.key))
            db.execute(sql.DELETE_ITEM_VECTOR_COPIES, (text, item.key))
            if item.vectors:
                db.executemany(
                    sql.INSERT_VECTOR,
                    [(text, item.key, path, pack_vector(v)) for path, v in item.vectors.items()],
                )
                db.executemany(
                    sql.INSERT_VECTOR_COPY,
                    [(text, item.key, path, unit_float32(v)) for path, v in item.vectors.items()],
                )


def _under(prefix: tuple[str, ...], now: float) -> tuple[list[str], list[Any]]:
    """The conditions (and their parameters) of a live item under ``prefix``."""
    conditions = [sql.SEARCH_LIVE]
    params: list[Any] = [now]
    bounds = prefix_range(prefix)
    if bounds is not None:
        conditions.append(sql.SEARCH_PREFIX)
        params.extend(bounds)
    return conditions, params


SMALL_PREFIX_ITEMS: Final = 1000
"""Under this many items (live or not), a prefix is read whole by primary key and its
matches sorted; from it on, a page is walked down ``memory_items_by_update`` (newest first),
stopping once full. Both plans cost at most a millisecond or so at this size."""
MAX_TEXT_PREFILTERS: Final = 4
"""How many equality strings get a ``SEARCH_TEXT_SEEN`` test ahead of ``json_each``."""
MAX_PUSHED_RANGES: Final = 16
MAX_RANGE_DEPTH: Final = 16
"""Range hints beyond these (more fields, deeper paths) stay the core's to check: hints
are optional, and the statement keeps a bounded shape."""


def _conjunction(conditions: Sequence[str]) -> str:
    """``a AND b AND ...`` as a balanced tree, in order: SQLite limits an expression's
    depth (1000), and a filter with many keys must not reach it."""
    if len(conditions) <= 8:
        return " AND ".join(conditions)
    middle = len(conditions) // 2
    return f"({_conjunction(conditions[:middle])}) AND ({_conjunction(conditions[middle:])})"


def _filter_conditions(search: ItemSearch) -> tuple[list[str], list[Any]]:
    """The filter's conditions on ``m`` (cheapest first) and their parameters: every
    equality exactly, and the range hints that fit the bounds above."""
    conditions: list[str] = []
    params: list[Any] = []
    equals = search.filter.equals
    for wanted in list(equals.values())[:MAX_TEXT_PREFILTERS]:
        try:
            encoded = orjson.dumps(wanted).decode()
        except orjson.JSONEncodeError:  # a lone surrogate: the bound string itself is refused
            continue
        conditions.append(sql.SEARCH_TEXT_SEEN)
        params.append(encoded)
    for key, wanted in equals.items():
        conditions.append(sql.SEARCH_EQUALS)
        params.extend((key, wanted))
    pushed = [hint for hint in search.filter.ranges if len(hint.path) <= MAX_RANGE_DEPTH]
    for hint in pushed[:MAX_PUSHED_RANGES]:
        conditions.append(sql.range_condition(len(hint.path)))
        params.extend(hint.path)
        params.append(-math.inf if hint.low is None else hint.low)
        params.append(math.inf if hint.high is None else hint.high)
    return conditions, params


def _walks_index(db: sqlite3.Connection, search: ItemSearch) -> bool:
    """Whether the page is read down ``memory_items_by_update`` (see SMALL_PREFIX_ITEMS);
    a search for every match (no limit) reads them all anyway, by primary key."""
    if search.limit is None:
        return False
    bounds = prefix_range(search.prefix)
    if bounds is None:
        return True
    counted = db.execute(sql.COUNT_PREFIX_ITEMS, (*bounds, SMALL_PREFIX_ITEMS)).fetchone()[0]
    return int(counted) >= SMALL_PREFIX_ITEMS


def page_query(db: sqlite3.Connection, search: ItemSearch) -> tuple[str, list[Any]]:
    """The statement and parameters that read a search's page (the plan chosen here)."""
    filters, filter_params = _filter_conditions(search)
    bounds = prefix_range(search.prefix)
    if _walks_index(db, search):
        conditions = [] if bounds is None else [sql.WALK_PREFIX]
        params: list[Any] = [] if bounds is None else list(bounds)
        template = sql.SELECT_ITEMS_WALK
    else:
        conditions = [] if bounds is None else [sql.SEARCH_PREFIX]
        params = [] if bounds is None else list(bounds)
        template = sql.SELECT_ITEMS_PAGE
    conditions.append(sql.SEARCH_LIVE)
    params.append(search.now)
    conditions.extend(filters)
    params.extend(filter_params)
    params.extend((-1 if search.limit is None else search.limit, search.offset))
    return template.format(where=_conjunction(conditions)), params


def _page_rows(db: sqlite3.Connection, search: ItemSearch) -> list[Row]:
    statement, params = page_query(db, search)
    try:
        return db.execute(statement, params).fetchall()
    except sqlite3.OperationalError as exc:
        if str(exc) != "malformed JSON":
            raise
        raise _unreadable_value(db) from None


def _unreadable_value(db: sqlite3.Connection) -> CorruptDataError:
    row = db.execute(sql.SELECT_UNREADABLE_ITEM).fetchone()
    where = "an item" if row is None else f"item {namespace_of(row[0])!r} / {row[1]!r}"
    return CorruptDataError(
        f"memory_items: the value of {where} is not JSON that SQLite can read (malformed, "
        "or nested deeper than its limit of 2000 levels), so a filter cannot look into it; "
        "delete or rewrite that item"
    )


def search_items(db: sqlite3.Connection, search: ItemSearch) -> list[StoredItem]:
    with Transaction(db, write=search.refresh):
        found = [_item(row) for row in _page_rows(db, search)]
        for stored in found:
            if search.with_vectors:
                stored.vectors = _vectors(db, namespace_text(stored.namespace), stored.key)
            if search.refresh:
                _refreshed(db, stored, search.now)
    return found


def rank_candidates(db: sqlite3.Connection, search: ItemSearch, query: list[float]) -> list[StoredItem]:
    """The items the core's exact ranking needs for the page (``core.store_backend``):
    sqlite-vec orders the items under the search by float32 distance, 4x the places asked
    (more while the last of them is not provably worse than the page's last, by
    ``cosine_error_bound``), and this reads those not provably worse; with fewer scored
    items than places, also the scoreless fill. One read transaction."""
    wanted = search.offset + (search.limit or 0)
    if wanted == 0:
        return []
    conditions, params = _under(search.prefix, search.now)
    ranked_conditions = [sql.SEARCH_LIVE]
    ranked_params: list[Any] = [search.now]
    bounds = prefix_range(search.prefix)
    if bounds is not None:
        ranked_conditions.append(sql.SEARCH_VECTOR_PREFIX)
        ranked_params.extend(bounds)
    for key, value in search.filter.equals.items():
        for into, values in ((conditions, params), (ranked_conditions, ranked_params)):
            into.append(sql.SEARCH_EQUALS)
            values.extend((key, value))
    where = " AND ".join(conditions)
    ranking = sql.RANK_VECTOR_CANDIDATES.format(where=" AND ".join(ranked_conditions))
    target, margin = unit_float32(query), 2.0 * cosine_error_bound(len(query))
    count = max(4 * wanted, MIN_VECTOR_CANDIDATES)
    with Transaction(db, write=False):
        while True:
            rows = _ranked_rows(db, ranking, [target, *ranked_params, count], len(query))
            if len(rows) < wanted:  # every scored item, fewer than the places
                break
            # Past this, an item is worse in float64 than each of the first ``wanted``.
            cutoff = rows[wanted - 1][2] + margin
            if len(rows) < count or rows[-1][2] > cutoff:
                rows = [row for row in rows if row[2] <= cutoff]
                break
            count *= 4
        found = []
        for namespace, key, _ in rows:
            row = db.execute(sql.SELECT_ITEM, (namespace, key, search.now)).fetchone()
            stored = _item(row)
            stored.vectors = _vectors(db, namespace, key)
            found.append(stored)
        if len(rows) < wanted and search.limit:
            scoreless = sql.SELECT_ITEMS_PAGE.format(where=f"{where} AND {sql.SEARCH_NO_VECTORS}")
            rows = db.execute(scoreless, [*params, search.limit, 0]).fetchall()
            found.extend(_item(row) for row in rows)
    return found


def _ranked_rows(db: sqlite3.Connection, ranking: str, params: list[Any], dims: int) -> list[Row]:
    """The ranking's rows; a stored float32 copy sqlite-vec cannot read as the query's
    size is corrupt data (or vectors stored under other dims), named."""
    try:
        return db.execute(ranking, params).fetchall()
    except sqlite3.OperationalError as exc:
        bad = db.execute(sql.SELECT_MISSIZED_VECTOR, (4 * dims,)).fetchone()
        if bad is None:
            raise
        raise CorruptDataError(
            f"memory_vector_copies {bad[0]!r} / {bad[1]!r} / {bad[2]!r}: a stored float32 vector of "
            f"{bad[3]} bytes, not {dims} float32s (the index's dims): corrupt, or stored under "
            f"other dims ({exc})"
        ) from None


def item_namespaces(db: sqlite3.Connection, prefix: tuple[str, ...], now: float) -> list[tuple[str, ...]]:
    conditions, params = _under(prefix, now)
    statement = sql.SELECT_NAMESPACES.format(where=" AND ".join(conditions))
    rows = db.execute(statement, params).fetchall()
    return sorted(namespace_of(row[0]) for row in rows)


def sweep_items(db: sqlite3.Connection, now: float) -> int:
    with Transaction(db, write=True):
        db.execute(sql.SWEEP_VECTORS, (now,))
        db.execute(sql.SWEEP_VECTOR_COPIES, (now,))
        return db.execute(sql.SWEEP_ITEMS, (now,)).rowcount


def cache_get(db: sqlite3.Connection, keys: Sequence[tuple[str, str]], now: float) -> list[CacheEntry | None]:
    found: list[CacheEntry | None] = []
    with Transaction(db, write=False):
        for namespace, key in keys:
            row = db.execute(sql.SELECT_CACHE_ENTRY, (namespace, key, now)).fetchone()
            found.append(None if row is None else CacheEntry(namespace, key, row[0], bytes(row[1]), row[2]))
    return found


def cache_set(db: sqlite3.Connection, entries: Sequence[CacheEntry], now: float) -> None:
    with Transaction(db, write=True):
        db.execute(sql.DELETE_EXPIRED_CACHE, (now,))
        db.executemany(
            sql.UPSERT_CACHE_ENTRY,
            [(e.namespace, e.key, e.type, e.data, e.expires_at) for e in entries],
        )


def cache_clear(db: sqlite3.Connection, namespaces: Sequence[str] | None) -> None:
    with Transaction(db, write=True):
        if namespaces is None:
            db.execute(sql.DELETE_CACHE)
        else:
            db.executemany(sql.DELETE_CACHE_NAMESPACE, [(ns,) for ns in namespaces])


# -- the backend -----------------------------------------------------------------------------


class SQLiteStoreBackend(SQLiteFile, StoreBackend, CacheBackend):
    """Store items and cache entries in a SQLite file (the saver's, or its own)."""

    name: ClassVar[str] = "sqlite"
    blocking: ClassVar[BlockingMode] = BlockingMode.CALLER_THREAD
    unencodable: ClassVar[str] = "a namespace label or key in this call"

    def __repr__(self) -> str:
        return f"SQLiteStoreBackend(path={self.path!r})"

    ranks_in_sql = False
    """Whether sqlite-vec answers on the connection (``vectors``): vector searches then
    rank in SQL; else in the core."""

    def _connector(self) -> Callable[[str], sqlite3.Connection]:
        return connect_with_vec

    def _prepare(self, db: sqlite3.Connection) -> None:
        super()._prepare(db)
        self.ranks_in_sql = has_vec(db)

    async def get_items(self, keys: Sequence[ItemKey], now: float, refresh: bool) -> list[StoredItem | None]:
        return await self._run(get_items, list(keys), now, refresh)

    async def write_items(self, puts: Sequence[StoredItem], deletes: Sequence[ItemKey], now: float) -> None:
        await self._run(write_items, list(puts), list(deletes), now)

    async def search_items(self, search: ItemSearch) -> list[StoredItem]:
        return await self._run(search_items, search)

    async def rank_candidates(self, search: ItemSearch, query: Sequence[float]) -> list[StoredItem] | None:
        if not self.ranks_in_sql:
            return None
        return await self._run(rank_candidates, search, list(query))

    async def item_namespaces(self, prefix: tuple[str, ...], now: float) -> list[tuple[str, ...]]:
        return await self._run(item_namespaces, prefix, now)

    async def sweep_items(self, now: float) -> int:
        return await self._run(sweep_items, now)

    async def cache_get(self, keys: Sequence[tuple[str, str]], now: float) -> list[CacheEntry | None]:
        return await self._run(cache_get, list(keys), now)

    async def cache_set(self, entries: Sequence[CacheEntry], now: float) -> None:
        await self._run(cache_set, list(entries), now)

    async def cache_clear(self, namespaces: Sequence[str] | None) -> None:
        await self._run(cache_clear, None if namespaces is None else list(namespaces))


# -- the public classes ----------------------------------------------------------------------


class SQLiteStore(OpenedOnConnection, UnifiedStore):
    """LangGraph's long-term memory store in a SQLite file (the saver's file works too).

    ``SQLiteStore("agent.db", index=..., ttl=...)``: the same sync and async API as every
    ``BaseStore``; close it with ``with``/``async with`` or ``close()``.
    """

    backend: SQLiteStoreBackend

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        synchronous: str = DEFAULT_SYNCHRONOUS,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            SQLiteStoreBackend(path, busy_timeout=busy_timeout, synchronous=synchronous),
            index=index,
            ttl=ttl,
            clock=clock,
        )


class SQLiteCache(OpenedOnConnection, UnifiedCache[Any]):
    """LangGraph's node cache (``graph.compile(cache=SQLiteCache("agent.db"))``) in a
    SQLite file."""

    backend: SQLiteStoreBackend

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        synchronous: str = DEFAULT_SYNCHRONOUS,
        serde: SerializerProtocol | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            SQLiteStoreBackend(path, busy_timeout=busy_timeout, synchronous=synchronous),
            serde=serde,
            clock=clock,
        )
