"""PostgreSQL storage on asyncpg: few round trips, prepared statements, no saver-wide lock.

Why it is shaped this way:
- Every read of a checkpoint (its record, blobs, pending writes and the items they name)
  is ONE statement, and so is every ``put`` and ``put_writes``: data-modifying CTEs make
  a put atomic without BEGIN/COMMIT round trips, including the check that a list it
  extends (``BlobRecord.base_version``) is still stored (``sql.py``).
- One table, ``lus_store``, for checkpoints, blobs, items and pending writes under compact
  binary keys (``keys.py``), and one row per ``put_writes`` call, as each table, row and
  index entry has a fixed cost that dominated a long thread's footprint (see
  ``migrations.MIGRATION_2_CREATE``).
- Operations from different threads and tasks run side by side on a connection pool
  per event loop (``connection.py``).
- Listing pages through checkpoints by key (no server-side cursor), so it also works
  behind a transaction-pooling PgBouncer, and fetches a whole page in one statement.
- Deleting (prune, delete_thread, delete_for_runs) takes a per-thread advisory lock that
  every write to the thread takes in shared mode, and a put checks with locking reads
  that what it relies on without sending is still stored, so a concurrent put never
  ends up naming a blob or item that garbage collection just removed (see
  ``sql.PUT_CHECKPOINT`` for the interleavings).
- The data lifecycle (``core.lifecycle``) keeps one row per thread in ``threads``,
  upserted by every write in the write's own statement (no extra round trip), read by
  every read as one primary key probe that hides an expired thread. A write that finds
  its thread expired writes nothing; the thread is then removed (under its exclusive
  lock, if it is still expired) and the write runs again, so an expired thread's rows
  never come back, and the core re-sends any value the write relied on (``threads.py``).
- PostgreSQL text cannot hold NUL characters: ``core.validate`` refuses ids, channel
  names, filters and metadata holding one before any backend is called (bytea is fine).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any, ClassVar, Final, TypeVar

import orjson

from ...core.records import (
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
)
from ...core.rules import dedupe_writes
from ...errors import (
    BackendUnavailableError,
    BlobsMissingError,
    ItemsMissingError,
)
from .connection import Connection, fetch_stored, too_long
from .database import PostgresDatabase
from .keys import (
    blob_key,
    checkpoint_key,
    checkpoint_prefix,
    lock_key,
    prefix_end,
    stored_id,
    stored_type,
    write_prefix,
)
from .migrations import drop_statement
from .ordered_ids import encode_ordered_id
from .rows import (
    checkpoint_record,
    item_columns,
    stored_page,
    stored_refs,
    write_columns,
    write_rows,
)
from .sql import (
    METADATA_FILTER_CLAUSE,
    ORDER_BY_ID,
    ORDER_BY_NS,
    THREAD_LIVE_CLAUSE,
    Statements,
)
from .threads import WRITE_ATTEMPTS, ThreadLifecycle

try:
    import asyncpg
except ImportError:  # pragma: no cover - exercised only without the extra
    asyncpg = None

T = TypeVar("T")

LIST_PAGE_SIZE: Final = 50


class PostgresBackend(PostgresDatabase[Statements], ThreadLifecycle):
    name: ClassVar[str] = "postgres"
    statements_class = Statements

    @property
    def _conn_string(self) -> str | None:
        return self._connections.conn_string

    # -- schema -----------------------------------------------------------------------------

    async def drop_all(self) -> None:
        """Drop everything this saver stored: the schema, or in "public" just its tables."""
        statement = drop_statement(self.schema)

        async def drop(conn: Connection) -> None:
            await conn.execute(statement)

        await self._run(drop, setup=False)
        self._ready = False

    # -- writing ----------------------------------------------------------------------------

    def _key(self, thread_id: str) -> int:
        return lock_key(self.schema, thread_id)

    async def put_checkpoint(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        items: Sequence[ItemRecord],
        inherited: Collection[str] = (),
    ) -> None:
        ns = record.checkpoint_ns
        keys, types, datas, refs = item_columns(items)
        for b in blobs:
            keys.append(blob_key(ns, b.channel, b.version))
            types.append(stored_type(b.type))
            datas.append(b.data)
            refs.append(stored_refs(b.item_refs))
        # What the put relies on without sending (PUT_CHECKPOINT checks each with a locking
        # read): the blobs whose items a list extends, and the blobs it inherits.
        relied = [(b.channel, b.base_version) for b in blobs if b.base_version is not None]
        relied += [(c, record.channel_versions[c]) for c in inherited]
        now = self.lifecycle.now()
        args = (
            self._key(record.thread_id),
            record.thread_id,
            checkpoint_key(ns, record.checkpoint_id),
            keys,
            types,
            datas,
            refs,
            [channel for channel, _ in relied],
            [version for _, version in relied],
            [blob_key(ns, channel, version) for channel, version in relied],
            stored_id(record.parent_checkpoint_id),
            stored_type(record.type),
            record.data,
            orjson.dumps(record.channel_versions).decode(),
            record.metadata.decode(),
            record.run_id,
            now,
            self.lifecycle.ttl,
        )
        statement = self._statements.put_checkpoint

        async def put(conn: Connection) -> list[Any]:
            return await self._write_live(
                conn, record.thread_id, now, lambda: conn.fetch(statement, *args)
            )

        try:
            missing = await self._run(put)
        except asyncpg.ProgramLimitExceededError as exc:
            raise too_long(
                "put",
                exc,
                [
                    ("thread id", record.thread_id),
                    ("checkpoint namespace", record.checkpoint_ns),
                    ("checkpoint id", record.checkpoint_id),
                    ("run id", record.run_id),
                    *(("channel name", b.channel) for b in blobs),
                    *(("channel version", b.version) for b in blobs),
                ],
            ) from None
        gone = [channel for channel, _ in missing if channel in inherited]
        if gone:
            raise BlobsMissingError(record.thread_id, ns, record.checkpoint_id, gone)
        if missing:
            channel, base = missing[0]
            raise ItemsMissingError.base_gone(record.thread_id, channel, base)

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
        unique = dedupe_writes(writes, replace=replace)
        rows, instead = write_rows(write_prefix(checkpoint_ns, checkpoint_id), unique, replace=replace)
        thread_lock = self._key(thread_id)
        now, ttl = self.lifecycle.now(), self.lifecycle.ttl
        args = (
            thread_lock, thread_id, *item_columns(items), *write_columns(rows), replace, now, ttl
        )
        statement = self._statements.put_writes

        async def put(conn: Connection) -> None:
            written = await self._write_live(conn, thread_id, now, lambda: conn.fetch(statement, *args))
            stored = {bytes(row[0]) for row in written}
            # A task that already had writes stored: one row per write (a repeated call).
            again = [r for key, rows in instead.items() if key not in stored for r in rows]
            if again:
                await self._write_live(
                    conn,
                    thread_id,
                    now,
                    lambda: conn.fetch(
                        statement, thread_lock, thread_id, [], [], [], [],
                        *write_columns(again), replace, now, ttl,
                    ),
                )

        try:
            await self._run(put)
        except asyncpg.ProgramLimitExceededError as exc:
            raise too_long(
                "put_writes",
                exc,
                [
                    ("thread id", thread_id),
                    ("checkpoint namespace", checkpoint_ns),
                    ("checkpoint id", checkpoint_id),
                    *(("task id", w.task_id) for w in unique),
                ],
            ) from None

    # -- reading ----------------------------------------------------------------------------

    async def get_checkpoint(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> StoredCheckpoint | None:
        args: tuple[str | bytes | float, ...]
        now = self.lifecycle.now()
        if checkpoint_id is None:
            prefix = checkpoint_prefix(checkpoint_ns)
            statement = self._statements.get_latest
            args = (thread_id, prefix, prefix_end(prefix), now)
        else:
            key = checkpoint_key(checkpoint_ns, checkpoint_id)
            statement, args = self._statements.get_by_id, (thread_id, key, now)

        async def fetch(conn: Connection) -> list[Any]:
            rows = await fetch_stored(conn, statement, args, f"thread {thread_id!r}")
            await self._refresh(conn, [thread_id], now)
            return rows

        page = stored_page(await self._run(fetch))
        return page[0] if page else None

    async def list_checkpoints(self, query: ListQuery) -> AsyncIterator[StoredCheckpoint]:
        # core.validate refused every filter value JSON metadata cannot hold (NUL, lone
        # surrogates, ints beyond 64 bits, inf and NaN) before this call.
        metadata_filter = orjson.dumps(query.filter).decode() if query.filter else None
        fixed_args: list[Any] = []
        clauses: list[str] = []

        def pin(clause: str, value: Any) -> None:
            fixed_args.append(value)
            clauses.append(clause.replace("$?", f"${len(fixed_args)}"))

        now = self.lifecycle.now()
        if query.thread_id is not None:
            pin("c.thread_id = $?", query.thread_id)
        pin(THREAD_LIVE_CLAUSE, now)
        # With the namespace pinned, the checkpoint key orders by id and bounds the
        # scan; otherwise listing sorts by the key's parts.
        order_columns: list[str]
        if query.checkpoint_ns is not None:
            prefix = checkpoint_prefix(query.checkpoint_ns)
            pin("c.key >= $?", prefix)
            pin("c.key < $?", prefix_end(prefix))
            if query.checkpoint_id is not None:
                pin("c.key = $?", prefix + encode_ordered_id(query.checkpoint_id))
            if query.before is not None:
                pin("c.key < $?", prefix + encode_ordered_id(query.before))
            order_columns = ["c.key"]
        else:
            if query.checkpoint_id is not None:
                pin(f"{ORDER_BY_ID} = $?", encode_ordered_id(query.checkpoint_id))
            if query.before is not None:
                pin(f"{ORDER_BY_ID} < $?", encode_ordered_id(query.before))
            order_columns = [ORDER_BY_ID]
        if metadata_filter is not None:
            pin(METADATA_FILTER_CLAUSE, metadata_filter)
        # Keyset pagination on the sort key, minus the columns the query pins.
        if query.thread_id is None:
            order_columns.append("c.thread_id")
        if query.checkpoint_ns is None:
            order_columns.append(ORDER_BY_NS)
        first = len(fixed_args) + 1
        marks = ", ".join(f"${first + i}" for i in range(len(order_columns)))
        cursor_clause = f"({', '.join(order_columns)}) < ({marks})"
        limit_mark = f"${first + len(order_columns)}"
        first_page = self._statements.page(clauses, order_columns, f"${first}")
        next_page = self._statements.page([*clauses, cursor_clause], order_columns, limit_mark)

        cursor: list[str | bytes] | None = None
        remaining = query.limit
        while remaining is None or remaining > 0:
            size = LIST_PAGE_SIZE if remaining is None else min(LIST_PAGE_SIZE, remaining)
            if cursor is None:
                statement, args = first_page, [*fixed_args, size]
            else:
                statement, args = next_page, [*fixed_args, *cursor, size]

            async def fetch(conn: Connection, statement: str = statement, args: list[Any] = args) -> list[Any]:
                rows = await fetch_stored(conn, statement, args, "list")
                await self._refresh(conn, {row[0] for row in rows}, now)
                return rows

            page = stored_page(await self._run(fetch))
            for stored in page:
                yield stored
            if len(page) < size:
                return
            last = page[-1].record
            cursor = [checkpoint_key(last.checkpoint_ns, last.checkpoint_id)]
            if query.checkpoint_ns is None:
                cursor = [encode_ordered_id(last.checkpoint_id)]
            if query.thread_id is None:
                cursor.append(last.thread_id)
            if query.checkpoint_ns is None:
                cursor.append(checkpoint_prefix(last.checkpoint_ns)[1:])
            if remaining is not None:
                remaining -= len(page)

    async def checkpoint_heads(self, thread_id: str) -> list[CheckpointRecord]:
        statement = self._statements.heads
        now = self.lifecycle.now()

        async def fetch(conn: Connection) -> list[Any]:
            rows = list(await conn.fetch(statement, thread_id, now))
            await self._refresh(conn, [thread_id], now)
            return rows

        return [checkpoint_record(row) for row in await self._run(fetch)]

    async def list_thread_ids(self) -> list[str]:
        statement = self._statements.thread_ids
        now = self.lifecycle.now()

        async def fetch(conn: Connection) -> list[str]:
            return [row[0] for row in await conn.fetch(statement, now)]

        return await self._run(fetch)

    # -- deleting and copying ---------------------------------------------------------------

    async def _locked(self, conn: Connection, thread_ids: Sequence[str]) -> None:
        """Take the threads' exclusive locks in key order (no deadlock between deleters)."""
        keys = sorted({self._key(t) for t in thread_ids})
        await conn.execute(self._statements.lock_threads, keys)

    async def delete_thread(self, thread_id: str) -> None:
        statement = self._statements.delete_thread

        async def delete(conn: Connection) -> None:
            async with conn.transaction():
                await self._locked(conn, [thread_id])
                await conn.execute(statement, thread_id)

        await self._run(delete)

    async def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        runs = list(dict.fromkeys(run_ids))
        s = self._statements

        async def delete(conn: Connection) -> None:
            async with conn.transaction():
                threads = [row[0] for row in await conn.fetch(s.threads_of_runs, runs)]
                if threads:
                    await self._locked(conn, threads)
                    await conn.fetchval(s.collect, threads, None, runs)

        await self._run(delete)

    async def retain(self, thread_id: str, keep: Collection[tuple[str, str]]) -> None:
        kept = [checkpoint_key(ns, cid) for ns, cid in keep]
        args = ([thread_id], kept, None)
        statement = self._statements.collect

        async def collect(conn: Connection) -> None:
            async with conn.transaction():
                await self._locked(conn, [thread_id])
                await conn.fetchval(statement, *args)

        await self._run(collect)

    async def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        now = self.lifecycle.now()
        args = (source_thread_id, target_thread_id, self._key(target_thread_id), now, self.lifecycle.ttl)
        statement = self._statements.copy_thread

        async def copy(conn: Connection) -> None:
            for _ in range(WRITE_ATTEMPTS):
                if not await conn.fetchval(statement, *args):
                    return
                await self._purge_expired(conn, target_thread_id, now)
            raise BackendUnavailableError(
                f"thread {target_thread_id!r} kept expiring while it was written "
                "(is the clock going backwards?)"
            )

        try:
            await self._run(copy)
        except asyncpg.ProgramLimitExceededError as exc:
            raise too_long("copy_thread", exc, [("target thread id", target_thread_id)]) from None
