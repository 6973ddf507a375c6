"""Where the test servers are, and how each backend's saver is made for a test.

The servers are real: PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379
(``.ci/run`` starts them when they are down). A test that cannot reach one fails;
it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

POSTGRES_DSN = os.environ.get("LUS_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

ALL_BACKENDS = ("memory", "sqlite", "postgres", "redis")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def make_saver(backend: str, tmp_path: Path, **options: Any) -> UnifiedCheckpointSaver:
    """A fresh, isolated saver of ``backend`` (its own file, schema or key prefix)."""
    if backend == "memory":
        from langgraph_unified_store import MemorySaver

        return MemorySaver(**options)
    if backend == "sqlite":
        from langgraph_unified_store import SQLiteSaver

        return SQLiteSaver(tmp_path / f"{unique('db')}.sqlite", **options)
    if backend == "postgres":
        from langgraph_unified_store import PostgresSaver

        return PostgresSaver(POSTGRES_DSN, schema=unique("lus_test"), **options)
    if backend == "redis":
        from langgraph_unified_store import RedisSaver

        return RedisSaver(REDIS_URL, prefix=unique("lus_test"), **options)
    raise ValueError(backend)


async def drop_saver(saver: UnifiedCheckpointSaver) -> None:
    """Remove what a test saver stored on a shared server, then close it."""
    cleanup: Callable[[], Any] | None = getattr(saver.backend, "drop_all", None)
    if cleanup is not None:
        await cleanup()
    await saver.aclose()


@asynccontextmanager
async def saver_for(backend: str, tmp_path: Path, **options: Any) -> AsyncIterator[UnifiedCheckpointSaver]:
    saver = make_saver(backend, tmp_path, **options)
    try:
        await saver.asetup()
        yield saver
    finally:
        await drop_saver(saver)
