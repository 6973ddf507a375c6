"""The storage contract: what each backend module provides under the shared saver core.

A backend is a small async store of the records in ``core.records``. It knows
nothing of LangGraph's semantics, serde, encryption or unified state; the core
(``core.saver``) does all of that once for every backend.

Rules every backend keeps:
- ``put_checkpoint`` is atomic: the checkpoint, its new blobs and items land together or not at all.
  A blob with a ``base_version`` reuses the items of that stored blob without sending them: if
  that blob is gone, raise ``ItemsMissingError`` and write nothing (the core then re-sends all).
- Blobs are keyed (thread_id, checkpoint_ns, channel, version) and items (thread_id, ref);
  both are insert-if-absent (a key always names the same content).
- Writes are keyed (thread_id, checkpoint_ns, checkpoint_id, task_id, idx); ``replace``
  says whether an existing row is overwritten or kept.
- Reading a checkpoint returns every item its blobs and writes reference (``item_refs``)
  and every item *those* items reference (a segment's elements): two levels, no more.
- Deleting checkpoints (delete_for_runs, retain) also removes their writes, then every
  blob no surviving checkpoint names in ``channel_versions``, then every item no surviving
  blob, write or referenced segment references. Nothing that survives may depend on
  something removed.
- Every user-supplied string (thread ids, filter keys and values) travels as a bound
  parameter or an exact key, never spliced into a query or a pattern.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterable,
    Sequence,
)
from typing import Any, ClassVar, Generic, TypeVar

from .limits import DEFAULT_READ_LIMITS, ReadLimits
from .records import (
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
)

T = TypeVar("T")


class Backend(ABC):
    """Async storage of checkpoint records; one subclass per storage engine."""

    inline: ClassVar[bool] = False
    """True when no method ever suspends (pure in-process storage), so the sync API
    may drive coroutines directly instead of handing them to the I/O thread."""

    blocks_inline: ClassVar[bool] = False
    """True when the blocking API may run the core on the caller's thread, with the
    backend blocking on its I/O there (``core.sync.BLOCKING_INLINE`` is set): no hop to
    the I/O loop thread and back on every call."""

    name: ClassVar[str] = "backend"

    compress: ClassVar[bool] = True
    """Whether list items and checkpoint skeletons are stored deflated (pointless for
    in-process storage)."""

    read_limits: ReadLimits = DEFAULT_READ_LIMITS
    """The saver's limits on decoding stored bytes (set by the saver), for a backend
    that transforms what it stores (Redis deflates records)."""

    async def setup(self) -> None:  # noqa: B027 - optional hook, most backends need it
        """Create or upgrade the schema. Idempotent; backends also call it lazily."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections held for the running event loop (and all others it can)."""

    @abstractmethod
    async def put_checkpoint(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        items: Sequence[ItemRecord],
    ) -> None: ...

    @abstractmethod
    async def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[WriteRecord],
        items: Sequence[ItemRecord],
        *,
        replace: bool,
    ) -> None: ...

    @abstractmethod
    async def get_checkpoint(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> StoredCheckpoint | None:
        """The named checkpoint, or the newest of (thread_id, checkpoint_ns) when id is None."""

    @abstractmethod
    def list_checkpoints(self, query: ListQuery) -> AsyncIterator[StoredCheckpoint]:
        """Matching checkpoints, newest first; should stream rather than load all at once."""

    @abstractmethod
    async def checkpoint_heads(self, thread_id: str) -> list[CheckpointRecord]:
        """The newest checkpoint record of each namespace of a thread."""

    @abstractmethod
    async def delete_thread(self, thread_id: str) -> None: ...

    @abstractmethod
    async def delete_for_runs(self, run_ids: Sequence[str]) -> None: ...

    @abstractmethod
    async def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None: ...

    @abstractmethod
    async def retain(self, thread_id: str, keep: Collection[tuple[str, str]]) -> None:
        """Delete every checkpoint of the thread except the (checkpoint_ns, checkpoint_id)
        pairs in ``keep``, with their writes, then unreferenced blobs and items."""

    @abstractmethod
    async def list_thread_ids(self) -> list[str]:
        """Every thread that has at least one checkpoint, sorted."""


class ItemCache:
    """Items recently read back from storage, per (thread_id, ref); bounded by bytes.

    Filled from reads only, so an item is cached once storage has shown it whole.

    Items are content-addressed and never change, so a cached item is always right
    while its thread exists. Backends drop a thread's entries when they delete from it,
    so the cache never hides a row that storage no longer has.
    """

    def __init__(self, max_bytes: int = 32 * 1024 * 1024) -> None:
        self._items: OrderedDict[tuple[str, bytes], ItemRecord] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, thread_id: str, ref: bytes) -> ItemRecord | None:
        with self._lock:
            item = self._items.get((thread_id, ref))
            if item is not None:
                self._items.move_to_end((thread_id, ref))
            return item

    def put(self, thread_id: str, items: Iterable[ItemRecord]) -> None:
        with self._lock:
            for item in items:
                key = (thread_id, item.ref)
                if key not in self._items:
                    self._items[key] = item
                    self._bytes += len(item.data) + 64
            while self._bytes > self._max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped.data) + 64

    def forget(self, thread_id: str | None = None) -> None:
        """Drop a thread's items (every thread's, when None)."""
        with self._lock:
            if thread_id is None:
                self._items.clear()
                self._bytes = 0
                return
            for key in [k for k in self._items if k[0] == thread_id]:
                self._bytes -= len(self._items.pop(key).data) + 64


class LoopLocal(Generic[T]):
    """One resource (a pool, a connection, a client) per event loop.

    asyncpg pools, redis.asyncio clients and asyncio locks belong to the loop that
    made them. The async API runs on the caller's loop and the sync API on the
    saver's private I/O loop, so each gets its own resource.
    """

    def __init__(
        self,
        factory: Callable[[], Awaitable[T]],
        closer: Callable[[T], Coroutine[Any, Any, None]],
    ) -> None:
        self._factory = factory
        self._closer = closer
        self._resources: dict[asyncio.AbstractEventLoop, T] = {}
        self._creating: dict[asyncio.AbstractEventLoop, asyncio.Future[T]] = {}
        self._guard = threading.Lock()

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        resource = self._resources.get(loop)
        if resource is not None:
            return resource
        with self._guard:
            # Resources of loops that have ended can never be used again (each
            # asyncio.run() makes a new loop): drop them so their sockets close.
            for dead in [other for other in self._resources if other.is_closed()]:
                self._resources.pop(dead)
            pending = self._creating.get(loop)
            owner = pending is None
            if owner:
                pending = loop.create_future()
                self._creating[loop] = pending
        assert pending is not None
        if not owner:
            return await asyncio.shield(pending)
        try:
            resource = await self._factory()
        except BaseException as exc:
            with self._guard:
                self._creating.pop(loop, None)
            if not pending.done():
                pending.set_exception(exc)
                pending.exception()  # mark retrieved: waiters re-raise it
            raise
        with self._guard:
            self._resources[loop] = resource
            self._creating.pop(loop, None)
        pending.set_result(resource)
        return resource

    async def aclose(self) -> None:
        """Close the current loop's resource and, where their loops still run, the others."""
        current = asyncio.get_running_loop()
        with self._guard:
            resources = list(self._resources.items())
            self._resources.clear()
        for loop, resource in resources:
            if loop is current:
                await self._closer(resource)
            elif loop.is_running() and not loop.is_closed():
                future = asyncio.run_coroutine_threadsafe(self._closer(resource), loop)
                with contextlib.suppress(Exception):
                    await asyncio.wrap_future(future)
