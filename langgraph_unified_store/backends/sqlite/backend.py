"""SQLite storage on aiosqlite: a local file, no server.

Each operation is one plain sqlite3 function (``operations``) run on the connection's
thread, so a whole transaction costs one thread hop and never interleaves with another
operation on the same connection. Write transactions start with ``BEGIN IMMEDIATE`` and
the connection waits ``busy_timeout`` for other processes, so many writers never see
"database is locked" (langchain-ai/langgraph#8136). WAL lets readers run beside a writer.

The lifecycle (``core.lifecycle``) lives in the ``threads`` table: each write stamps its
thread's row in the write's own transaction (removing the thread first if it has
expired), reads probe the row by primary key, and sweeps, age-based deletes and listings
search its indexes on last write and expiry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path
from typing import ClassVar, Final

from ...core.backend import Backend, ItemCache
from ...core.lifecycle import THREAD_BATCH, RemovalGuard, Removed, ThreadInfo, ThreadQuery
from ...core.records import (
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
)
from ...core.sync import BlockingMode
from ...registry import DEFAULT_BUSY_TIMEOUT, DEFAULT_SYNCHRONOUS
from . import operations
from .database import SQLiteFile

LIST_PAGE_SIZE: Final = 50
CACHE_FORGET_EACH: Final = 8
"""Removed threads whose cached items are dropped one thread at a time; more: all."""


class SQLiteBackend(SQLiteFile, Backend):
    name: ClassVar[str] = "sqlite"
    blocking: ClassVar[BlockingMode] = BlockingMode.CALLER_THREAD

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        synchronous: str = DEFAULT_SYNCHRONOUS,
    ) -> None:
        super().__init__(path, busy_timeout=busy_timeout, synchronous=synchronous)
        self.items = ItemCache()

    def __repr__(self) -> str:
        return f"SQLiteBackend(path={self.path!r})"

    def _stamp(self) -> operations.Stamp:
        """The saver's lifecycle now: what an operation stamps and judges expiry by."""
        clock = self.lifecycle
        return operations.Stamp(clock.now(), clock.ttl, clock.refresh_on_read)

    # -- writing --------------------------------------------------------------------------

    async def put_checkpoint(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        items: Sequence[ItemRecord],
        inherited: Collection[str] = (),
    ) -> None:
        await self._run(
            operations.put_checkpoint, record, blobs, items, inherited, self._stamp(), self.items
        )

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
        await self._run(
            operations.put_writes,
            thread_id,
            checkpoint_ns,
            checkpoint_id,
            writes,
            items,
            replace,
            self._stamp(),
            self.items,
        )

    # -- reading --------------------------------------------------------------------------

    async def get_checkpoint(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> StoredCheckpoint | None:
        return await self._run(
            operations.get_checkpoint,
            thread_id,
            checkpoint_ns,
            checkpoint_id,
            self.items,
            self._stamp(),
        )

    async def list_checkpoints(self, query: ListQuery) -> AsyncIterator[StoredCheckpoint]:
        cursor: tuple[str, str, str] | None = None
        remaining = query.limit
        while remaining is None or remaining > 0:
            page_size = LIST_PAGE_SIZE if remaining is None else min(LIST_PAGE_SIZE, remaining)
            page = await self._run(
                operations.list_page, query, cursor, page_size, self.items, self._stamp()
            )
            for stored in page:
                yield stored
            if len(page) < page_size:
                return
            last = page[-1].record
            cursor = (last.checkpoint_id, last.thread_id, last.checkpoint_ns)
            if remaining is not None:
                remaining -= len(page)

    async def checkpoint_heads(self, thread_id: str) -> list[CheckpointRecord]:
        return await self._run(operations.heads, thread_id, self._stamp())

    async def list_thread_ids(self) -> list[str]:
        return await self._run(operations.thread_ids, self.lifecycle.now())

    # -- deleting and copying -------------------------------------------------------------

    async def delete_thread(self, thread_id: str) -> None:
        self.items.forget(thread_id)
        await self._run(operations.delete_thread, thread_id)

    async def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.items.forget()
        await self._run(operations.delete_for_runs, list(run_ids))

    async def retain(self, thread_id: str, keep: Collection[tuple[str, str]]) -> None:
        self.items.forget(thread_id)
        await self._run(operations.retain, thread_id, set(keep))

    async def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._run(
            operations.copy_thread, source_thread_id, target_thread_id, self._stamp(), self.items
        )

    # -- the lifecycle (rules in core.backend; table threads) ----------------------------

    async def thread_page(self, query: ThreadQuery) -> list[ThreadInfo]:
        return await self._run(operations.thread_page, query, self.lifecycle.now())

    async def remove_threads(self, thread_ids: Sequence[str], guard: RemovalGuard) -> Removed:
        removed = Removed()
        ids = list(dict.fromkeys(thread_ids))
        for start in range(0, len(ids), THREAD_BATCH):
            batch = await self._run(operations.remove_threads, ids[start : start + THREAD_BATCH], guard)
            # Forgetting one thread walks the whole cache: past a few, drop it all.
            if len(batch.thread_ids) > CACHE_FORGET_EACH:
                self.items.forget()
            else:
                for thread_id in batch.thread_ids:
                    self.items.forget(thread_id)
            removed.add(batch)
        return removed

    async def set_thread_ttl(self, thread_id: str, ttl: float) -> bool:
        return await self._run(operations.set_thread_ttl, thread_id, ttl, self.lifecycle.now())

    async def thread_residue(self, thread_ids: Sequence[str]) -> list[str]:
        return await self._run(operations.thread_residue, list(thread_ids))
