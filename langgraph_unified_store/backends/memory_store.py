"""In-process storage for the long-term memory store and the node cache: dictionaries
under one lock, the reference the other backends are held to."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.store.base import IndexConfig, TTLConfig

from ..core.cache import UnifiedCache
from ..core.lifecycle import Clock
from ..core.store import UnifiedStore
from ..core.store_backend import (
    CacheBackend,
    CacheEntry,
    ItemKey,
    ItemSearch,
    StoreBackend,
    StoredItem,
)
from ..core.store_rules import decode_value, under_prefix, unranked_order
from ..core.sync import BlockingMode


def _live(expires_at: float | None, now: float) -> bool:
    return expires_at is None or expires_at > now


class MemoryStoreBackend(StoreBackend, CacheBackend):
    blocking: ClassVar[BlockingMode] = BlockingMode.IN_PROCESS
    name: ClassVar[str] = "memory"
    applies_whole_filter: ClassVar[bool] = True

    def __init__(self) -> None:
        self._items: dict[ItemKey, StoredItem] = {}
        self._cache: dict[tuple[str, str], CacheEntry] = {}
        self._lock = threading.Lock()

    def _read(self, stored: StoredItem, now: float, refresh: bool, with_vectors: bool = True) -> StoredItem:
        if refresh and stored.ttl is not None:
            stored.expires_at = now + stored.ttl
        copy = dataclasses.replace(stored)
        if stored.vectors is not None:
            copy.vectors = {path: list(v) for path, v in stored.vectors.items()} if with_vectors else None
        return copy

    async def get_items(self, keys: Sequence[ItemKey], now: float, refresh: bool) -> list[StoredItem | None]:
        with self._lock:
            found: list[StoredItem | None] = []
            for key in keys:
                stored = self._items.get(key)
                live = stored is not None and _live(stored.expires_at, now)
                found.append(self._read(stored, now, refresh) if live and stored is not None else None)
            return found

    async def write_items(self, puts: Sequence[StoredItem], deletes: Sequence[ItemKey], now: float) -> None:
        with self._lock:
            for key in deletes:
                self._items.pop(key, None)
            for item in puts:
                key = (item.namespace, item.key)
                old = self._items.get(key)
                created = old.created_at if old is not None and _live(old.expires_at, now) else item.created_at
                self._items[key] = dataclasses.replace(item, created_at=created)

    async def search_items(self, search: ItemSearch) -> list[StoredItem]:
        with self._lock:
            found = [
                stored
                for (namespace, _), stored in self._items.items()
                if under_prefix(namespace, search.prefix)
                and _live(stored.expires_at, search.now)
                and (not search.filter.raw or search.filter.matches(decode_value(stored.value)))
            ]
            found.sort(key=lambda s: unranked_order(s.updated_at, s.namespace, s.key))
            end = None if search.limit is None else search.offset + search.limit
            found = found[search.offset : end]
            return [self._read(s, search.now, search.refresh, search.with_vectors) for s in found]

    async def item_namespaces(self, prefix: tuple[str, ...], now: float) -> list[tuple[str, ...]]:
        with self._lock:
            return sorted(
                {ns for (ns, _), s in self._items.items() if under_prefix(ns, prefix) and _live(s.expires_at, now)}
            )

    async def sweep_items(self, now: float) -> int:
        with self._lock:
            gone = [key for key, s in self._items.items() if not _live(s.expires_at, now)]
            for key in gone:
                del self._items[key]
            return len(gone)

    # -- the cache -------------------------------------------------------------------------

    async def cache_get(self, keys: Sequence[tuple[str, str]], now: float) -> list[CacheEntry | None]:
        with self._lock:
            found: list[CacheEntry | None] = []
            for key in keys:
                entry = self._cache.get(key)
                found.append(entry if entry is not None and _live(entry.expires_at, now) else None)
            return found

    async def cache_set(self, entries: Sequence[CacheEntry], now: float) -> None:
        with self._lock:
            for key in [k for k, e in self._cache.items() if not _live(e.expires_at, now)]:
                del self._cache[key]
            for entry in entries:
                self._cache[(entry.namespace, entry.key)] = entry

    async def cache_clear(self, namespaces: Sequence[str] | None) -> None:
        with self._lock:
            if namespaces is None:
                self._cache.clear()
                return
            wanted = set(namespaces)
            for key in [k for k in self._cache if k[0] in wanted]:
                del self._cache[key]


class MemoryStore(UnifiedStore):
    """The long-term memory store in this process (``InMemoryStore``'s rules, our core)."""

    def __init__(
        self, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None, clock: Clock | None = None
    ) -> None:
        super().__init__(MemoryStoreBackend(), index=index, ttl=ttl, clock=clock)


class MemoryCache(UnifiedCache[Any]):
    """LangGraph's node cache in this process."""

    def __init__(self, *, serde: SerializerProtocol | None = None, clock: Clock | None = None) -> None:
        super().__init__(MemoryStoreBackend(), serde=serde, clock=clock)
