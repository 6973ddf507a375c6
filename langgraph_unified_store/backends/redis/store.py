"""The long-term memory store and the node cache on plain Redis (core commands and Lua
only): RedisStoreBackend (both storage contracts of ``core.store_backend``), RedisStore
and RedisCache. The key layout is in ``store_keys.py``; each operation is one Lua script
(``lua/store_*.lua``, ``lua/cache_*.lua``) on keys of one hash tag, so a batch is atomic
and one round trip on a single server and on a cluster alike.

A search pushes its string equalities and number-range hints down to the script, which
walks the recent index newest first and stops once the page is full (the names index and
a sort when the prefix is a small part of the store; see ``lua/store_search.lua``).

Expiry follows the core's clock (the ``now`` arguments), not Redis key expiry: every item
lives in one hash, and an item past its ``expires_at`` is skipped by every script until
the sweep removes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final

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
from ...core.store_rules import namespace_of
from ...registry import DEFAULT_PREFIX, DEFAULT_SOCKET_TIMEOUT
from .client import Call, RedisConn, ScriptArg, plain
from .database import RedisDatabase
from .keys import text_of, utf8
from .scripts import LuaScript
from .store_keys import (
    cache_field,
    cache_frame,
    cache_keys,
    decode_cache_entry,
    decode_item,
    hint_args,
    item_field,
    number_text,
    pack_vectors,
    prefix_bounds,
    scope_args,
    store_keys,
)

STORE_GET: Final = LuaScript.load("store_get")
STORE_WRITE: Final = LuaScript.load("store_write")
STORE_SEARCH: Final = LuaScript.load("store_search")
STORE_NAMESPACES: Final = LuaScript.load("store_namespaces")
STORE_SWEEP: Final = LuaScript.load("store_sweep")
STORE_REINDEX: Final = LuaScript.load("store_reindex")
CACHE_GET: Final = LuaScript.load("cache_get")
CACHE_SET: Final = LuaScript.load("cache_set")
CACHE_CLEAR: Final = LuaScript.load("cache_clear")

SWEEP_BATCH: Final = 500
"""Expired items one sweep call removes (the sweep repeats: each call stays short)."""
REINDEX_BATCH: Final = 500
"""Fields one step of setup's index build reads (each step is one short script)."""
CACHE_PURGE: Final = 64
"""Expired cache entries each cache read removes at most (the cache's only sweep)."""


def _flag(value: bool) -> str:
    return "1" if value else "0"


class RedisStoreBackend(RedisDatabase, StoreBackend, CacheBackend):
    """Store items and cache entries in plain Redis; see ``store_keys.py`` for the keys."""

    name: ClassVar[str] = "redis"

    def _name_keys(self, prefix: str) -> None:
        self._store_keys = store_keys(prefix)
        self._cache_keys = cache_keys(prefix)

    def __repr__(self) -> str:
        return f"RedisStoreBackend({self._connection.where!r}, prefix={self.prefix!r}, cluster={self.cluster!r})"

    async def _run(self, operation: str, script: LuaScript, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        return await self._connection.execute_one(operation, Call(script, keys, args))

    async def setup(self) -> None:
        """Checks the server answers, and builds the recent index of a store an earlier
        release wrote (or mends one that does not hold exactly the names index's fields):
        the upgrade, in bounded steps, skipped once both indexes count alike. Scripts
        make every other key as they write."""
        _, names, recent = await self._connection.execute(
            "setup",
            [plain("PING"), plain("ZCARD", self._store_keys[1]), plain("ZCARD", self._store_keys[4])],
        )
        if int(names) == int(recent):
            return
        for mode in ("add", "prune"):
            cursor: bytes = b""
            while True:
                cursor = await self._run(
                    "setup", STORE_REINDEX, self._store_keys, [mode, cursor, REINDEX_BATCH]
                )
                if not cursor:
                    break

    async def drop_all(self) -> None:
        """Delete this prefix's store and cache keys (for tests and tear-down)."""
        await self._connection.execute(
            "drop_all", [plain("UNLINK", key) for key in (*self._store_keys, *self._cache_keys)]
        )

    # -- items -----------------------------------------------------------------------------

    async def get_items(self, keys: Sequence[ItemKey], now: float, refresh: bool) -> list[StoredItem | None]:
        if not keys:
            return []
        fields = [item_field(namespace, key) for namespace, key in keys]
        answer = await self._run(
            "store get", STORE_GET, self._store_keys, [number_text(now), _flag(refresh), *fields]
        )
        return [
            None if answer[2 * i] is None else decode_item(field, answer[2 * i], answer[2 * i + 1])
            for i, field in enumerate(fields)
        ]

    async def write_items(self, puts: Sequence[StoredItem], deletes: Sequence[ItemKey], now: float) -> None:
        if not puts and not deletes:
            return
        args: list[ScriptArg] = [number_text(now), len(deletes)]
        args.extend(item_field(namespace, key) for namespace, key in deletes)
        for item in puts:
            args += [
                item_field(item.namespace, item.key),
                number_text(item.created_at),
                number_text(item.updated_at),
                number_text(item.ttl),
                number_text(item.expires_at),
                item.value,
                b"" if item.vectors is None else pack_vectors(item.vectors),
            ]
        await self._run("store put", STORE_WRITE, self._store_keys, args)

    async def search_items(self, search: ItemSearch) -> list[StoredItem]:
        bounds = prefix_bounds(search.prefix)
        limit = -1 if search.limit is None else search.limit
        args: list[ScriptArg] = [
            number_text(search.now),
            _flag(search.refresh),
            _flag(search.with_vectors),
            search.offset,
            limit,
            *scope_args(search.prefix),
            len(bounds) // 2,
            *bounds,
            len(search.filter.equals),
        ]
        for key, wanted in search.filter.equals.items():
            args += [utf8(key), utf8(wanted)]
        args += hint_args(search.filter.ranges)
        answer = await self._run("store search", STORE_SEARCH, self._store_keys, args)
        return [
            decode_item(answer[i], answer[i + 1], answer[i + 2] if search.with_vectors else None)
            for i in range(0, len(answer), 3)
        ]

    async def item_namespaces(self, prefix: tuple[str, ...], now: float) -> list[tuple[str, ...]]:
        texts = await self._run(
            "store list_namespaces",
            STORE_NAMESPACES,
            self._store_keys,
            [number_text(now), *prefix_bounds(prefix)],
        )
        return sorted({namespace_of(text_of(text)) for text in texts})

    async def sweep_items(self, now: float) -> int:
        total = 0
        while True:
            gone = int(
                await self._run("store sweep", STORE_SWEEP, self._store_keys, [number_text(now), SWEEP_BATCH])
            )
            total += gone
            if gone < SWEEP_BATCH:
                return total

    # -- the cache -------------------------------------------------------------------------

    async def cache_get(self, keys: Sequence[tuple[str, str]], now: float) -> list[CacheEntry | None]:
        if not keys:
            return []
        frames = await self._run(
            "cache get",
            CACHE_GET,
            self._cache_keys,
            [number_text(now), CACHE_PURGE, *(cache_field(ns, key) for ns, key in keys)],
        )
        found: list[CacheEntry | None] = []
        for (namespace, key), frame in zip(keys, frames, strict=True):
            entry = None if frame is None else decode_cache_entry(namespace, key, frame)
            live = entry is not None and (entry.expires_at is None or entry.expires_at > now)
            found.append(entry if live else None)
        return found

    async def cache_set(self, entries: Sequence[CacheEntry], now: float) -> None:
        """Expired entries go on reads (``cache_get`` purges a bounded number first)."""
        if not entries:
            return
        args: list[ScriptArg] = []
        for entry in entries:
            args += [cache_field(entry.namespace, entry.key), cache_frame(entry), number_text(entry.expires_at)]
        await self._run("cache set", CACHE_SET, self._cache_keys, args)

    async def cache_clear(self, namespaces: Sequence[str] | None) -> None:
        if namespaces is not None and not namespaces:
            return
        args: list[ScriptArg] = ["all"] if namespaces is None else ["some", *(utf8(ns) for ns in namespaces)]
        await self._run("cache clear", CACHE_CLEAR, self._cache_keys, args)


class RedisStore(OpenedOnConnection, UnifiedStore):
    """LangGraph's long-term memory store on plain Redis (no modules; Redis Cluster with
    ``cluster=True``): ``RedisStore("redis://localhost:6379/0", prefix="app")``. Every
    key is ``<prefix>:{memory}:...``, one slot, so each batch is one atomic script.
    ``index=`` (semantic search, ranked exactly in the client), ``ttl=`` (TTLConfig, in
    minutes) and ``clock=`` as for every store of this package."""

    backend: RedisStoreBackend

    def __init__(
        self,
        conn: RedisConn,
        *,
        prefix: str = DEFAULT_PREFIX,
        cluster: bool = False,
        socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        backend = RedisStoreBackend(conn, prefix=prefix, cluster=cluster, socket_timeout=socket_timeout)
        super().__init__(backend, index=index, ttl=ttl, clock=clock)


class RedisCache(OpenedOnConnection, UnifiedCache[Any]):
    """LangGraph's node cache (``graph.compile(cache=RedisCache(url))``) on plain Redis;
    every key is ``<prefix>:{cache}:...``. Entries expire by the core's clock."""

    backend: RedisStoreBackend

    def __init__(
        self,
        conn: RedisConn,
        *,
        prefix: str = DEFAULT_PREFIX,
        cluster: bool = False,
        socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
        serde: SerializerProtocol | None = None,
        clock: Clock | None = None,
    ) -> None:
        backend = RedisStoreBackend(conn, prefix=prefix, cluster=cluster, socket_timeout=socket_timeout)
        super().__init__(backend, serde=serde, clock=clock)
