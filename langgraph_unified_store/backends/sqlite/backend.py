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

import sqlite3
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, TypeVar

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
from ...core.sync import BlockingMode, in_blocking_call
from ...errors import BackendUnavailableError, InvalidConfigError, SaverClosedError
from ...registry import DEFAULT_BUSY_TIMEOUT, DEFAULT_SYNCHRONOUS, check_backend_options
from . import operations
from .connection import SQLiteConnection
from .migrations import migrate

T = TypeVar("T")

LIST_PAGE_SIZE: Final = 50
CACHE_FORGET_EACH: Final = 8
"""Removed threads whose cached items are dropped one thread at a time; more: all."""


class SQLiteBackend(Backend):
    name: ClassVar[str] = "sqlite"
    blocking: ClassVar[BlockingMode] = BlockingMode.CALLER_THREAD

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        synchronous: str = DEFAULT_SYNCHRONOUS,
    ) -> None:
        checked = check_backend_options(
            "sqlite", {"busy_timeout": busy_timeout, "synchronous": synchronous}
        )
        self.path = str(path)
        self.busy_timeout = checked["busy_timeout"]
        self.synchronous = checked["synchronous"]
        self.items = ItemCache()
        self._connection = SQLiteConnection(self.path, self._prepare, owner=repr(self))

    def __repr__(self) -> str:
        return f"SQLiteBackend(path={self.path!r})"

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Pragmas and migrations of a new connection."""
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        if self.path != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {self.synchronous}")
        migrate(db)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(db, *args)``, on the caller's thread for a blocking call, else on the
        connection's thread; SQLite's errors as the saver's."""
        try:
            if in_blocking_call():
                return self._connection.run_blocking(fn, *args)
            return await self._connection.run(fn, *args)
        except UnicodeEncodeError as exc:
            raise InvalidConfigError(
                "SQLite stores text as UTF-8, which cannot hold the lone surrogate "
                f"{exc.object[exc.start : exc.end]!r}: the thread id (or another name in this "
                "call) is not valid Unicode; nothing was written"
            ) from None
        except sqlite3.OperationalError as exc:
            if str(exc) == "interrupted":  # only close interrupts: the transaction rolled back
                raise SaverClosedError(repr(self)) from exc
            if "locked" in str(exc) or "busy" in str(exc):
                raise BackendUnavailableError(
                    f"cannot use SQLite database {self.path!r}: another connection held its "
                    f"lock for longer than busy_timeout ({self.busy_timeout:g} s); nothing "
                    "was written"
                ) from exc
            raise

    async def setup(self) -> None:
        if in_blocking_call():
            self._connection.get_blocking()
        else:
            await self._connection.get()

    async def aclose(self) -> None:
        await self._connection.aclose(blocking=in_blocking_call())

    def interrupt(self) -> None:
        self._connection.interrupt()

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
