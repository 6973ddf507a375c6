"""SQLite storage on aiosqlite: a local file, no server.

Each operation is one plain sqlite3 function run on aiosqlite's connection thread, so
a whole transaction costs one thread hop and never interleaves with another operation
on the same connection. Write transactions start with ``BEGIN IMMEDIATE`` and the
connection waits ``busy_timeout`` for other processes, so many writers never see
"database is locked" (langchain-ai/langgraph#8136). WAL lets readers run beside a writer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, TypeVar

import orjson

from ..core.backend import Backend, ItemCache, retained
from ..core.records import (
    ITEM_REF_SIZE,
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
    load_channel_versions,
)
from ..core.saver import UnifiedCheckpointSaver
from ..core.sync import BlockingMode, in_blocking_call
from ..errors import (
    BackendUnavailableError,
    BlobsMissingError,
    InvalidConfigError,
    ItemsMissingError,
    SaverClosedError,
    missing_extra,
)
from ..registry import DEFAULT_BUSY_TIMEOUT, DEFAULT_SYNCHRONOUS, check_backend_options

T = TypeVar("T")

# Seconds aclose waits for the operation using the connection to end before it leaves
# closing the connection to that operation (which closes it as it finishes).
CLOSE_WAIT: Final = 5.0

# -- schema -------------------------------------------------------------------------------

MIGRATIONS_TABLE_DDL: Final = """
CREATE TABLE IF NOT EXISTS lus_schema_migrations (
    version INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)"""
SELECT_SCHEMA_VERSION: Final = "SELECT coalesce(max(version), 0) FROM lus_schema_migrations"
INSERT_SCHEMA_VERSION: Final = "INSERT INTO lus_schema_migrations (version) VALUES (?)"

# Version 1: one blob per (channel, version), values whole. Tables are clustered on their
# primary key (WITHOUT ROWID), so the key columns are not stored a second time in an index.
MIGRATION_1: Final = (
    """CREATE TABLE checkpoints (
        thread_id TEXT NOT NULL,
        checkpoint_ns TEXT NOT NULL DEFAULT '',
        checkpoint_id TEXT NOT NULL,
        parent_checkpoint_id TEXT,
        type TEXT NOT NULL,
        data BLOB NOT NULL,
        channel_versions TEXT NOT NULL,
        metadata TEXT NOT NULL,
        run_id TEXT,
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX checkpoints_by_run ON checkpoints (run_id) WHERE run_id IS NOT NULL",
    """CREATE TABLE blobs (
        thread_id TEXT NOT NULL,
        checkpoint_ns TEXT NOT NULL,
        channel TEXT NOT NULL,
        version TEXT NOT NULL,
        type TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
    ) WITHOUT ROWID""",
    """CREATE TABLE writes (
        thread_id TEXT NOT NULL,
        checkpoint_ns TEXT NOT NULL,
        checkpoint_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        channel TEXT NOT NULL,
        type TEXT NOT NULL,
        data BLOB NOT NULL,
        task_path TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
    ) WITHOUT ROWID""",
)
# Version 2: list values split into per-thread items (long threads grow linearly).
MIGRATION_2: Final = (
    # Item refs are random hashes: a rowid table fills its pages in insertion order, and
    # only the small unique index takes the random inserts.
    """CREATE TABLE items (
        thread_id TEXT NOT NULL,
        ref BLOB NOT NULL,
        type TEXT NOT NULL,
        data BLOB NOT NULL,
        item_refs BLOB NOT NULL DEFAULT x''
    )""",
    "CREATE UNIQUE INDEX items_by_ref ON items (thread_id, ref)",
    "ALTER TABLE blobs ADD COLUMN item_refs BLOB NOT NULL DEFAULT x''",
    "ALTER TABLE writes ADD COLUMN item_refs BLOB NOT NULL DEFAULT x''",
)
MIGRATIONS: Final = (MIGRATION_1, MIGRATION_2)
SCHEMA_VERSION: Final = len(MIGRATIONS)

# -- statements ---------------------------------------------------------------------------

UPSERT_CHECKPOINT: Final = """
INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id,
    parent_checkpoint_id, type, data, channel_versions, metadata, run_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""
INSERT_BLOB: Final = """
INSERT OR IGNORE INTO blobs (thread_id, checkpoint_ns, channel, version, type, data, item_refs)
VALUES (?, ?, ?, ?, ?, ?, ?)"""
INSERT_ITEM: Final = """
INSERT OR IGNORE INTO items (thread_id, ref, type, data, item_refs) VALUES (?, ?, ?, ?, ?)"""
INSERT_WRITE: Final = """
INSERT OR {conflict} INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx,
    channel, type, data, task_path, item_refs)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
INSERT_WRITE_KEEP: Final = INSERT_WRITE.format(conflict="IGNORE")
INSERT_WRITE_REPLACE: Final = INSERT_WRITE.format(conflict="REPLACE")

CHECKPOINT_COLUMNS: Final = (
    "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, data, "
    "channel_versions, metadata, run_id"
)
SELECT_CHECKPOINT: Final = f"""
SELECT {CHECKPOINT_COLUMNS} FROM checkpoints
WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"""
SELECT_LATEST_CHECKPOINT: Final = f"""
SELECT {CHECKPOINT_COLUMNS} FROM checkpoints
WHERE thread_id = ? AND checkpoint_ns = ? ORDER BY checkpoint_id DESC LIMIT 1"""
SELECT_HEADS: Final = f"""
SELECT {CHECKPOINT_COLUMNS} FROM checkpoints AS c
WHERE thread_id = ? AND checkpoint_id = (
    SELECT max(checkpoint_id) FROM checkpoints
    WHERE thread_id = c.thread_id AND checkpoint_ns = c.checkpoint_ns)"""
SELECT_BLOBS: Final = """
SELECT channel, version, type, data, item_refs FROM blobs
WHERE thread_id = ? AND checkpoint_ns = ?
  AND (channel, version) IN (SELECT key, value FROM json_each(?))"""
SELECT_BLOB_EXISTS: Final = """
SELECT 1 FROM blobs WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"""
SELECT_WRITES: Final = """
SELECT task_id, idx, channel, type, data, task_path, item_refs FROM writes
WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"""
SELECT_ITEMS: Final = "SELECT ref, type, data, item_refs FROM items WHERE thread_id = ? AND ref IN ({marks})"
SELECT_THREAD_IDS: Final = "SELECT DISTINCT thread_id FROM checkpoints ORDER BY thread_id"
SELECT_THREADS_OF_RUNS: Final = "SELECT DISTINCT thread_id FROM checkpoints WHERE run_id IN ({marks})"
SELECT_CHECKPOINT_KEYS: Final = "SELECT checkpoint_ns, checkpoint_id FROM checkpoints WHERE thread_id = ?"
SELECT_LIVE_VERSIONS: Final = "SELECT checkpoint_ns, channel_versions FROM checkpoints WHERE thread_id = ?"
SELECT_BLOB_KEYS: Final = "SELECT checkpoint_ns, channel, version, item_refs FROM blobs WHERE thread_id = ?"
SELECT_WRITE_REFS: Final = "SELECT item_refs FROM writes WHERE thread_id = ? AND item_refs != x''"
SELECT_ITEM_KEYS: Final = "SELECT ref, item_refs FROM items WHERE thread_id = ?"
DELETE_CHECKPOINT: Final = "DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
DELETE_CHECKPOINT_WRITES: Final = "DELETE FROM writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
DELETE_ORPHAN_WRITES: Final = """
DELETE FROM writes WHERE thread_id = ? AND NOT EXISTS (
    SELECT 1 FROM checkpoints AS c WHERE c.thread_id = writes.thread_id
      AND c.checkpoint_ns = writes.checkpoint_ns AND c.checkpoint_id = writes.checkpoint_id)"""
DELETE_BLOB: Final = "DELETE FROM blobs WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"
DELETE_ITEM: Final = "DELETE FROM items WHERE thread_id = ? AND ref = ?"
DELETE_RUN_CHECKPOINTS: Final = "DELETE FROM checkpoints WHERE run_id IN ({marks})"
DELETE_THREAD: Final = (
    "DELETE FROM checkpoints WHERE thread_id = ?",
    "DELETE FROM blobs WHERE thread_id = ?",
    "DELETE FROM writes WHERE thread_id = ?",
    "DELETE FROM items WHERE thread_id = ?",
)
COPY_THREAD: Final = (
    f"""INSERT OR IGNORE INTO checkpoints ({CHECKPOINT_COLUMNS})
        SELECT ?, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, data,
               channel_versions, metadata, run_id
        FROM checkpoints WHERE thread_id = ?""",
    """INSERT OR IGNORE INTO blobs (thread_id, checkpoint_ns, channel, version, type, data, item_refs)
        SELECT ?, checkpoint_ns, channel, version, type, data, item_refs FROM blobs WHERE thread_id = ?""",
    """INSERT OR IGNORE INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx,
            channel, type, data, task_path, item_refs)
        SELECT ?, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, data, task_path, item_refs
        FROM writes WHERE thread_id = ?""",
    """INSERT OR IGNORE INTO items (thread_id, ref, type, data, item_refs)
        SELECT ?, ref, type, data, item_refs FROM items WHERE thread_id = ?""",
)

LIST_PAGE_SIZE: Final = 50
# SQLite binds at most 32766 parameters per statement; stay well below it.
MAX_BOUND_REFS: Final = 900


def _split_refs(packed: bytes) -> list[bytes]:
    return [packed[i : i + ITEM_REF_SIZE] for i in range(0, len(packed), ITEM_REF_SIZE)]


def _record(row: sqlite3.Row | tuple[Any, ...]) -> CheckpointRecord:
    return CheckpointRecord(
        thread_id=row[0],
        checkpoint_ns=row[1],
        checkpoint_id=row[2],
        parent_checkpoint_id=row[3],
        type=row[4],
        data=bytes(row[5]),
        channel_versions=load_channel_versions(row[6], row[0], row[1], row[2]),
        metadata=row[7].encode() if isinstance(row[7], str) else bytes(row[7]),
        run_id=row[8],
    )


class _Job:
    """One function for aiosqlite's connection thread that reports to a concurrent future.

    aiosqlite reports to the caller's loop, and its thread dies (every later call then
    waits forever) if that loop closed meanwhile: asyncio.run() ending with a call in
    flight. A concurrent future has no loop to lose; a job whose caller was cancelled
    before it started is skipped."""

    __slots__ = ("_args", "_fn", "future")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._fn = fn
        self._args = args

    def __call__(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self._fn(*self._args)
        except BaseException as exc:
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)

    # aiosqlite's thread reports through future.get_loop().call_soon_threadsafe(...):
    # this job has reported already.
    def get_loop(self) -> _Job:
        return self

    def call_soon_threadsafe(self, *_: Any) -> None:
        pass


async def _on_connection_thread(connection: Any, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on aiosqlite's connection thread (its private queue)."""
    job = _Job(fn, args)
    connection._tx.put_nowait((job, job))
    return await asyncio.wrap_future(job.future)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""

    def __init__(self, db: sqlite3.Connection, *, write: bool) -> None:
        self._db = db
        self._begin = "BEGIN IMMEDIATE" if write else "BEGIN"

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute(self._begin)
        return self._db

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def migrate(db: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the migrations this file has not seen yet; safe when processes race."""
    db.execute(MIGRATIONS_TABLE_DDL)
    with _Transaction(db, write=True):
        current = int(db.execute(SELECT_SCHEMA_VERSION).fetchone()[0])
        for version in range(current + 1, target + 1):
            for statement in MIGRATIONS[version - 1]:
                db.execute(statement)
            db.execute(INSERT_SCHEMA_VERSION, (version,))
    return max(current, target)


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
        self._lock = threading.Lock()
        self._in_use = threading.Lock()
        self._ready: concurrent.futures.Future[Any] | None = None
        # The sqlite3 connection operations may use; set and cleared under _in_use, so no
        # operation ever runs on a connection that is closed or closing.
        self._live: sqlite3.Connection | None = None
        # A connection close could not take from an operation in time: closed by it.
        self._close_after: sqlite3.Connection | None = None
        self.items = ItemCache()

    def __repr__(self) -> str:
        return f"SQLiteBackend(path={self.path!r})"

    # -- connection -----------------------------------------------------------------------

    def _open(self, db: sqlite3.Connection) -> None:
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        if self.path != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {self.synchronous}")
        migrate(db)

    async def _connection(self) -> Any:
        """The saver's one aiosqlite connection; it serves callers on any event loop."""
        ready = self._ready
        if ready is not None and ready.done():
            return ready.result()
        with self._lock:
            owner = self._ready is None
            if owner:
                self._ready = concurrent.futures.Future()
            ready = self._ready
        assert ready is not None
        if not owner:
            return await asyncio.wrap_future(ready)
        try:
            import aiosqlite
        except ImportError:
            raise missing_extra("sqlite", "aiosqlite") from None
        try:
            connection = aiosqlite.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            connection.daemon = True  # an unclosed saver must not keep the process alive
            await connection
            await _on_connection_thread(connection, self._open, connection._conn)
            with self._in_use:
                self._live = connection._conn
        except BaseException as exc:
            with self._lock:
                self._ready = None
            ready.set_exception(exc)
            if isinstance(exc, sqlite3.Error):
                raise BackendUnavailableError(
                    f"cannot open SQLite database {self.path!r}: {exc}"
                ) from exc
            raise
        ready.set_result(connection)
        return connection

    def _connection_blocking(self) -> Any:
        """The connection for a blocking call on the caller's thread (no running loop
        there), opened on a short-lived loop the first time."""
        ready = self._ready
        if ready is not None and ready.done():
            return ready.result()
        return asyncio.run(self._connection())

    def _serialized(self, fn: Callable[..., T], db: sqlite3.Connection, *args: Any) -> T:
        # Blocking callers use the connection from their own threads, beside aiosqlite's
        # thread: one operation (one transaction) at a time, whoever runs it. aclose takes
        # the same lock, so a connection is never closed under an operation (SIGSEGV).
        with self._in_use:
            if db is not self._live:
                raise SaverClosedError(repr(self))
            try:
                return fn(db, *args)
            finally:
                if self._close_after is db:
                    self._close_after = None
                    db.close()

    def interrupt(self) -> None:
        live = self._live
        if live is not None:
            with contextlib.suppress(sqlite3.Error):
                live.interrupt()  # the running statement fails, its transaction rolls back

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            if in_blocking_call():
                connection = self._connection_blocking()
                return self._serialized(fn, connection._connection, *args)
            connection = await self._connection()
            if not connection._running or connection._connection is None:  # closed
                raise SaverClosedError(repr(self))
            return await _on_connection_thread(
                connection, self._serialized, fn, connection._connection, *args
            )
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
            self._connection_blocking()
        else:
            await self._connection()

    async def aclose(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is None:
            return
        if not ready.done():  # being opened right now: wait, then close it
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.wrap_future(ready), CLOSE_WAIT)
        if not ready.done() or ready.cancelled() or ready.exception() is not None:
            return
        connection = ready.result()
        if in_blocking_call():
            self._close(connection)
        else:
            # Never block the caller's loop on the lock: an operation may hold it a while.
            await asyncio.to_thread(self._close, connection)

    def _close(self, connection: Any) -> None:
        """Close the sqlite3 connection under the operations' lock, then end aiosqlite's
        thread (it finishes what is queued; those operations see the connection closed)."""
        db: sqlite3.Connection | None = connection._connection
        if db is None:  # closed already
            return
        acquired = self._in_use.acquire(timeout=CLOSE_WAIT)
        try:
            if self._live is db:
                self._live = None
            if acquired:
                db.close()
            else:
                self._close_after = db
                # The operation may have ended just now, without seeing _close_after.
                acquired = self._in_use.acquire(blocking=False)
                if acquired and self._close_after is db:
                    self._close_after = None
                    db.close()
        finally:
            if acquired:
                self._in_use.release()
            connection._stop_running()
            connection._connection = None

    # -- writing --------------------------------------------------------------------------

    async def put_checkpoint(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        items: Sequence[ItemRecord],
        inherited: Collection[str] = (),
    ) -> None:
        await self._run(_put_checkpoint, record, blobs, items, inherited)

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
        await self._run(_put_writes, thread_id, checkpoint_ns, checkpoint_id, writes, items, replace)

    # -- reading --------------------------------------------------------------------------

    async def get_checkpoint(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> StoredCheckpoint | None:
        return await self._run(_get_checkpoint, thread_id, checkpoint_ns, checkpoint_id, self.items)

    async def list_checkpoints(self, query: ListQuery) -> AsyncIterator[StoredCheckpoint]:
        cursor: tuple[str, str, str] | None = None
        remaining = query.limit
        while remaining is None or remaining > 0:
            page_size = LIST_PAGE_SIZE if remaining is None else min(LIST_PAGE_SIZE, remaining)
            page = await self._run(_list_page, query, cursor, page_size, self.items)
            for stored in page:
                yield stored
            if len(page) < page_size:
                return
            last = page[-1].record
            cursor = (last.checkpoint_id, last.thread_id, last.checkpoint_ns)
            if remaining is not None:
                remaining -= len(page)

    async def checkpoint_heads(self, thread_id: str) -> list[CheckpointRecord]:
        rows = await self._run(_fetchall, SELECT_HEADS, (thread_id,))
        return [_record(row) for row in rows]

    async def list_thread_ids(self) -> list[str]:
        rows = await self._run(_fetchall, SELECT_THREAD_IDS, ())
        return [row[0] for row in rows]

    # -- deleting and copying -------------------------------------------------------------

    async def delete_thread(self, thread_id: str) -> None:
        self.items.forget(thread_id)
        await self._run(_delete_thread, thread_id)

    async def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.items.forget()
        await self._run(_delete_for_runs, list(run_ids))

    async def retain(self, thread_id: str, keep: Collection[tuple[str, str]]) -> None:
        self.items.forget(thread_id)
        await self._run(_retain, thread_id, set(keep))

    async def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._run(_copy_thread, source_thread_id, target_thread_id)


# -- the functions that run on the connection thread ---------------------------------------


def _fetchall(db: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    return db.execute(sql, params).fetchall()


def _put_checkpoint(
    db: sqlite3.Connection,
    record: CheckpointRecord,
    blobs: Sequence[BlobRecord],
    items: Sequence[ItemRecord],
    inherited: Collection[str],
) -> None:
    thread_id, ns = record.thread_id, record.checkpoint_ns
    # BEGIN IMMEDIATE: no other connection writes (or collects garbage) until COMMIT, so
    # what is checked here is still there when the checkpoint lands.
    with _Transaction(db, write=True):
        gone = [
            channel
            for channel in inherited
            if db.execute(
                SELECT_BLOB_EXISTS, (thread_id, ns, channel, record.channel_versions[channel])
            ).fetchone()
            is None
        ]
        if gone:
            raise BlobsMissingError(thread_id, ns, record.checkpoint_id, gone)
        for blob in blobs:
            if blob.base_version is not None and (
                db.execute(SELECT_BLOB_EXISTS, (thread_id, ns, blob.channel, blob.base_version)).fetchone()
                is None
            ):
                raise ItemsMissingError.base_gone(thread_id, blob.channel, blob.base_version)
        if items:
            db.executemany(
                INSERT_ITEM,
                [(thread_id, i.ref, i.type, i.data, b"".join(i.item_refs)) for i in items],
            )
        if blobs:
            db.executemany(
                INSERT_BLOB,
                [
                    (thread_id, ns, b.channel, b.version, b.type, b.data, b"".join(b.item_refs))
                    for b in blobs
                ],
            )
        db.execute(
            UPSERT_CHECKPOINT,
            (
                thread_id,
                ns,
                record.checkpoint_id,
                record.parent_checkpoint_id,
                record.type,
                record.data,
                orjson.dumps(record.channel_versions).decode(),
                record.metadata.decode(),
                record.run_id,
            ),
        )


def _put_writes(
    db: sqlite3.Connection,
    thread_id: str,
    ns: str,
    checkpoint_id: str,
    writes: Sequence[WriteRecord],
    items: Sequence[ItemRecord],
    replace: bool,
) -> None:
    with _Transaction(db, write=True):
        if items:
            db.executemany(
                INSERT_ITEM,
                [(thread_id, i.ref, i.type, i.data, b"".join(i.item_refs)) for i in items],
            )
        db.executemany(
            INSERT_WRITE_REPLACE if replace else INSERT_WRITE_KEEP,
            [
                (
                    thread_id, ns, checkpoint_id, w.task_id, w.idx, w.channel, w.type, w.data,
                    w.task_path, b"".join(w.item_refs),
                )
                for w in writes
            ],
        )


def _fetch_items(
    db: sqlite3.Connection,
    thread_id: str,
    refs: Iterable[bytes],
    into: dict[bytes, ItemRecord],
    cache: ItemCache,
) -> None:
    """Fetch the named items and, one level down, the items they name."""
    wanted = list(dict.fromkeys(refs))
    for _level in range(2):
        missing: list[bytes] = []
        found: list[bytes] = []
        for ref in wanted:
            if ref in into:
                continue
            item = cache.get(thread_id, ref)
            if item is None:
                missing.append(ref)
            else:
                into[ref] = item
                found.extend(item.item_refs)
        fetched: list[ItemRecord] = []
        for start in range(0, len(missing), MAX_BOUND_REFS):
            chunk = missing[start : start + MAX_BOUND_REFS]
            sql = SELECT_ITEMS.format(marks=",".join("?" * len(chunk)))
            for ref, type_, data, inner in db.execute(sql, (thread_id, *chunk)):
                item = ItemRecord(ref, type_, data, tuple(_split_refs(inner)) if inner else ())
                into[ref] = item
                fetched.append(item)
                found.extend(item.item_refs)
        cache.put(thread_id, fetched)
        wanted = [r for r in dict.fromkeys(found) if r not in into]
        if not wanted:
            return


def _assemble(
    db: sqlite3.Connection, row: sqlite3.Row | tuple[Any, ...], cache: ItemCache
) -> StoredCheckpoint:
    record = _record(row)
    stored = StoredCheckpoint(record)
    thread_id, ns = record.thread_id, record.checkpoint_ns
    refs: list[bytes] = []
    for channel, version, type_, data, item_refs in db.execute(
        SELECT_BLOBS, (thread_id, ns, row[6])
    ):
        blob = BlobRecord(channel, version, type_, bytes(data), tuple(_split_refs(bytes(item_refs))))
        stored.blobs[channel] = blob
        refs.extend(blob.item_refs)
    for task_id, idx, channel, type_, data, task_path, item_refs in db.execute(
        SELECT_WRITES, (thread_id, ns, record.checkpoint_id)
    ):
        write = WriteRecord(
            task_id, idx, channel, type_, bytes(data), task_path, tuple(_split_refs(bytes(item_refs)))
        )
        stored.writes.append(write)
        refs.extend(write.item_refs)
    if refs:
        _fetch_items(db, thread_id, refs, stored.items, cache)
    return stored


def _get_checkpoint(
    db: sqlite3.Connection, thread_id: str, ns: str, checkpoint_id: str | None, cache: ItemCache
) -> StoredCheckpoint | None:
    with _Transaction(db, write=False):
        if checkpoint_id is None:
            row = db.execute(SELECT_LATEST_CHECKPOINT, (thread_id, ns)).fetchone()
        else:
            row = db.execute(SELECT_CHECKPOINT, (thread_id, ns, checkpoint_id)).fetchone()
        return None if row is None else _assemble(db, row, cache)


def _filter_clause(key: str, value: Any) -> tuple[str, list[Any]]:
    """An exact, JSON-typed equality test on one top-level metadata key, fully bound."""
    if isinstance(value, bool):
        return (
            "EXISTS (SELECT 1 FROM json_each(metadata) WHERE key = ? AND type = ?)",
            [key, "true" if value else "false"],
        )
    types = ("integer", "real") if isinstance(value, (int, float)) else ("text",)
    marks = ",".join("?" * len(types))
    return (
        f"EXISTS (SELECT 1 FROM json_each(metadata) WHERE key = ? AND type IN ({marks}) AND value = ?)",
        [key, *types, value],
    )


def _list_page(
    db: sqlite3.Connection,
    query: ListQuery,
    cursor: tuple[str, str, str] | None,
    page_size: int,
    cache: ItemCache,
) -> list[StoredCheckpoint]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, wanted in (
        ("thread_id", query.thread_id),
        ("checkpoint_ns", query.checkpoint_ns),
        ("checkpoint_id", query.checkpoint_id),
    ):
        if wanted is not None:
            clauses.append(f"{column} = ?")
            params.append(wanted)
    if query.before is not None:
        clauses.append("checkpoint_id < ?")
        params.append(query.before)
    for key, value in query.filter.items():
        clause, values = _filter_clause(key, value)
        clauses.append(clause)
        params.extend(values)
    if cursor is not None:
        clauses.append("(checkpoint_id, thread_id, checkpoint_ns) < (?, ?, ?)")
        params.extend(cursor)
    where = " AND ".join(clauses) or "1"
    sql = (
        f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE {where} "
        "ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC LIMIT ?"
    )
    with _Transaction(db, write=False):
        rows = db.execute(sql, (*params, page_size)).fetchall()
        return [_assemble(db, row, cache) for row in rows]


def _delete_thread(db: sqlite3.Connection, thread_id: str) -> None:
    with _Transaction(db, write=True):
        for statement in DELETE_THREAD:
            db.execute(statement, (thread_id,))


def _collect_garbage(db: sqlite3.Connection, thread_id: str) -> None:
    """Drop writes, blobs and items that no surviving checkpoint of the thread needs."""
    db.execute(DELETE_ORPHAN_WRITES, (thread_id,))
    live_blobs = {
        (ns, channel, version)
        for ns, versions in db.execute(SELECT_LIVE_VERSIONS, (thread_id,))
        for channel, version in orjson.loads(versions).items()
    }
    live_items: set[bytes] = set()
    dead_blobs = []
    for ns, channel, version, item_refs in db.execute(SELECT_BLOB_KEYS, (thread_id,)).fetchall():
        if (ns, channel, version) in live_blobs:
            live_items.update(_split_refs(bytes(item_refs)))
        else:
            dead_blobs.append((thread_id, ns, channel, version))
    db.executemany(DELETE_BLOB, dead_blobs)
    for (item_refs,) in db.execute(SELECT_WRITE_REFS, (thread_id,)):
        live_items.update(_split_refs(bytes(item_refs)))
    inner_refs: dict[bytes, list[bytes]] = {}
    for ref, item_refs in db.execute(SELECT_ITEM_KEYS, (thread_id,)).fetchall():
        inner_refs[bytes(ref)] = _split_refs(bytes(item_refs))
    for ref in list(live_items):
        live_items.update(inner_refs.get(ref, ()))
    db.executemany(DELETE_ITEM, [(thread_id, ref) for ref in inner_refs if ref not in live_items])


def _delete_for_runs(db: sqlite3.Connection, run_ids: list[str]) -> None:
    with _Transaction(db, write=True):
        for start in range(0, len(run_ids), MAX_BOUND_REFS):
            chunk = run_ids[start : start + MAX_BOUND_REFS]
            marks = ",".join("?" * len(chunk))
            threads = [row[0] for row in db.execute(SELECT_THREADS_OF_RUNS.format(marks=marks), chunk)]
            db.execute(DELETE_RUN_CHECKPOINTS.format(marks=marks), chunk)
            for thread_id in threads:
                _collect_garbage(db, thread_id)


def _retain(db: sqlite3.Connection, thread_id: str, keep: set[tuple[str, str]]) -> None:
    keeps = retained(keep)
    with _Transaction(db, write=True):
        doomed = [
            (thread_id, ns, checkpoint_id)
            for ns, checkpoint_id in db.execute(SELECT_CHECKPOINT_KEYS, (thread_id,)).fetchall()
            if not keeps(ns, checkpoint_id)
        ]
        db.executemany(DELETE_CHECKPOINT_WRITES, doomed)
        db.executemany(DELETE_CHECKPOINT, doomed)
        _collect_garbage(db, thread_id)


def _copy_thread(db: sqlite3.Connection, source: str, target: str) -> None:
    with _Transaction(db, write=True):
        for statement in COPY_THREAD:
            db.execute(statement, (target, source))


class SQLiteSaver(UnifiedCheckpointSaver):
    """A LangGraph checkpointer on a local SQLite file (aiosqlite, WAL).

    ``SQLiteSaver("agent.db")`` works with sync and async graphs alike; use it as a
    context manager (``with`` or ``async with``) to close it, or call ``close()``.
    ``synchronous="FULL"`` also survives power loss; the default NORMAL survives any
    process crash.
    """

    backend: SQLiteBackend

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        synchronous: str = DEFAULT_SYNCHRONOUS,
        **options: Any,
    ) -> None:
        super().__init__(
            SQLiteBackend(path, busy_timeout=busy_timeout, synchronous=synchronous), **options
        )

    @classmethod
    def from_conn_string(cls, path: str | Path, **options: Any) -> SQLiteSaver:
        """A saver on ``path`` (a file path, or ``:memory:``); enter it with ``with`` or ``async with``."""
        return cls(path, **options)
