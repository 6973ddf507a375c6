"""How the blocking API drives the async core: one private event loop per saver,
running in a daemon thread that owns the connections the sync API uses.

Blocking calls from any thread hand their coroutine to that loop and wait; a backend
whose I/O can block its caller (SQLite: a local file) instead runs the same coroutine
on the caller's thread, saving two thread hops per call. A
blocking call from a thread that is itself running an event loop is refused with
``SyncCallInEventLoopError``: it would stall that loop, and with LangGraph's
official savers it deadlocks (langchain-ai/langgraph#7857).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from contextvars import ContextVar
from typing import Any, TypeVar

from ..errors import SyncCallInEventLoopError

T = TypeVar("T")

BLOCKING_INLINE: ContextVar[bool] = ContextVar("lus_blocking_inline", default=False)
"""Set while a blocking call runs the core on the caller's own thread: a backend with
``blocks_inline`` then does its I/O synchronously instead of awaiting it."""


def ensure_no_running_loop(method: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise SyncCallInEventLoopError(
        f"{method}() blocks, and was called from a thread that is running an event loop; "
        f"use `await a{method}(...)` there, or call it from another thread"
    )


def run_inline(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (an in-process backend) without any loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("an inline backend coroutine suspended; it must not await I/O")


class LoopThread:
    """A private event loop in a daemon thread, started on first use."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            return loop
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def _run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=_run, name=self._name, daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise SyncCallInEventLoopError("a blocking saver call was made from its own I/O loop")
        return asyncio.run_coroutine_threadsafe(coro, self._ensure()).result()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The private loop, once started: resources the blocking API uses live on it."""
        loop = self._loop
        return loop if loop is not None and not loop.is_closed() else None

    @property
    def started(self) -> bool:
        return self._loop is not None and not self._loop.is_closed()

    def stop(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        if not loop.is_running():
            loop.close()
