"""The long-term memory store and the node cache on PostgreSQL (asyncpg).

PostgresStoreBackend keeps the rules of ``core.store_backend`` on three tables of the
saver's schema, created by the saver's own versioned migrations (``migrations.MIGRATION_4``,
under the same advisory lock), over the saver's connection machinery
(``connection.Connections``: a pool per event loop or a given asyncpg.Pool, retries on a
dropped connection, errors naming the server, never the password; PgBouncer-safe with
``prepared_statements=False``). Why it is shaped this way:
- every read is ONE statement (``store_sql.py``), and so is a batch's writes: one call of
  a plpgsql function that takes the keys' advisory locks in one order, then writes every
  delete, put and vector (see ``store_sql.WRITE_ITEMS`` for why the locks come first).
  Nothing holds a session, so transaction pooling works;
- a namespace prefix is a primary key range over the namespace text, the exact part of a
  filter is jsonb containment through a GIN index, and number ranges (the core's hints)
  are pushed down as a walk of the items newest first: the core filters the rest;
- a refreshing read moves the expiry in the read's own statement (UPDATE ... RETURNING
  in a CTE); plain reads stay plain SELECTs.
Values are jsonb, so they come back as PostgreSQL stores them: object keys in jsonb's
order, and a float without a fraction (1e20) may read back as the equal integer. jsonb
cannot hold the NUL character (\\u0000) in a string: such a put is InvalidConfigError.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, ClassVar, Final, TypeVar

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
from ...core.store_rules import namespace_of, namespace_text, prefix_range
from ...errors import InvalidConfigError
from ...registry import DEFAULT_COMMAND_TIMEOUT, DEFAULT_SCHEMA
from .connection import BTREE_ENTRY_MAX, Connection, Operation, fetch_stored
from .database import PostgresDatabase, open_database
from .keys import lock_key
from .store_sql import StoreStatements

try:
    import asyncpg
except ImportError:  # pragma: no cover - exercised only without the extra
    asyncpg = None

T = TypeVar("T")

DEADLOCK_ATTEMPTS: Final = 3
"""Tries of a statement PostgreSQL chose as a deadlock victim (rolled back whole): writes
lock keys in one order, but a refreshing read updates rows without the key locks."""


WALK_MIN_ROWS: Final = 256
WALK_FACTOR: Final = 4
WALK_MAX_ROWS: Final = 8192
"""How many of the newest items a search without an equality filter walks before it
falls back to the prefix's primary key range (``store_sql.SEARCH_WALKED``): WALK_FACTOR
times the page it needs, at least WALK_MIN_ROWS; a page needing more than WALK_MAX_ROWS
skips the walk."""


def pack_vector(vector: Sequence[float]) -> bytes:
    """An embedding as stored: float64 little-endian."""
    return struct.pack(f"<{len(vector)}d", *vector)


def unpack_vector(data: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(data) // 8}d", data))


def _stored_item(row: Any) -> StoredItem:
    """A row of GET_ITEMS / SEARCH_ITEMS: namespace, key, value, created_at, updated_at,
    ttl, expires_at, vector paths, vectors."""
    paths, vectors = row[7], row[8]
    return StoredItem(
        namespace=namespace_of(row[0]),
        key=row[1],
        value=row[2].encode(),
        created_at=row[3],
        updated_at=row[4],
        ttl=row[5],
        expires_at=row[6],
        vectors=None
        if paths is None
        else {path: unpack_vector(data) for path, data in zip(paths, vectors, strict=True)},
    )


def _rejected(operation: str, exc: BaseException) -> InvalidConfigError | None:
    """The error for input PostgreSQL refuses to store, or None for any other failure."""
    if isinstance(exc, asyncpg.UntranslatableCharacterError):
        return InvalidConfigError(
            f"{operation}: PostgreSQL jsonb cannot hold the NUL character (\\u0000) in a "
            f"string ({str(exc).splitlines()[0]}); nothing was written"
        )
    if isinstance(exc, asyncpg.ProgramLimitExceededError):
        return InvalidConfigError(
            f"{operation}: a namespace and key too long for PostgreSQL (a btree index entry "
            f"holds at most {BTREE_ENTRY_MAX} bytes after compression, for the namespace, "
            f"the key and an indexed path together); nothing was written "
            f"({str(exc).splitlines()[0]})"
        )
    return None


class PostgresStoreBackend(PostgresDatabase[StoreStatements], StoreBackend, CacheBackend):
    """Store items and node-cache entries in one schema (see the module docstring); the
    connections and the schema's set-up are PostgresDatabase's, as for the saver."""

    name: ClassVar[str] = "postgres"
    statements_class = StoreStatements

    # -- running statements -----------------------------------------------------------------

    async def _retried(self, operation: Operation[T]) -> T:
        """``operation`` (idempotent, one statement or one transaction) run again if
        PostgreSQL rolled it back to break a deadlock."""

        async def attempts(conn: Connection) -> T:
            for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
                try:
                    return await operation(conn)
                except asyncpg.DeadlockDetectedError:
                    if attempt == DEADLOCK_ATTEMPTS:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover

        return await self._run(attempts)

    async def _fetch(self, statement: str, args: Sequence[Any], where: str) -> list[Any]:
        async def fetch(conn: Connection) -> list[Any]:
            return await fetch_stored(conn, statement, args, where)

        return await self._retried(fetch)

    async def _write(self, operation: Operation[None], what: str) -> None:
        """Run a write; input PostgreSQL refuses to store is InvalidConfigError."""
        try:
            await self._retried(operation)
        except asyncpg.PostgresError as exc:
            rejected = _rejected(what, exc)
            if rejected is None:
                raise
            raise rejected from None

    # -- items ------------------------------------------------------------------------------

    async def get_items(
        self, keys: Sequence[ItemKey], now: float, refresh: bool
    ) -> list[StoredItem | None]:
        found: list[StoredItem | None] = [None] * len(keys)
        if not keys:
            return found
        args = (now, [namespace_text(ns) for ns, _ in keys], [key for _, key in keys])
        for row in await self._fetch(self._statements.get(refresh=refresh), args, "store get"):
            found[row[9] - 1] = _stored_item(row)
        return found

    async def write_items(
        self, puts: Sequence[StoredItem], deletes: Sequence[ItemKey], now: float
    ) -> None:
        # Each key once (the last put wins; a key both put and deleted is put), in key
        # order (see _write).
        by_key = {(namespace_text(item.namespace), item.key): item for item in puts}
        gone = sorted(
            {(namespace_text(ns), key) for ns, key in deletes} - set(by_key)
        )
        items = [by_key[key] for key in sorted(by_key)]
        if not items and not gone:
            return
        vectors = [
            (namespace_text(item.namespace), item.key, path, pack_vector(vector))
            for item in items
            for path, vector in (item.vectors or {}).items()
        ]
        args = (
            [ns for ns, _ in gone],
            [key for _, key in gone],
            [namespace_text(item.namespace) for item in items],
            [item.key for item in items],
            [item.value.decode() for item in items],
            [item.created_at for item in items],
            [item.updated_at for item in items],
            [item.ttl for item in items],
            [item.expires_at for item in items],
            now,
            *([list(column) for column in zip(*vectors, strict=True)] or [[], [], [], []]),
        )
        # Each key's lock (a domain apart from the saver's thread locks: thread ids hold
        # no NUL), in ascending order (the function takes them in that order too).
        locks = sorted(
            {lock_key(self.schema, f"\0item\0{ns}\0{key}") for ns, key in [*gone, *by_key]}
        )
        statement = self._statements.write_items

        async def write(conn: Connection) -> None:
            await conn.execute(statement, locks, *args)

        await self._write(write, "store put")

    async def search_items(self, search: ItemSearch) -> list[StoredItem]:
        bounds = prefix_range(search.prefix)
        where: list[Any] = [*(bounds or ())]
        equals = search.filter.equals
        if equals:
            where.append(orjson.dumps(equals).decode())
        ranges = search.filter.ranges
        for hint in ranges:
            path = list(hint.path)
            where += [path, path, hint.low, path, hint.high]
        page = [search.limit, search.offset]
        # Walk the newest items first where a filter or prefix leaves no equality for the
        # GIN index (see store_sql.SEARCH_WALKED), if the page fits the walk.
        need = None if search.limit is None else search.offset + search.limit
        walk_rows = 0 if need is None else max(WALK_MIN_ROWS, WALK_FACTOR * need)
        walked = (
            0 < walk_rows <= WALK_MAX_ROWS
            and not equals
            and (bounds is not None or bool(ranges))
        )
        if walked:
            args = [search.now, walk_rows, *where, need, need, *page, *where, *page]
        else:
            args = [search.now, *where, *page]
        statement = self._statements.search(
            prefix=bounds is not None,
            equals=bool(equals),
            refresh=search.refresh,
            vectors=search.with_vectors,
            ranges=len(ranges),
            walked=walked,
        )
        return [_stored_item(row) for row in await self._fetch(statement, args, "store search")]

    async def item_namespaces(self, prefix: tuple[str, ...], now: float) -> list[tuple[str, ...]]:
        bounds = prefix_range(prefix)
        statement = self._statements.namespaces(prefix=bounds is not None)
        rows = await self._fetch(statement, [now, *(bounds or ())], "store list_namespaces")
        return [namespace_of(row[0]) for row in rows]

    async def sweep_items(self, now: float) -> int:
        statement = self._statements.sweep_items

        async def sweep(conn: Connection) -> int:
            return int(await conn.fetchval(statement, now))

        return await self._retried(sweep)

    # -- the node cache ---------------------------------------------------------------------

    async def cache_get(
        self, keys: Sequence[tuple[str, str]], now: float
    ) -> list[CacheEntry | None]:
        found: list[CacheEntry | None] = [None] * len(keys)
        if not keys:
            return found
        args = ([ns for ns, _ in keys], [key for _, key in keys], now)
        rows = await self._fetch(self._statements.cache_get, args, "cache get")
        for n, kind, data, expires_at in rows:
            namespace, key = keys[n - 1]
            found[n - 1] = CacheEntry(namespace, key, kind, bytes(data), expires_at)
        return found

    async def cache_set(self, entries: Sequence[CacheEntry], now: float) -> None:
        by_key = {(e.namespace, e.key): e for e in entries}
        unique = [by_key[key] for key in sorted(by_key)]
        if not unique:
            return
        args = (
            [e.namespace for e in unique],
            [e.key for e in unique],
            [e.type for e in unique],
            [e.data for e in unique],
            [e.expires_at for e in unique],
            now,
        )
        statement = self._statements.cache_set

        async def write(conn: Connection) -> None:
            await conn.fetchrow(statement, *args)

        await self._write(write, "cache set")

    async def cache_clear(self, namespaces: Sequence[str] | None) -> None:
        if namespaces is not None and not namespaces:
            return
        s = self._statements
        statement = s.cache_clear_all if namespaces is None else s.cache_clear
        args = () if namespaces is None else (list(namespaces),)

        async def clear(conn: Connection) -> None:
            await conn.execute(statement, *args)

        await self._retried(clear)


class PostgresStore(OpenedOnConnection, UnifiedStore):
    """LangGraph's long-term memory store on PostgreSQL, in the tables
    ``lus_memory_items`` and ``lus_memory_vectors`` of ``schema`` (the saver's schema
    may be shared: the tables never collide).

    ``PostgresStore("postgresql://user@host/db", schema=...)`` takes PostgresSaver's
    connection options (``prepared_statements=False`` behind PgBouncer, pool sizes,
    timeouts, ``ssl``, ``synchronous_commit``, any ``asyncpg.connect`` option, or an
    existing ``asyncpg.Pool`` instead of the string), plus ``index=`` (semantic search),
    ``ttl=`` (LangGraph's TTLConfig, in minutes) and ``clock=``. Use it with ``with`` /
    ``async with``, or call ``close()``.
    """

    backend: PostgresStoreBackend

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
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        clock: Clock | None = None,
        **connect_options: Any,
    ) -> None:
        backend = open_database(PostgresStoreBackend, conn, "store", locals())
        super().__init__(backend, index=index, ttl=ttl, clock=clock)


class PostgresCache(OpenedOnConnection, UnifiedCache[Any]):
    """LangGraph's node cache (``graph.compile(cache=...)``) on PostgreSQL, in the table
    ``lus_node_cache`` of ``schema``; PostgresSaver's connection options, plus ``serde=``
    and ``clock=``."""

    backend: PostgresStoreBackend

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
        clock: Clock | None = None,
        **connect_options: Any,
    ) -> None:
        backend = open_database(PostgresStoreBackend, conn, "cache", locals())
        super().__init__(backend, serde=serde, clock=clock)
