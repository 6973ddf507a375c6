"""The saver's one SQLite connection: opened once, used from any thread, closed safely.

aiosqlite gives the connection its own thread and queue. Operations run there whole
(one plain sqlite3 function, one transaction, one thread hop) and report to a
concurrent future, so no event loop is needed to hear back (``Job``). Blocking callers
run the same functions on their own thread instead (``core.sync.in_blocking_call``), one
operation at a time beside aiosqlite's thread.

Works with aiosqlite 0.21 (the connection is itself the worker ``Thread``) and 0.22
(the worker is ``connection._thread``, stopped by a call that returns its sentinel).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

from ...errors import BackendUnavailableError, SaverClosedError, missing_extra

T = TypeVar("T")

CLOSE_WAIT: Final = 5.0
"""Seconds close waits for the operation using the connection to end before it leaves
closing the connection to that operation (which closes it as it finishes)."""


class Job:
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
    def get_loop(self) -> Job:
        return self

    def call_soon_threadsafe(self, *_: Any) -> None:
        pass


async def on_connection_thread(connection: Any, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on aiosqlite's connection thread (its private queue)."""
    job = Job(fn, args)
    connection._tx.put_nowait((job, job))
    return await asyncio.wrap_future(job.future)


def _worker_thread(connection: Any) -> threading.Thread:
    """aiosqlite's worker thread: the connection itself up to 0.21, ``_thread`` from 0.22."""
    return connection if isinstance(connection, threading.Thread) else connection._thread


def _stop_worker(connection: Any) -> None:
    """End aiosqlite's worker thread once it has run what is queued (the sqlite3
    connection is closed already)."""
    connection._connection = None
    stop_running = getattr(connection, "_stop_running", None)
    if stop_running is not None:  # aiosqlite 0.21
        stop_running()
        return
    import aiosqlite.core

    sentinel = aiosqlite.core._STOP_RUNNING_SENTINEL
    connection._running = False
    connection._tx.put_nowait((None, lambda: sentinel))


class SQLiteConnection:
    """One aiosqlite connection to ``path``, shared by every caller of the saver."""

    def __init__(
        self,
        path: str,
        prepare: Callable[[sqlite3.Connection], None],
        *,
        owner: str,
        connect: Callable[[str], sqlite3.Connection] | None = None,
    ) -> None:
        self.path = path
        # How the sqlite3 connection opens (the store's loads sqlite-vec); None: aiosqlite's.
        self._connect = connect
        self._owner = owner  # what SaverClosedError names: the backend's repr
        self._prepare = prepare  # pragmas and migrations, on the new connection
        self._lock = threading.Lock()
        self._in_use = threading.Lock()
        self._ready: concurrent.futures.Future[Any] | None = None
        # The sqlite3 connection operations may use; set and cleared under _in_use, so no
        # operation ever runs on a connection that is closed or closing.
        self._live: sqlite3.Connection | None = None
        # A connection close could not take from an operation in time: closed by it.
        self._close_after: sqlite3.Connection | None = None

    async def get(self) -> Any:
        """The aiosqlite connection, opened (and prepared) by the first caller on any loop."""
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
            if self._connect is None:
                connection = aiosqlite.connect(self.path, isolation_level=None, check_same_thread=False)
            else:
                connect, path = self._connect, self.path
                connection = aiosqlite.Connection(lambda: connect(path), 64)
            # An unclosed saver must not keep the process alive: its worker waits forever.
            _worker_thread(connection).daemon = True
            await connection
            await on_connection_thread(connection, self._prepare, connection._conn)
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

    def is_open(self) -> bool:
        """Whether the connection has been opened (and prepared) and not closed since."""
        ready = self._ready
        return ready is not None and ready.done() and not ready.cancelled() and ready.exception() is None

    def get_blocking(self) -> Any:
        """The connection for a blocking call on the caller's thread (no running loop
        there), opened on a short-lived loop the first time."""
        ready = self._ready
        if ready is not None and ready.done():
            return ready.result()
        return asyncio.run(self.get())

    def _serialized(self, fn: Callable[..., T], db: sqlite3.Connection, *args: Any) -> T:
        # Blocking callers use the connection from their own threads, beside aiosqlite's
        # thread: one operation (one transaction) at a time, whoever runs it. Close takes
        # the same lock, so a connection is never closed under an operation (SIGSEGV).
        with self._in_use:
            if db is not self._live:
                raise SaverClosedError(self._owner)
            try:
                return fn(db, *args)
            finally:
                if self._close_after is db:
                    self._close_after = None
                    db.close()

    def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(db, *args)`` on the caller's thread."""
        return self._serialized(fn, self.get_blocking()._connection, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(db, *args)`` on aiosqlite's connection thread."""
        connection = await self.get()
        if not connection._running or connection._connection is None:  # closed
            raise SaverClosedError(self._owner)
        return await on_connection_thread(connection, self._serialized, fn, connection._connection, *args)

    def interrupt(self) -> None:
        live = self._live
        if live is not None:
            with contextlib.suppress(sqlite3.Error):
                live.interrupt()  # the running statement fails, its transaction rolls back

    async def aclose(self, *, blocking: bool) -> None:
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
        if blocking:
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
            _stop_worker(connection)
