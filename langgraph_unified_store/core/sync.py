"""How the blocking API drives the async core, and how a saver closes while busy.

Blocking calls: one private event loop per saver, running in a daemon thread that owns
the connections the sync API uses. Blocking calls from any thread hand their coroutine
to that loop and wait; a backend whose I/O can block its caller (SQLite: a local file)
instead runs the same coroutine on the caller's thread, saving two thread hops per
call. A blocking call from a thread that is itself running an event loop is refused
with ``SyncCallInEventLoopError``: it would stall that loop, and with LangGraph's
official savers it deadlocks (langchain-ai/langgraph#7857).

Closing: every saver call, blocking or async, passes a ``CallGate``. Close shuts the
gate (new calls raise ``SaverClosedError``), gives the calls already in flight
``close_timeout`` seconds to finish, then cancels the rest (their tasks, and the
backend's blocking I/O) and waits ``CANCEL_TIMEOUT`` more for them to unwind before
closing connections. Nothing waits without a bound: a waiter on the I/O loop is
woken with ``SaverClosedError`` when the loop stops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from ..errors import SyncCallInEventLoopError

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CLOSE_TIMEOUT: Final = 5.0
"""Seconds close gives calls in flight to finish before it cancels them."""
CANCEL_TIMEOUT: Final = 2.0
"""Seconds cancelled calls get to unwind (roll back, release a connection)."""
STOP_TIMEOUT: Final = 5.0
"""Seconds the I/O thread gets to cancel its last tasks and end."""

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


# -- calls in flight ------------------------------------------------------------------------


@dataclass(eq=False)
class Call:
    """One saver call in flight: where it runs, so that close can cancel it."""

    method: str
    task: asyncio.Task[Any] | None
    loop: asyncio.AbstractEventLoop | None
    cancelled: bool = False

    def alive(self) -> bool:
        """Can this call still finish? Not once the loop running it has ended."""
        return self.loop is None or not self.loop.is_closed()


ACTIVE_CALL: ContextVar[Call | None] = ContextVar("lus_active_call", default=None)
"""The saver call this task or thread is inside: nested core calls (save_state reads,
then puts) pass the gate as part of it."""


class CallGate:
    """The calls in flight on one saver (and its ``with_allowlist`` copies); once closed,
    it admits no new call."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._calls: set[Call] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def enter(self, method: str) -> Call | None:
        """Register a call starting on this task or thread; None once the gate is closed."""
        # None when run inline on the caller's thread (no loop); no exception raised.
        loop = asyncio.events._get_running_loop()
        call = Call(method, None if loop is None else asyncio.current_task(loop), loop)
        with self._cond:
            if self._closed:
                return None
            self._calls.add(call)
        return call

    def leave(self, call: Call) -> None:
        with self._cond:
            self._calls.discard(call)
            if self._closed:  # only close waits for calls to leave
                self._cond.notify_all()

    def close(self) -> bool:
        """Admit no more calls; True for the first close only."""
        with self._cond:
            first = not self._closed
            self._closed = True
            return first

    def busy(self) -> bool:
        with self._cond:
            return any(call.alive() for call in self._calls)

    def wait_idle(self, deadline: float) -> bool:
        """Block until no call that can still finish is in flight, or the deadline."""
        with self._cond:
            while any(call.alive() for call in self._calls):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                # Re-checked at least every 50 ms: a loop that ends never notifies.
                self._cond.wait(min(left, 0.05))
            return True

    async def await_idle(self, deadline: float) -> bool:
        """``wait_idle`` for async code: polls, so calls on this loop can go on."""
        pause = 0.001
        while self.busy():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)
        return True

    def cancel(self) -> list[Call]:
        """Cancel every call in flight on an event loop; returns every call cut short."""
        with self._cond:
            calls = [call for call in self._calls if call.alive()]
            for call in calls:
                call.cancelled = True
        for call in calls:
            if call.task is not None and call.loop is not None:
                with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
                    call.loop.call_soon_threadsafe(self._cancel_if_active, call)
        return calls

    def _cancel_if_active(self, call: Call) -> None:
        # Runs on the call's own loop, where its task is suspended: if it already left
        # the gate, its task has moved on to the caller's code, which must not be hit.
        with self._cond:
            active = call in self._calls
        if active and call.task is not None:
            call.task.cancel()


# -- the private I/O loop -------------------------------------------------------------------


class LoopThread:
    """A private event loop in a daemon thread, started on first use, stopped for good
    by ``stop()``."""

    def __init__(self, name: str, closed_error: Callable[[], BaseException] | None = None) -> None:
        self._name = name
        self._closed_error = closed_error or (lambda: RuntimeError(f"{name} is stopped"))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self._futures: set[concurrent.futures.Future[Any]] = set()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        # Called with self._lock held.
        if self._loop is not None and not self._loop.is_closed():
            return self._loop
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def _run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                _shut_down(loop)

        thread = threading.Thread(target=_run, name=self._name, daemon=True)
        thread.start()
        ready.wait()
        self._loop, self._thread = loop, thread
        return loop

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for it; once stopped, raise the closed error."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise SyncCallInEventLoopError("a blocking saver call was made from its own I/O loop")
        with self._lock:
            if self._stopped:
                coro.close()
                raise self._closed_error()
            future = asyncio.run_coroutine_threadsafe(coro, self._ensure())
            self._futures.add(future)
        future.add_done_callback(self._futures.discard)
        try:
            return future.result(timeout)
        except concurrent.futures.CancelledError:
            if self._stopped:
                raise self._closed_error() from None
            raise
        except TimeoutError:
            future.cancel()
            raise

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The private loop, once started: resources the blocking API uses live on it."""
        loop = self._loop
        return loop if loop is not None and not loop.is_closed() else None

    @property
    def started(self) -> bool:
        return self._loop is not None and not self._loop.is_closed()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """End the loop and its thread for good; wake every caller still waiting on it."""
        with self._lock:
            self._stopped = True
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            waiting = list(self._futures)
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # already closed
                loop.call_soon_threadsafe(loop.stop)
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
                if thread.is_alive():
                    logger.warning("%s did not stop within %s s", self._name, timeout)
        for future in waiting:
            # Their tasks were cancelled as the loop ended; if the loop is stuck, the
            # callers are released anyway (they raise the closed error).
            future.cancel()


def _shut_down(loop: asyncio.AbstractEventLoop) -> None:
    """What ``asyncio.run`` does on the way out, bounded: cancel what is left, let it
    unwind, close async generators and the executor's threads, close the loop."""
    try:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=CANCEL_TIMEOUT))
        loop.run_until_complete(loop.shutdown_asyncgens())
        # Threads of asyncio.to_thread (SQLite's close waits there for its lock).
        loop.run_until_complete(asyncio.wait_for(loop.shutdown_default_executor(), STOP_TIMEOUT))
    except Exception:  # pragma: no cover - never expected; the loop is closed regardless
        logger.exception("error while stopping a saver's I/O loop")
    finally:
        asyncio.set_event_loop(None)
        loop.close()
