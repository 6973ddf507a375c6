"""One SQLite transaction around a block of statements on a plain sqlite3 connection."""

from __future__ import annotations

import sqlite3


class Transaction:
    """``BEGIN IMMEDIATE`` (a write: it takes the file's write lock first, so it never
    fails half-way on "database is locked") or ``BEGIN`` ... ``COMMIT``; rolled back on
    any error."""

    def __init__(self, db: sqlite3.Connection, *, write: bool) -> None:
        self._db = db
        self._begin = "BEGIN IMMEDIATE" if write else "BEGIN"

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute(self._begin)
        return self._db

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
