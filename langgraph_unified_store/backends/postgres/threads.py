"""The data lifecycle of PostgresBackend, apart from its checkpoint storage: writes
that purge an expired thread and run again, the ttl refresh on reads, and the lifecycle
primitives of ``core.backend`` over the lus_threads table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

import orjson

from ...core.backend import Backend
from ...core.lifecycle import RemovalGuard, Removed, ThreadInfo, ThreadQuery
from ...errors import BackendUnavailableError
from .connection import Connection, Operation
from .sql import (
    THREAD_AFTER_CLAUSE,
    THREAD_EXPIRED_CLAUSE,
    THREAD_MATCHES_CLAUSE,
    THREAD_ORDER_BY_EXPIRY,
    THREAD_ORDER_BY_ID,
    THREAD_ORDER_BY_LAST_WRITE,
    THREAD_SHOWN_CLAUSE,
    THREAD_UPDATED_AFTER_CLAUSE,
    THREAD_UPDATED_BEFORE_CLAUSE,
    Statements,
)

T = TypeVar("T")

# Times a write tries again after removing its expired thread (only a clock that goes
# backwards can make a second try find it expired again).
WRITE_ATTEMPTS: Final = 3
# Row kinds (first key byte) of lus_store, as REMOVE_THREADS reports them.
CHECKPOINT_ROWS: Final = ord("c")
WRITES_ROWS: Final = ord("w")
BLOB_ROWS: Final = ord("b")
ITEM_ROWS: Final = ord("i")


class ThreadLifecycle(Backend):
    """The part of PostgresBackend that keeps and reads the lus_threads rows (its base
    class): what a write, a read and the lifecycle primitives do with them."""

    # What PostgresBackend provides (set in its __init__, or defined there).
    _statements: Statements

    if TYPE_CHECKING:

        async def _run(self, operation: Operation[T], *, setup: bool = True) -> T: ...

        async def _locked(self, conn: Connection, thread_ids: Sequence[str]) -> None: ...

    # -- the lifecycle of a thread ------------------------------------------------------------

    async def _write_live(
        self,
        conn: Connection,
        thread_id: str,
        now: float,
        write: Callable[[], Awaitable[Sequence[Any]]],
    ) -> list[Any]:
        """Run a write statement that writes nothing to an expired thread and returns a
        row of NULLs instead (PUT_CHECKPOINT, PUT_WRITES); then remove the thread and run
        it again. Returns the statement's other rows."""
        for _ in range(WRITE_ATTEMPTS):
            rows = list(await write())
            if not any(row[0] is None for row in rows):
                return rows
            await self._purge_expired(conn, thread_id, now)
        raise BackendUnavailableError(
            f"thread {thread_id!r} kept expiring while it was written (is the clock going backwards?)"
        )

    async def _purge_expired(self, conn: Connection, thread_id: str, now: float) -> None:
        """Remove a thread that has expired by ``now``, whole, under its exclusive lock
        (nothing if it was written again meanwhile)."""
        async with conn.transaction():
            await self._locked(conn, [thread_id])
            await conn.fetch(self._statements.remove_threads, [thread_id], None, now)

    async def _refresh(self, conn: Connection, thread_ids: Collection[str], now: float) -> None:
        """With ``refresh_on_read``, restart the ttl of the threads a read found (one
        statement, only then)."""
        if self.lifecycle.refresh_on_read and thread_ids:
            await conn.execute(
                self._statements.refresh_expiry, list(thread_ids), now, self.lifecycle.ttl
            )

    # -- the lifecycle primitives -------------------------------------------------------------

    async def thread_page(self, query: ThreadQuery) -> list[ThreadInfo]:
        args: list[Any] = [query.limit]
        clauses: list[str] = []

        def pin(clause: str, value: Any) -> None:
            args.append(value)
            clauses.append(clause.replace("$?", f"${len(args)}"))

        if query.after is not None:
            pin(THREAD_AFTER_CLAUSE, query.after)
        if query.updated_after is not None:
            pin(THREAD_UPDATED_AFTER_CLAUSE, query.updated_after)
        if query.updated_before is not None:
            pin(THREAD_UPDATED_BEFORE_CLAUSE, query.updated_before)
        if query.expired_at is not None:
            pin(THREAD_EXPIRED_CLAUSE, query.expired_at)
        if not query.everything:
            pin(THREAD_SHOWN_CLAUSE, self.lifecycle.now())
        if query.filter:
            # core.lifecycle.check_thread_filter let through only what JSON can hold.
            pin(THREAD_MATCHES_CLAUSE, orjson.dumps(query.filter).decode())
        # A listing walks the primary key; a removal, the index of what it looks for.
        if query.ordered:
            order = THREAD_ORDER_BY_ID
        elif query.expired_at is not None:
            order = THREAD_ORDER_BY_EXPIRY
        elif query.updated_before is not None:
            order = THREAD_ORDER_BY_LAST_WRITE
        elif query.filter:
            order = ""
        else:
            order = THREAD_ORDER_BY_ID
        statement = self._statements.thread_page(clauses, order, stats=query.with_stats)

        async def fetch(conn: Connection) -> list[Any]:
            return list(await conn.fetch(statement, *args))

        found = []
        for row in await self._run(fetch):
            info = ThreadInfo(
                row["thread_id"],
                first_write=row["first_write"],
                last_write=row["last_write"],
                expires_at=row["expires_at"],
            )
            if query.with_stats:
                info.namespaces = tuple(sorted(bytes(p)[:-1].decode() for p in row["namespaces"] or ()))
                info.checkpoints = row["checkpoints"]
                info.stored_bytes = row["stored_bytes"]
            found.append(info)
        return found

    async def remove_threads(self, thread_ids: Sequence[str], guard: RemovalGuard) -> Removed:
        ids = list(dict.fromkeys(thread_ids))
        removed = Removed()
        if not ids:
            return removed
        statement = self._statements.remove_threads
        args = (ids, guard.written_before, guard.expired_at)

        async def remove(conn: Connection) -> list[Any]:
            async with conn.transaction():
                await self._locked(conn, ids)
                return list(await conn.fetch(statement, *args))

        gone: set[str] = set()
        for thread_id, kind, rows in await self._run(remove):
            gone.add(thread_id)
            if kind == CHECKPOINT_ROWS:
                removed.checkpoints += rows
            elif kind == WRITES_ROWS:
                removed.writes += rows
            elif kind == BLOB_ROWS:
                removed.blobs += rows
            elif kind == ITEM_ROWS:
                removed.items += rows
        removed.thread_ids = [t for t in ids if t in gone]
        return removed

    async def set_thread_ttl(self, thread_id: str, ttl: float) -> bool:
        statement = self._statements.set_thread_ttl
        args = (thread_id, ttl, self.lifecycle.now())

        async def update(conn: Connection) -> bool:
            return bool(await conn.fetch(statement, *args))

        return await self._run(update)

    async def thread_residue(self, thread_ids: Sequence[str]) -> list[str]:
        statement = self._statements.thread_residue
        ids = list(thread_ids)

        async def fetch(conn: Connection) -> list[str]:
            return [row[0] for row in await conn.fetch(statement, ids)]

        return await self._run(fetch)
