"""One SQLite file as a backend uses it, shared by the saver's backend and the store's:
the options checked once, the same pragmas and migrations on every new connection, and
each operation run whole (``connection``) with SQLite's errors raised as the library's."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Final, TypeVar

from ...core.health import BackendProbe, elapsed_ms
from ...core.sync import in_blocking_call
from ...errors import BackendUnavailableError, InvalidConfigError, SaverClosedError
from ...registry import DEFAULT_BUSY_TIMEOUT, DEFAULT_SYNCHRONOUS, check_backend_options
from .connection import SQLiteConnection
from .migrations import SCHEMA_VERSION, migrate, stored_version

T = TypeVar("T")

SELECT_SQLITE_VERSION: Final = "SELECT sqlite_version()"


def _look(db: sqlite3.Connection) -> tuple[str, float, int]:
    """The SQLite library's version (timed: one statement), and the file's schema version."""
    started = time.perf_counter()
    version = str(db.execute(SELECT_SQLITE_VERSION).fetchone()[0])
    round_trip = elapsed_ms(started)
    return version, round_trip, stored_version(db)


class SQLiteFile:
    """The connection to one database file, opened on first use, closed once."""

    unencodable: ClassVar[str] = "the thread id (or another name in this call)"
    """What a lone surrogate SQLite cannot encode came from, for the error."""

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
        self._connection = SQLiteConnection(
            self.path, self._prepare, owner=repr(self), connect=self._connector()
        )

    def _connector(self) -> Callable[[str], sqlite3.Connection] | None:
        """How this file's connection opens; None: as aiosqlite opens it."""
        return None

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Pragmas and migrations of a new connection."""
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        if self.path != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {self.synchronous}")
        migrate(db)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(db, *args)``, on the caller's thread for a blocking call, else on the
        connection's thread; SQLite's errors as the library's."""
        try:
            if in_blocking_call():
                return self._connection.run_blocking(fn, *args)
            return await self._connection.run(fn, *args)
        except UnicodeEncodeError as exc:
            raise InvalidConfigError(
                "SQLite stores text as UTF-8, which cannot hold the lone surrogate "
                f"{exc.object[exc.start : exc.end]!r}: {self.unencodable} is not valid "
                "Unicode; nothing was written"
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

    async def probe(self, timeout: float) -> BackendProbe:
        """The file looked at through a read-only connection of its own, so nothing is
        created or migrated (the saver's connection migrates as it opens); an in-memory
        database through the saver's connection, once that is open."""
        notes: tuple[str, ...] = ()
        if self.path == ":memory:":
            if self._connection.is_open():
                version, round_trip, schema = await self._run(_look)
            else:
                version, round_trip, schema = sqlite3.sqlite_version, None, 0
                notes = ("the in-memory database exists once setup() or a first call opens it",)
        elif not Path(self.path).exists():
            if not Path(self.path).absolute().parent.is_dir():
                raise BackendUnavailableError(
                    f"cannot open SQLite database {self.path!r}: its directory does not exist"
                )
            version, round_trip, schema = sqlite3.sqlite_version, None, 0
            notes = ("the file does not exist yet: setup() creates it",)
        elif in_blocking_call():
            version, round_trip, schema = self._look_read_only(timeout)
        else:
            version, round_trip, schema = await asyncio.to_thread(self._look_read_only, timeout)
        return BackendProbe(
            location=self.path,
            round_trip_ms=round_trip,
            server_version=version,
            schema_version=schema,
            expected_schema_version=SCHEMA_VERSION,
            notes=notes,
        )

    def _look_read_only(self, timeout: float) -> tuple[str, float, int]:
        uri = f"{Path(self.path).absolute().as_uri()}?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True, timeout=min(self.busy_timeout, timeout))
            try:
                return _look(db)
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise BackendUnavailableError(f"cannot read SQLite database {self.path!r}: {exc}") from None

    def interrupt(self) -> None:
        self._connection.interrupt()
