"""The storage contract of the long-term memory store and of the node cache: what each
backend provides under ``core.store.UnifiedStore`` and ``core.cache.UnifiedCache``.

A store backend keeps items: (namespace, key) -> a JSON object (bytes the core encoded),
created and updated times, an expiry, and optional vectors per indexed field. It knows
nothing of embeddings or filters beyond the exact part pushed down to it; the core
(``core.store_rules``) ranks exactly, once for every backend, though a backend with a
vector library may pick the candidates it ranks (``rank_candidates``).

Rules every backend keeps:
- Times are the core's (``now`` arguments, epoch seconds); an item whose ``expires_at`` is
  at or before ``now`` is gone to every read and listing, swept or not.
- ``write_items`` is atomic: every put and delete of the call lands, or none. A put
  replaces the item's value, vectors (None: it has none), ``updated_at``, ``ttl`` and
  ``expires_at``, and keeps ``created_at`` of an item that exists and has not expired.
- ``search_items`` returns the items under the prefix whose value has every top-level
  key of ``search.filter.equals`` equal to that string, sorted by ``updated_at`` newest
  first, then namespace text, then key, then skips ``offset`` and returns ``limit`` of
  them. It may also drop items that ``search.filter.ranges`` rule out (a hint: the rows
  must stay a superset of the filter's matches); the core checks the rest of the filter
  and asks for further pages when too few rows matched. A backend whose
  ``applies_whole_filter`` is set keeps exactly ``search.filter.matches`` instead.
  User strings (keys, values, labels) travel as bound parameters or exact keys, never
  spliced into a query or a pattern.
- With ``refresh``, a read that returns an item with a ``ttl`` moves its ``expires_at``
  to ``now + ttl``.
- Cache entries are (namespace text, key) -> (serde type, bytes) with an optional expiry;
  ``cache_clear`` with namespaces removes exactly the entries of those namespaces. Expired
  entries never pile up: ``cache_set`` removes those expired at ``now`` (or the backend's
  reads do, bounded), since BaseCache has no sweep.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from .store_rules import CompiledFilter
from .sync import BlockingMode

ItemKey = tuple[tuple[str, ...], str]
"""(namespace, key)."""


@dataclass(slots=True)
class StoredItem:
    namespace: tuple[str, ...]
    key: str
    value: bytes
    """The JSON object, as ``core.store_rules.encode_value`` made it."""
    created_at: float
    updated_at: float
    ttl: float | None = None
    """Seconds; a refreshing read moves ``expires_at`` to now + ttl."""
    expires_at: float | None = None
    vectors: dict[str, list[float]] | None = None
    """Indexed path -> embedding; None when the item has none (or they were not asked for)."""


@dataclass(slots=True)
class ItemSearch:
    prefix: tuple[str, ...]
    filter: CompiledFilter
    offset: int
    limit: int | None
    """None: every match (a vector search ranks them all in the core)."""
    now: float
    refresh: bool = False
    with_vectors: bool = False


@dataclass(slots=True)
class CacheEntry:
    namespace: str
    key: str
    type: str
    data: bytes
    expires_at: float | None = None


class StoreBackend(ABC):
    """Async storage of store items; one subclass per storage engine."""

    blocking: ClassVar[BlockingMode] = BlockingMode.IO_LOOP
    name: ClassVar[str] = "store backend"
    applies_whole_filter: ClassVar[bool] = False
    """True where the backend runs ``search.filter.matches`` itself (in process), so its
    page is already the answer."""

    async def setup(self) -> None:  # noqa: B027 - optional hook
        """Create or upgrade the schema (the same versioned migrations as the saver's)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abstractmethod
    async def get_items(self, keys: Sequence[ItemKey], now: float, refresh: bool) -> list[StoredItem | None]:
        """Each key's unexpired item (with its vectors), or None, in the order asked."""

    @abstractmethod
    async def write_items(self, puts: Sequence[StoredItem], deletes: Sequence[ItemKey], now: float) -> None:
        """Apply puts and deletes atomically (see the rules)."""

    @abstractmethod
    async def search_items(self, search: ItemSearch) -> list[StoredItem]:
        """Unexpired items under the prefix matching ``equals`` (see the rules)."""

    async def rank_candidates(self, search: ItemSearch, query: Sequence[float]) -> list[StoredItem] | None:
        """The items (with their vectors) the core's exact ranking needs for the page
        ``search.offset``, ``search.limit`` of a vector search, or None where the backend
        cannot pick them (then the core ranks every match): optional, for backends with
        a vector library. Asked only when ``search.filter`` is exact; the items are under
        the prefix, unexpired and match ``equals``. They must hold every item that can be
        among the ``offset + limit`` best by max-pooled cosine similarity to ``query``
        (a vector library's approximate scores pick them, with a margin that makes that
        certain), and, when fewer than ``offset + limit`` items have vectors, also the
        first ``limit`` items without vectors in search order (the scoreless fill)."""
        return None

    @abstractmethod
    async def item_namespaces(self, prefix: tuple[str, ...], now: float) -> list[tuple[str, ...]]:
        """Every distinct namespace under ``prefix`` (all when empty) holding an unexpired item."""

    @abstractmethod
    async def sweep_items(self, now: float) -> int:
        """Delete expired items; how many went."""


class CacheBackend(ABC):
    """Async storage of node-cache entries; one subclass per storage engine."""

    blocking: ClassVar[BlockingMode] = BlockingMode.IO_LOOP
    name: ClassVar[str] = "cache backend"

    async def setup(self) -> None:  # noqa: B027 - optional hook
        """Create or upgrade the schema."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abstractmethod
    async def cache_get(self, keys: Sequence[tuple[str, str]], now: float) -> list[CacheEntry | None]:
        """Each (namespace text, key)'s unexpired entry, or None, in the order asked."""

    @abstractmethod
    async def cache_set(self, entries: Sequence[CacheEntry], now: float) -> None:
        """Store the entries (replacing any of the same key), atomically, and remove
        entries expired at ``now`` (see the rules)."""

    @abstractmethod
    async def cache_clear(self, namespaces: Sequence[str] | None) -> None:
        """Delete the entries of these namespaces (texts), or every entry for None."""
