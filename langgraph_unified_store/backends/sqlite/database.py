"""One SQLite file as a backend uses it, shared by the saver's backend and the store's:
the options checked once, the same pragmas and migrations on every new connection, and
each operation run whole (``connection``) with SQLite's errors raised as the library's."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ...core.sync import in_blocking_call
from ...errors import BackendUnavailableError, InvalidConfigError, SaverClosedError
from ...registry import DEFAULT_BUSY_TIMEOUT, DEFAULT_SYNCHRONOUS, check_backend_options
from .connection import SQLiteConnection
from .migrations import migrate

T = TypeVar("T")


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

    def interrupt(self) -> None:
        self._connection.interrupt()
