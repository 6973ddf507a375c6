"""Fixtures of the data-lifecycle suite: every backend, each call style, a fake clock.

- ``lc_backend``: memory, sqlite, postgres, redis (server ones carry their marker);
- ``api``: ``"async"`` or ``"blocking"``; ``calls(saver)`` gives a ``Calls`` whose async
  methods run the saver's async API or its blocking twins (on a worker thread, as
  ``tests/syncwrap.py`` does: the blocking API may not run on a loop's thread);
- ``fake_clock``: epoch seconds starting at ``time.time()``, moved only by ``advance``;
- ``open_lc``: ``await open_lc(**options)`` makes a set-up saver of ``lc_backend`` on the
  fake clock (``clock=None`` for the real one), dropped from its server afterwards.

Fixture names are prefixed so they never shadow ``tests/conftest.py``'s ``saver`` and
``backend_name`` for the backend-specific files that share this directory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple

from langgraph_unified_store.core.lifecycle import ErasureReceipt, Removed, ThreadPage
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import ALL_BACKENDS, drop_saver, make_saver, open_saver

BACKENDS = [
    pytest.param(name, marks=[getattr(pytest.mark, name)] if name in ("postgres", "redis") else [])
    for name in ALL_BACKENDS
]
STYLES = ("async", "blocking")


class FakeClock:
    """A clock a test moves by hand: every backend stamps and expires by it. It starts at
    a whole second and a half (exact in binary and in microseconds, so a ``datetime`` made
    from it compares exactly), and moves by whole seconds in the tests."""

    def __init__(self) -> None:
        self.now = int(time.time()) + 0.5

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class Calls:
    """The lifecycle API (and the reads it affects) in one call style."""

    def __init__(self, saver: UnifiedCheckpointSaver, style: str) -> None:
        self.saver = saver
        self.blocking = style == "blocking"

    async def _run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.blocking:
            return await asyncio.to_thread(getattr(self.saver, name), *args, **kwargs)
        return await getattr(self.saver, "a" + name)(*args, **kwargs)

    async def sweep(self, **kwargs: Any) -> Removed:
        return await self._run("sweep", **kwargs)  # type: ignore[no-any-return]

    async def set_ttl(self, thread_id: Any, ttl: Any) -> None:
        await self._run("set_ttl", thread_id, ttl)

    async def prune(self, thread_ids: Any, **kwargs: Any) -> None:
        await self._run("prune", thread_ids, **kwargs)

    async def delete_threads(self, *args: Any, **kwargs: Any) -> Removed:
        return await self._run("delete_threads", *args, **kwargs)  # type: ignore[no-any-return]

    async def forget(self, filter: Any) -> ErasureReceipt:
        return await self._run("forget", filter)  # type: ignore[no-any-return]

    async def list_threads(self, **kwargs: Any) -> ThreadPage:
        return await self._run("list_threads", **kwargs)  # type: ignore[no-any-return]

    async def all_threads(self, **kwargs: Any) -> list[str]:
        """Every thread id list_threads shows, following the cursor."""
        ids: list[str] = []
        cursor = None
        while True:
            page = await self.list_threads(cursor=cursor, **kwargs)
            ids += [t.thread_id for t in page.threads]
            cursor = page.next_cursor
            if cursor is None:
                return ids

    async def list_workflows(self) -> list[str]:
        return await self._run("list_workflows")  # type: ignore[no-any-return]

    async def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._run("get_tuple", config)  # type: ignore[no-any-return]

    async def list(self, config: RunnableConfig | None, **kwargs: Any) -> list[CheckpointTuple]:
        if self.blocking:
            return await asyncio.to_thread(lambda: list(self.saver.list(config, **kwargs)))
        return [t async for t in self.saver.alist(config, **kwargs)]

    async def close(self) -> None:
        if self.blocking:
            await asyncio.to_thread(self.saver.close)
        else:
            await self.saver.aclose()


@pytest.fixture(params=BACKENDS)
def lc_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=STYLES)
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def calls(api: str) -> Callable[[UnifiedCheckpointSaver], Calls]:
    return lambda saver: Calls(saver, api)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


def location_of(saver: UnifiedCheckpointSaver) -> str | None:
    backend = saver.backend
    for attribute in ("schema", "prefix", "path"):
        value = getattr(backend, attribute, None)
        if isinstance(value, str):
            return value
    return None


@pytest.fixture
async def open_lc(
    lc_backend: str, tmp_path: Path, fake_clock: FakeClock
) -> AsyncIterator[Callable[..., Awaitable[UnifiedCheckpointSaver]]]:
    made: list[UnifiedCheckpointSaver] = []

    async def make(**options: Any) -> UnifiedCheckpointSaver:
        options.setdefault("clock", fake_clock)
        saver = make_saver(lc_backend, tmp_path, **options)
        made.append(saver)
        await saver.asetup()
        return saver

    try:
        yield make
    finally:
        for saver in made:
            if saver.closed:
                # A test closed it: drop what it stored through a fresh saver on its place.
                location = location_of(saver)
                if lc_backend in ("postgres", "redis") and location is not None:
                    saver = open_saver(lc_backend, location)
                else:
                    continue
            await drop_saver(saver)
