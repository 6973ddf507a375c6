"""In-process storage: dictionaries of records, guarded by one lock.

Nothing here suspends, so the blocking API drives these coroutines on the caller's
thread with no loop and no thread hop (``BlockingMode.IN_PROCESS``). Values are still
serialized, so a stored checkpoint never aliases the caller's objects.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..core.backend import Backend
from ..core.codec import Codec
from ..core.lifecycle import RemovalGuard, Removed, ThreadInfo, ThreadQuery
from ..core.records import (
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
)
from ..core.rules import dedupe_writes, fetch_items, metadata_matches, reachable, retained
from ..core.saver import UnifiedCheckpointSaver
from ..core.sync import BlockingMode
from ..errors import BlobsMissingError, ItemsMissingError
from ..registry import check_backend_options

BlobKey = tuple[str, str, str]  # (checkpoint_ns, channel, version)
WriteKey = tuple[str, int]  # (task_id, idx)


@dataclass
class _Thread:
    checkpoints: dict[str, dict[str, CheckpointRecord]] = field(default_factory=dict)
    blobs: dict[BlobKey, BlobRecord] = field(default_factory=dict)
    writes: dict[tuple[str, str], dict[WriteKey, WriteRecord]] = field(default_factory=dict)
    items: dict[bytes, ItemRecord] = field(default_factory=dict)
    first_write: float = 0.0
    last_write: float = 0.0
    own_ttl: float | None = None
    expires_at: float | None = None

    def counts(self) -> Removed:
        return Removed(
            checkpoints=sum(len(by_id) for by_id in self.checkpoints.values()),
            writes=sum(len(writes) for writes in self.writes.values()),
            blobs=len(self.blobs),
            items=len(self.items),
        )

    def stored_bytes(self) -> int:
        return (
            sum(len(r.data) + len(r.metadata) for by_id in self.checkpoints.values() for r in by_id.values())
            + sum(len(b.data) for b in self.blobs.values())
            + sum(len(w.data) for writes in self.writes.values() for w in writes.values())
            + sum(len(i.data) for i in self.items.values())
        )


class MemoryBackend(Backend):
    """``max_threads`` bounds how many threads are kept: past it, the least recently
    written or read thread is evicted whole."""

    blocking: ClassVar[BlockingMode] = BlockingMode.IN_PROCESS
    name: ClassVar[str] = "memory"
    compress: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        checked = check_backend_options("memory", options)
        self.max_threads: int | None = checked["max_threads"]
        # Least recently used first (max_threads evicts from the front).
        self._threads: OrderedDict[str, _Thread] = OrderedDict()
        self._lock = threading.RLock()
        self.evicted = 0
        """Threads evicted by ``max_threads`` so far."""

    def __repr__(self) -> str:
        return f"MemoryBackend(threads={len(self._threads)}, max_threads={self.max_threads})"

    # -- the lifecycle of a thread (call with the lock held) --------------------------------

    def _live(self, thread_id: str) -> _Thread | None:
        """The thread as reads see it: None when absent or expired. A read counts as a
        use for ``max_threads``, and with ``refresh_on_read`` restarts the ttl."""
        thread = self._threads.get(thread_id)
        if thread is None:
            return None
        now = self.lifecycle.now()
        if thread.expires_at is not None and thread.expires_at <= now:
            return None
        self._threads.move_to_end(thread_id)
        if self.lifecycle.refresh_on_read and thread.expires_at is not None:
            thread.expires_at = self.lifecycle.expiry(now, thread.own_ttl)
        return thread

    def _for_write(self, thread_id: str) -> _Thread:
        """The thread a write goes to, stamped now: a fresh one if it was absent or has
        expired (an expired thread's rows never come back)."""
        now = self.lifecycle.now()
        thread = self._threads.get(thread_id)
        if thread is None or (thread.expires_at is not None and thread.expires_at <= now):
            thread = _Thread(first_write=now)
            self._threads[thread_id] = thread
        self._threads.move_to_end(thread_id)
        thread.last_write = now
        thread.expires_at = self.lifecycle.expiry(now, thread.own_ttl)
        if self.max_threads is not None:
            while len(self._threads) > self.max_threads:
                oldest = next(iter(self._threads))
                if oldest == thread_id:
                    break
                del self._threads[oldest]
                self.evicted += 1
        return thread

    # -- writing ---------------------------------------------------------------------------

    async def put_checkpoint(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        items: Sequence[ItemRecord],
        inherited: Collection[str] = (),
    ) -> None:
        ns = record.checkpoint_ns
        with self._lock:
            # Checked under the lock that every delete takes: nothing can go in between.
            thread = self._live(record.thread_id) or _Thread()
            gone = [
                c for c in inherited if (ns, c, record.channel_versions[c]) not in thread.blobs
            ]
            if gone:
                raise BlobsMissingError(record.thread_id, ns, record.checkpoint_id, gone)
            for blob in blobs:
                if (
                    blob.base_version is not None
                    and (record.checkpoint_ns, blob.channel, blob.base_version) not in thread.blobs
                ):
                    raise ItemsMissingError.base_gone(
                        record.thread_id, blob.channel, blob.base_version
                    )
            thread = self._for_write(record.thread_id)
            for item in items:
                thread.items.setdefault(item.ref, item)
            for blob in blobs:
                thread.blobs.setdefault((record.checkpoint_ns, blob.channel, blob.version), blob)
            thread.checkpoints.setdefault(record.checkpoint_ns, {})[record.checkpoint_id] = record

    async def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[WriteRecord],
        items: Sequence[ItemRecord],
        *,
        replace: bool,
    ) -> None:
        with self._lock:
            thread = self._for_write(thread_id)
            for item in items:
                thread.items.setdefault(item.ref, item)
            stored = thread.writes.setdefault((checkpoint_ns, checkpoint_id), {})
            for write in dedupe_writes(writes, replace=replace):
                key = (write.task_id, write.idx)
                if replace or key not in stored:
                    stored[key] = write

    # -- reading ---------------------------------------------------------------------------

    def _assemble(self, thread: _Thread, record: CheckpointRecord) -> StoredCheckpoint:
        stored = StoredCheckpoint(record)
        ns = record.checkpoint_ns
        refs: list[bytes] = []
        for channel, version in record.channel_versions.items():
            blob = thread.blobs.get((ns, channel, version))
            if blob is not None:
                stored.blobs[channel] = blob
                refs.extend(blob.item_refs)
        stored.writes = list(thread.writes.get((ns, record.checkpoint_id), {}).values())
        for write in stored.writes:
            refs.extend(write.item_refs)
        items = thread.items
        stored.items = fetch_items(refs, lambda wanted: [items[r] for r in wanted if r in items])
        return stored

    async def get_checkpoint(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> StoredCheckpoint | None:
        with self._lock:
            thread = self._live(thread_id)
            if thread is None:
                return None
            by_id = thread.checkpoints.get(checkpoint_ns)
            if not by_id:
                return None
            if checkpoint_id is None:
                checkpoint_id = max(by_id)
            record = by_id.get(checkpoint_id)
            return None if record is None else self._assemble(thread, record)

    def _matching(self, query: ListQuery) -> list[tuple[str, str, str]]:
        thread_ids = [query.thread_id] if query.thread_id is not None else list(self._threads)
        found: list[tuple[str, str, str]] = []
        for thread_id in thread_ids:
            thread = self._live(thread_id)
            if thread is None:
                continue
            for ns, by_id in thread.checkpoints.items():
                if query.checkpoint_ns is not None and ns != query.checkpoint_ns:
                    continue
                for checkpoint_id, record in by_id.items():
                    if query.checkpoint_id is not None and checkpoint_id != query.checkpoint_id:
                        continue
                    if query.before is not None and checkpoint_id >= query.before:
                        continue
                    if query.filter and not metadata_matches(
                        Codec.load_metadata(record.metadata, "list"), query.filter
                    ):
                        continue
                    found.append((checkpoint_id, thread_id, ns))
        found.sort(reverse=True)
        return found if query.limit is None else found[: query.limit]

    async def list_checkpoints(self, query: ListQuery) -> AsyncIterator[StoredCheckpoint]:
        with self._lock:
            keys = self._matching(query)
        for checkpoint_id, thread_id, ns in keys:
            with self._lock:
                thread = self._live(thread_id)
                record = None if thread is None else thread.checkpoints.get(ns, {}).get(checkpoint_id)
                stored = None if record is None or thread is None else self._assemble(thread, record)
            if stored is not None:
                yield stored

    async def checkpoint_heads(self, thread_id: str) -> list[CheckpointRecord]:
        with self._lock:
            thread = self._live(thread_id)
            if thread is None:
                return []
            return [by_id[max(by_id)] for by_id in thread.checkpoints.values() if by_id]

    async def list_thread_ids(self) -> list[str]:
        with self._lock:
            now = self.lifecycle.now()
            return sorted(
                t
                for t, thread in self._threads.items()
                if any(thread.checkpoints.values())
                and (thread.expires_at is None or thread.expires_at > now)
            )

    # -- deleting and copying --------------------------------------------------------------

    async def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            self._threads.pop(thread_id, None)

    async def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        runs = set(run_ids)
        with self._lock:
            for thread_id, thread in list(self._threads.items()):
                keep = {
                    (ns, cid)
                    for ns, by_id in thread.checkpoints.items()
                    for cid, record in by_id.items()
                    if record.run_id not in runs
                }
                if len(keep) != sum(len(b) for b in thread.checkpoints.values()):
                    self._retain_locked(thread_id, thread, keep)

    async def retain(self, thread_id: str, keep: Collection[tuple[str, str]]) -> None:
        with self._lock:
            thread = self._live(thread_id)
            if thread is not None:
                keeps = retained(keep)
                self._retain_locked(
                    thread_id,
                    thread,
                    {
                        (ns, cid)
                        for ns, by_id in thread.checkpoints.items()
                        for cid in by_id
                        if keeps(ns, cid)
                    },
                )

    def _retain_locked(self, thread_id: str, thread: _Thread, keep: set[tuple[str, str]]) -> None:
        for ns, by_id in list(thread.checkpoints.items()):
            for checkpoint_id in [c for c in by_id if (ns, c) not in keep]:
                del by_id[checkpoint_id]
                thread.writes.pop((ns, checkpoint_id), None)
            if not by_id:
                del thread.checkpoints[ns]
        for key in [k for k in thread.writes if k not in keep]:
            del thread.writes[key]
        live = reachable(
            ((ns, record.channel_versions) for ns, by_id in thread.checkpoints.items()
             for record in by_id.values()),
            {key: blob.item_refs for key, blob in thread.blobs.items()},
            (w.item_refs for writes in thread.writes.values() for w in writes.values()),
            {ref: item.item_refs for ref, item in thread.items.items()},
        )
        thread.blobs = {k: v for k, v in thread.blobs.items() if k in live.blobs}
        thread.items = {k: v for k, v in thread.items.items() if k in live.items}
        if not thread.checkpoints:
            self._threads.pop(thread_id, None)

    async def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        with self._lock:
            source = self._live(source_thread_id)
            if source is None:
                return
            target = self._for_write(target_thread_id)
            for ns, by_id in source.checkpoints.items():
                target_ns = target.checkpoints.setdefault(ns, {})
                for checkpoint_id, record in by_id.items():
                    target_ns[checkpoint_id] = CheckpointRecord(
                        thread_id=target_thread_id,
                        checkpoint_ns=record.checkpoint_ns,
                        checkpoint_id=record.checkpoint_id,
                        parent_checkpoint_id=record.parent_checkpoint_id,
                        type=record.type,
                        data=record.data,
                        channel_versions=dict(record.channel_versions),
                        metadata=record.metadata,
                        run_id=record.run_id,
                    )
            for blob_key, blob in source.blobs.items():
                target.blobs.setdefault(blob_key, blob)
            for write_key, writes in source.writes.items():
                target.writes.setdefault(write_key, {}).update(writes)
            for ref, item in source.items.items():
                target.items.setdefault(ref, item)


    # -- the lifecycle primitives ----------------------------------------------------------

    async def thread_page(self, query: ThreadQuery) -> list[ThreadInfo]:
        with self._lock:
            now = self.lifecycle.now()
            found: list[ThreadInfo] = []
            for thread_id in sorted(t for t in self._threads if query.after is None or t > query.after):
                thread = self._threads[thread_id]
                if not self._passes(thread, query, now):
                    continue
                info = ThreadInfo(
                    thread_id, first_write=thread.first_write, last_write=thread.last_write,
                    expires_at=thread.expires_at,
                )
                if query.with_stats:
                    info.namespaces = tuple(sorted(ns for ns, by_id in thread.checkpoints.items() if by_id))
                    info.checkpoints = thread.counts().checkpoints
                    info.stored_bytes = thread.stored_bytes()
                found.append(info)
                if len(found) >= query.limit:
                    break
            return found

    @staticmethod
    def _passes(thread: _Thread, query: ThreadQuery, now: float) -> bool:
        expired = thread.expires_at is not None and thread.expires_at <= now
        if not query.everything and (expired or not any(thread.checkpoints.values())):
            return False
        if query.expired_at is not None and not (
            thread.expires_at is not None and thread.expires_at <= query.expired_at
        ):
            return False
        if query.updated_after is not None and not thread.last_write > query.updated_after:
            return False
        if query.updated_before is not None and not thread.last_write < query.updated_before:
            return False
        return not query.filter or any(
            metadata_matches(Codec.load_metadata(record.metadata, "list_threads"), query.filter)
            for by_id in thread.checkpoints.values()
            for record in by_id.values()
        )

    async def remove_threads(self, thread_ids: Sequence[str], guard: RemovalGuard) -> Removed:
        removed = Removed()
        with self._lock:
            for thread_id in dict.fromkeys(thread_ids):
                thread = self._threads.get(thread_id)
                if thread is None:
                    continue
                if guard.written_before is not None and not thread.last_write < guard.written_before:
                    continue
                if guard.expired_at is not None and not (
                    thread.expires_at is not None and thread.expires_at <= guard.expired_at
                ):
                    continue
                del self._threads[thread_id]
                counts = thread.counts()
                counts.thread_ids.append(thread_id)
                removed.add(counts)
        return removed

    async def set_thread_ttl(self, thread_id: str, ttl: float) -> bool:
        with self._lock:
            thread = self._live(thread_id)
            if thread is None or not any(thread.checkpoints.values()):
                return False
            thread.own_ttl = ttl
            thread.expires_at = self.lifecycle.expiry(thread.last_write, ttl)
            return True

    async def thread_residue(self, thread_ids: Sequence[str]) -> list[str]:
        with self._lock:
            return [t for t in thread_ids if t in self._threads]


class MemorySaver(UnifiedCheckpointSaver):
    """A checkpointer that keeps everything in this process; for tests, demos and caching.

    ``max_threads=N`` keeps at most N threads, evicting the least recently used whole;
    with ``ttl`` too, a thread also goes that long after its last write."""

    def __init__(self, *, max_threads: int | None = None, **options: Any) -> None:
        super().__init__(MemoryBackend(max_threads=max_threads), **options)
