"""create_saver(url): one entry point for every backend."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .core.saver import UnifiedCheckpointSaver

ENV_URL = "LANGGRAPH_UNIFIED_STORE_URL"
DEFAULT_DIRECTORY = Path(".langgraph_unified_store")
DEFAULT_SQLITE_FILE = DEFAULT_DIRECTORY / "checkpoints.sqlite"
KNOWN_SCHEMES = ("memory://", "sqlite:///path", "postgresql://...", "postgres://...", "redis://...", "rediss://...")


def create_saver(url: str | None = None, **options: Any) -> UnifiedCheckpointSaver:
    """A saver for ``url``; with none, ``$LANGGRAPH_UNIFIED_STORE_URL``, else a local SQLite file.

    Extra keyword options go to the saver (``serde``, ``encryption_key``, ``ttl`` ...).
    """
    url = url or os.environ.get(ENV_URL) or None
    if url is None:
        from .backends.sqlite import SQLiteSaver

        DEFAULT_DIRECTORY.mkdir(parents=True, exist_ok=True)
        return SQLiteSaver(DEFAULT_SQLITE_FILE, **options)
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        from .backends.memory import MemorySaver

        return MemorySaver(**options)
    if scheme == "sqlite":
        from .backends.sqlite import SQLiteSaver

        path = url[len("sqlite://") :]
        if path.startswith("/") and not path.startswith("//"):
            # sqlite:///relative.db -> relative.db ; sqlite:////abs/path.db -> /abs/path.db
            path = path[1:]
        elif path.startswith("//"):
            path = path[1:]
        return SQLiteSaver(path or ":memory:", **options)
    if scheme in ("postgresql", "postgres"):
        from .backends.postgres import PostgresSaver

        return PostgresSaver(url, **options)
    if scheme in ("redis", "rediss", "unix"):
        from .backends.redis import RedisSaver

        return RedisSaver(url, **options)
    raise ValueError(
        f"unknown saver URL scheme {scheme!r}; known: {', '.join(KNOWN_SCHEMES)}"
    )
