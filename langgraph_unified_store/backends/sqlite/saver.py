"""The public SQLite saver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...core.saver import UnifiedCheckpointSaver
from ...registry import DEFAULT_BUSY_TIMEOUT, DEFAULT_SYNCHRONOUS
from .backend import SQLiteBackend


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
