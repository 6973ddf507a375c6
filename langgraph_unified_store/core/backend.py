"""The storage contract: what each backend module provides under the shared saver core.

A backend is a small async store of the records in ``core.records``. It knows
nothing of LangGraph's semantics, serde, encryption or unified state; the core
(``core.saver``) does all of that once for every backend.

Rules every backend keeps:
- ``put_checkpoint`` is atomic: the checkpoint, its new blobs and items land together or not at all.
- A put never commits a checkpoint that names a blob or item which no longer exists. Inside
  its atomic write it checks what it relies on without sending: a blob with a
  ``base_version`` reuses the items of that stored blob (if that blob is gone, raise
  ``ItemsMissingError``); every channel in ``inherited`` names its stored blob at the
  version in ``record.channel_versions`` (if one is gone, raise ``BlobsMissingError``
  with those channels). Either way nothing is written, and the core re-sends every value
  and retries once. A blob or item the put sends that is already stored must still be
  stored when the put commits: garbage collection never interleaves with a put of the
  same thread (a lock, a transaction or a script, per backend).
- Reading never hides a missing row: a checkpoint whose blob is gone is returned without
  it, and the core, which knows from the checkpoint which channels must have one, raises
  ``CorruptDataError`` naming the channel (a missing item, likewise).
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

The lifecycle (``core.lifecycle``; the saver sets ``lifecycle``, a ``ThreadClock``):
- Every thread has a first and a last write time and an expiry, stamped by
  ``lifecycle.now()``: ``put_checkpoint``, ``put_writes`` and ``copy_thread`` (the
  target) set its last write to now (its first too, when new) and its expiry to
  ``lifecycle.expiry(now, own ttl)``. With ``lifecycle.refresh_on_read``, a read that
  finds a thread with an expiry moves its expiry as a write would (not its last write).
- A thread whose expiry is at or before ``lifecycle.now()`` is gone to every read
  (``get_checkpoint``, ``list_checkpoints``, ``checkpoint_heads``, ``list_thread_ids``,
  ``thread_page`` unless ``everything``) whether or not storage has removed it yet, and a
  write to it first removes it, in the same atomic step, so nothing expired comes back.
- ``delete_thread``, ``remove_threads`` and a GC that leaves a thread no checkpoint
  remove its lifecycle row or keys too; ``thread_residue`` finds nothing of it after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterable,
    Sequence,
)
from typing import Any, ClassVar, Final, Generic, TypeVar, cast

from .health import BackendProbe
from .lifecycle import (
    TTL_MAX_DATETIME,
    RemovalGuard,
    Removed,
    ThreadClock,
    ThreadInfo,
    ThreadQuery,
)
from .limits import DEFAULT_READ_LIMITS, ReadLimits
from .records import (
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
)
from .rules import retained as retained  # its home is core.rules; importable here as before
from .sync import BlockingMode

T = TypeVar("T")

logger = logging.getLogger(__name__)

RESOURCE_CLOSE_TIMEOUT: Final = 6.0
"""Seconds ``LoopLocal.aclose`` waits for one resource to close on its loop."""


class Backend(ABC):
    """Async storage of checkpoint records; one subclass per storage engine."""

    blocking: ClassVar[BlockingMode] = BlockingMode.IO_LOOP
    """How the blocking API drives this backend's coroutines (``core.sync``): on the
    saver's private I/O loop unless the backend says otherwise."""

    name: ClassVar[str] = "backend"

    compress: ClassVar[bool] = True
    """Whether list items and checkpoint skeletons are stored deflated (pointless for
    in-process storage)."""

    read_limits: ReadLimits = DEFAULT_READ_LIMITS
    """The saver's limits on decoding stored bytes (set by the saver), for a backend
    that transforms what it stores (Redis deflates records)."""

    lifecycle: ThreadClock = ThreadClock()
    """The saver's ttl, refresh rule and clock (set by the saver)."""

    max_ttl: ClassVar[float] = TTL_MAX_DATETIME
    """The longest ttl (seconds) this storage can keep."""

    async def setup(self) -> None:  # noqa: B027 - optional hook, most backends need it
        """Create or upgrade the schema. Idempotent; backends also call it lazily."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections held for the running event loop (and all others it can).
        Bounded: a connection that does not close in time is dropped."""

    def interrupt(self) -> None:  # noqa: B027 - optional hook
        """Abort I/O that calls are doing on their callers' own threads
        (``BlockingMode.CALLER_THREAD``): close's last resort once ``close_timeout`` has
        passed. Thread-safe, never blocks."""

    async def probe(self, timeout: float) -> BackendProbe:
        """Facts for a health check (``core.health`` judges them): where the storage is,
        a round trip, the server's and the stored schema's versions. Within ``timeout``
        seconds; creates, migrates and sets up nothing (it may run before ``setup``);
        storage that cannot be reached raises ``BackendUnavailableError``. In-process
        storage has nothing to look at."""
        return BackendProbe()

    @abstractmethod
    async def put_checkpoint(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        items: Sequence[ItemRecord],
        inherited: Collection[str] = (),
    ) -> None:
        """Store a checkpoint with its new blobs and items; ``inherited`` are the channels
        whose blob (at the record's version) it names without sending (see the rules)."""

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

    async def checkpoint_lineage(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> AsyncGenerator[StoredCheckpoint, None]:
        """The named checkpoint (the newest when id is None), then its ancestors by
        parent id, nearest first; nothing when it does not exist. One read: a single
        ``list_checkpoints`` of the namespace, newest first (a parent is always older
        than its child), skipping other branches; the caller may stop early."""
        wanted = checkpoint_id
        query = ListQuery(thread_id=thread_id, checkpoint_ns=checkpoint_ns)
        listing = cast(AsyncGenerator[StoredCheckpoint, None], self.list_checkpoints(query))
        async with contextlib.aclosing(listing) as listed:
            async for stored in listed:
                record = stored.record
                if wanted is not None and record.checkpoint_id != wanted:
                    continue
                yield stored
                wanted = record.parent_checkpoint_id
                if wanted is None:
                    return

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
        pairs in ``keep``, with their writes, then unreferenced blobs and items.

        Never a checkpoint newer than the newest kept one of its namespace, nor one of a
        namespace with none kept (``retained``): those were put after the caller chose
        what to keep, and may be the thread's head now."""

    @abstractmethod
    async def list_thread_ids(self) -> list[str]:
        """Every thread that has at least one checkpoint, sorted."""

    # -- the lifecycle (core.lifecycle holds the policy) -------------------------------------

    @abstractmethod
    async def thread_page(self, query: ThreadQuery) -> list[ThreadInfo]:
        """Up to ``query.limit`` threads matching ``query``, sorted by thread id, found
        through an index (never by loading every thread). Without ``everything``, only
        threads with a checkpoint that have not expired."""

    @abstractmethod
    async def remove_threads(self, thread_ids: Sequence[str], guard: RemovalGuard) -> Removed:
        """Delete each named thread whole (every row or key, lifecycle ones included)
        that still passes ``guard`` once locked against writers of that thread; returns
        the ids removed and counts of the checkpoints, writes, blobs and items removed.
        A thread that fails the guard, or is gone, is left out."""

    @abstractmethod
    async def set_thread_ttl(self, thread_id: str, ttl: float) -> bool:
        """Store the thread's own ttl (``lifecycle.PINNED``: never expires) and move its
        expiry to match; False when the thread has no checkpoint (or has expired)."""

    @abstractmethod
    async def thread_residue(self, thread_ids: Sequence[str]) -> list[str]:
        """Those of ``thread_ids`` of which any row or key is still stored, expired or
        not, lifecycle rows and global index entries included (erasure's re-check)."""


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


class _Held:
    """Whether a loop's resource has been closed or dropped (by ``aclose``, or as its
    loop ended), so that it is closed once."""

    __slots__ = ("released",)

    def __init__(self) -> None:
        self.released = False


def _finish(sentinel: AsyncGenerator[None, None]) -> None:
    """End a released resource's sentinel without its loop (it no longer awaits)."""
    closing = sentinel.aclose()
    try:
        closing.send(None)
    except (StopIteration, RuntimeError):  # done; or its loop is closing it right now
        return
    closing.close()


class LoopLocal(Generic[T]):
    """One resource (a pool, a connection, a client) per event loop.

    asyncpg pools, redis.asyncio clients and asyncio locks belong to the loop that
    made them. The async API runs on the caller's loop and the sync API on the
    saver's private I/O loop, so each gets its own resource.

    A loop can end before anyone closes its resource (``asyncio.run()`` returns): each
    resource comes with a sentinel async generator on its loop, which the loop closes as
    it shuts down (``asyncio.run`` and the I/O loop both do), and which then closes the
    resource while the loop still runs, so that no connection is left unclosed.
    """

    def __init__(
        self,
        factory: Callable[[], Awaitable[T]],
        closer: Callable[[T], Coroutine[Any, Any, None]],
        abandon: Callable[[T], None] | None = None,
    ) -> None:
        self._factory = factory
        self._closer = closer
        # Last resort for a resource whose loop has stopped: release it without that loop.
        self._abandon = abandon
        self._resources: dict[asyncio.AbstractEventLoop, T] = {}
        self._sentinels: dict[asyncio.AbstractEventLoop, tuple[AsyncGenerator[None, None], _Held]] = {}
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
            dead = [(o, self._resources.pop(o)) for o in list(self._resources) if o.is_closed()]
            pending = self._creating.get(loop)
            owner = pending is None
            if owner:
                pending = loop.create_future()
                self._creating[loop] = pending
        for other, stale in dead:
            self._drop(other, stale)
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
        held = _Held()
        sentinel = self._close_with_loop(loop, resource, held)
        await sentinel.__anext__()  # started on this loop, which now tracks it
        with self._guard:
            self._resources[loop] = resource
            self._sentinels[loop] = (sentinel, held)
            self._creating.pop(loop, None)
        pending.set_result(resource)
        return resource

    async def _close_with_loop(
        self, loop: asyncio.AbstractEventLoop, resource: T, held: _Held
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            # The loop is shutting down its async generators: it is ending.
            with self._guard:
                mine = not held.released
                held.released = True
                if mine:
                    if self._resources.get(loop) is resource:
                        del self._resources[loop]
                    self._sentinels.pop(loop, None)
            if mine:
                await self._close_here(resource)

    async def _close_here(self, resource: T) -> None:
        try:
            await asyncio.wait_for(self._closer(resource), RESOURCE_CLOSE_TIMEOUT)
        except Exception as exc:
            logger.warning("could not close %r: %s: %s", resource, type(exc).__name__, exc)

    def _release(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Mark a loop's resource as handled; False if its sentinel already closed it."""
        with self._guard:
            entry = self._sentinels.pop(loop, None)
            if entry is None:
                return True
            sentinel, held = entry
            if held.released:
                return False
            held.released = True
        _finish(sentinel)
        return True

    def _drop(self, loop: asyncio.AbstractEventLoop, resource: T) -> None:
        """A resource whose loop has stopped: nothing can close it politely."""
        if self._release(loop) and self._abandon is not None:
            with contextlib.suppress(Exception):
                self._abandon(resource)

    async def aclose(self) -> None:
        """Close the current loop's resource and, where their loops still run, the others;
        each within ``RESOURCE_CLOSE_TIMEOUT`` (a loop that is busy or blocked cannot hold
        close up). Resources of loops that have stopped are abandoned."""
        current = asyncio.get_running_loop()
        with self._guard:
            resources = list(self._resources.items())
            self._resources.clear()
        for loop, resource in resources:
            if loop.is_closed() or not loop.is_running():
                self._drop(loop, resource)
            elif not self._release(loop):
                continue
            elif loop is current:
                await self._close_here(resource)
            else:
                try:
                    future = asyncio.run_coroutine_threadsafe(self._close_here(resource), loop)
                    await asyncio.wait_for(asyncio.wrap_future(future), RESOURCE_CLOSE_TIMEOUT + 1)
                except Exception as exc:  # that loop is blocked, or stopped meanwhile
                    logger.warning("could not close %r: %s: %s", resource, type(exc).__name__, exc)
