"""In-process storage for the long-term memory store and the node cache: dictionaries
under one lock, the reference the other backends are held to."""

from __future__ import annotations

import math
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
from ..core.store_rules import decode_value, namespace_text, under_prefix, unranked_order
from ..core.sync import BlockingMode


def _live(expires_at: float | None, now: float) -> bool:
    return expires_at is None or expires_at > now


def _oldest_first(stored: StoredItem) -> tuple[float, str, str]:
    return (stored.updated_at, namespace_text(stored.namespace), stored.key)


def _sorted_run(run: list[StoredItem]) -> list[StoredItem]:
    """Records of one ``updated_at``, in search order."""
    if len(run) > 1:
        run.sort(key=lambda s: unranked_order(s.updated_at, s.namespace, s.key))
    return run


class MemoryStoreBackend(StoreBackend, CacheBackend):
    """Items in one dict whose order is the order they were last written in: with a clock
    that never goes back, that is oldest ``updated_at`` first, so a search walks it newest
    first and stops once it has its page instead of sorting every item. A write that goes
    back in time marks the order stale; the next search sorts once and rebuilds the dict.

    The records it hands the core are its own (the core only reads them): values are
    bytes, decoded into a fresh dict for every read, so nothing returned aliases them."""

    blocking: ClassVar[BlockingMode] = BlockingMode.IN_PROCESS
    name: ClassVar[str] = "memory"
    applies_whole_filter: ClassVar[bool] = True

    def __init__(self) -> None:
        self._items: dict[ItemKey, StoredItem] = {}
        self._values: dict[ItemKey, dict[str, Any]] = {}
        """Values decoded by filtered searches, kept for the next (never handed out: reads
        decode their own copy); a write or delete drops the key's."""
        self._latest = -math.inf
        """The ``updated_at`` of the last item written while the order held."""
        self._in_order = True
        self._cache: dict[tuple[str, str], CacheEntry] = {}
        self._lock = threading.Lock()

    async def get_items(self, keys: Sequence[ItemKey], now: float, refresh: bool) -> list[StoredItem | None]:
        with self._lock:
            found: list[StoredItem | None] = []
            for key in keys:
                stored = self._items.get(key)
                if stored is None or not _live(stored.expires_at, now):
                    found.append(None)
                    continue
                if refresh and stored.ttl is not None:
                    stored.expires_at = now + stored.ttl
                found.append(stored)
            return found

    async def write_items(self, puts: Sequence[StoredItem], deletes: Sequence[ItemKey], now: float) -> None:
        """Keeps the core's fresh records; a rewritten key moves to the end.

        Each value is copied, exactly sized, to be held for long: orjson returns a 1 KiB
        malloc block shrunk in place, and holding thousands of those fragments glibc's
        heap until every later allocation of that size trims it (measured: a small
        ``orjson.dumps`` 30x slower, a put 3x). A copy under 512 bytes lives in Python's
        own allocator."""
        with self._lock:
            items = self._items
            values = self._values
            for key in deletes:
                items.pop(key, None)
                values.pop(key, None)
            for item in puts:
                item.value = bytes(memoryview(item.value))
                key = (item.namespace, item.key)
                old = items.pop(key, None)
                values.pop(key, None)
                if old is not None and (old.expires_at is None or old.expires_at > now):  # _live
                    item.created_at = old.created_at
                items[key] = item
                if item.updated_at >= self._latest:
                    self._latest = item.updated_at
                else:
                    self._in_order = False

    def _restore_order(self) -> None:
        """After a write that went back in time: the dict rebuilt oldest first."""
        ordered = sorted(self._items.values(), key=_oldest_first)
        self._items = {(s.namespace, s.key): s for s in ordered}
        self._latest = ordered[-1].updated_at if ordered else -math.inf
        self._in_order = True

    async def search_items(self, search: ItemSearch) -> list[StoredItem]:
        """The dict backwards (newest ``updated_at`` first), each run of one ``updated_at``
        sorted by namespace text and key, stopping at the end of the run that completes
        the page."""
        with self._lock:
            if not self._in_order:
                self._restore_order()
            wanted = None if search.limit is None else search.offset + search.limit
            prefix, matches, now = search.prefix, search.filter.matches, search.now
            filtered = bool(search.filter.raw)
            found: list[StoredItem] = []
            run: list[StoredItem] = []
            run_at: float | None = None
            values = self._values
            for key, stored in reversed(self._items.items()):
                if stored.updated_at != run_at:
                    if run:
                        found.extend(_sorted_run(run))
                        run = []
                    if wanted is not None and len(found) >= wanted:
                        break
                    run_at = stored.updated_at
                if not under_prefix(stored.namespace, prefix) or not _live(stored.expires_at, now):
                    continue
                if filtered:
                    value = values.get(key)
                    if value is None:
                        value = values[key] = decode_value(stored.value)
                    if not matches(value):
                        continue
                run.append(stored)
            found.extend(_sorted_run(run))
            found = found[search.offset : wanted]
            if search.refresh:
                for stored in found:
                    if stored.ttl is not None:
                        stored.expires_at = now + stored.ttl
            return found

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
                self._values.pop(key, None)
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
