"""How the blocking API drives the async core, and how a saver closes while busy.

Blocking calls: each backend declares a ``BlockingMode``, and the saver drives every
blocking call through the one ``SyncRunner`` of that mode (``runner_for``); nothing else
in the library knows how a blocking call is run.

- ``IN_PROCESS`` (Memory): nothing suspends, so the coroutine is driven on the caller's
  thread with no event loop at all.
- ``CALLER_THREAD`` (SQLite: a local file): the coroutine runs on the caller's thread too,
  and the backend, seeing ``in_blocking_call()``, does its I/O synchronously there instead
  of awaiting it: two thread hops fewer per call.
- ``IO_LOOP`` (PostgreSQL, Redis): one private event loop per saver, in a daemon thread
  that owns the connections the blocking API uses; the call is handed to it and waited for.

A blocking call from a thread that is itself running an event loop is refused with
``SyncCallInEventLoopError``: it would stall that loop, and with LangGraph's official
savers it deadlocks (langchain-ai/langgraph#7857). The one exception is
``SyncRunner.run_anywhere``, for sync-only framework hooks that their framework calls from
inside its loop (CrewAI persistence): it blocks that loop until done.

User-supplied clients (one policy for every backend): a client or pool the user passed in
stays the user's (the saver never closes it) and belongs to the event loop it is bound
to, its *home* (``UserClient``). On its home loop a call uses it directly. On any other
loop, always including a saver's private I/O loop, the backend declares what happens
(``ForeignLoop``): ``HAND_OFF`` runs the call on the home loop, which must be running
(PostgreSQL: the saver uses only the given pool, so that its size, hooks and settings
hold), and ``SIBLING`` opens a client with the same settings on the loop the call is on
(Redis: a client is cheap to copy, and a blocking-only program need not run a loop). A
client that records no home loop (redis-py) is at home on every loop but a private I/O
loop, where no user code runs.

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
import enum
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from ..errors import InvalidConfigError, SyncCallInEventLoopError

logger = logging.getLogger(__name__)

T = TypeVar("T")
C = TypeVar("C")

DEFAULT_CLOSE_TIMEOUT: Final = 5.0
"""Seconds close gives calls in flight to finish before it cancels them."""
CANCEL_TIMEOUT: Final = 2.0
"""Seconds cancelled calls get to unwind (roll back, release a connection)."""
STOP_TIMEOUT: Final = 5.0
"""Seconds the I/O thread gets to cancel its last tasks and end."""


class BlockingMode(enum.Enum):
    """How a backend's blocking calls drive the async core (see the module docstring)."""

    IN_PROCESS = "in-process"
    """No method ever suspends: driven on the caller's thread, without a loop."""
    CALLER_THREAD = "caller-thread"
    """The backend blocks on its own I/O on the caller's thread (``in_blocking_call()``)."""
    IO_LOOP = "io-loop"
    """Awaited I/O: run on the saver's private I/O loop while the caller waits."""


_CALLER_THREAD: ContextVar[bool] = ContextVar("lus_caller_thread", default=False)
_io_thread = threading.local()


def in_blocking_call() -> bool:
    """True while a ``CALLER_THREAD`` blocking call runs the core on this thread: the
    backend then does its I/O synchronously instead of awaiting it."""
    return _CALLER_THREAD.get()


def on_io_loop() -> bool:
    """True on a saver's private I/O loop thread, where the blocking API runs."""
    return bool(getattr(_io_thread, "active", False))


def ensure_no_running_loop(method: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise SyncCallInEventLoopError(
        f"{method}() blocks, and was called from a thread that is running an event loop; "
        f"use `await a{method}(...)` there, or call it from another thread"
    )


def _drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to completion without any loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a coroutine driven without a loop suspended; it must not await I/O")


# -- the runners ----------------------------------------------------------------------------


class SyncRunner:
    """How one saver's blocking API drives its async core: the ``IO_LOOP`` runner, and
    the base of the others. The private I/O loop starts on first use; ``stop`` ends it."""

    def __init__(self, name: str, closed_error: Callable[[], BaseException]) -> None:
        self._io = LoopThread(name, closed_error)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """A blocking call, from a thread that runs no event loop (checked by the caller)."""
        return self._io.run(coro)

    def run_anywhere(self, coro: Coroutine[Any, Any, T]) -> T:
        """A blocking call allowed on a thread running an event loop, which it stalls
        until done: only for sync-only hooks a framework calls from inside its loop."""
        return self._io.run(coro)

    def check_close_thread(self) -> None:
        """Refuse a blocking close on a loop thread (it waits for calls on that loop)."""
        ensure_no_running_loop("close")

    def close_connections(self, aclose: Coroutine[Any, Any, None], timeout: float) -> None:
        """Blocking close of the backend's connections: the I/O loop can close what the
        async API opened as well as its own. TimeoutError after ``timeout``."""
        self._io.run(aclose, timeout=timeout)

    async def aclose_connections(
        self, aclose: Callable[[], Coroutine[Any, Any, None]], timeout: float
    ) -> None:
        """After the async close: the connections the blocking API opened, on the I/O
        loop where they live (if it ever started). TimeoutError after ``timeout``."""
        if self._io.started:
            await asyncio.to_thread(self._io.run, aclose(), timeout=timeout)

    def stop(self) -> None:
        """End the I/O loop for good; waiters on it raise the closed error."""
        self._io.stop()

    async def astop(self) -> None:
        if self._io.started:
            await asyncio.to_thread(self._io.stop)
        else:
            self._io.stop()


class CallerThreadRunner(SyncRunner):
    """``CALLER_THREAD``: the backend blocks on its I/O on the caller's thread; only
    ``run_anywhere`` (whose thread may run a loop) and close use the I/O loop."""

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        token = _CALLER_THREAD.set(True)
        try:
            return _drive(coro)
        finally:
            _CALLER_THREAD.reset(token)


class InProcessRunner(SyncRunner):
    """``IN_PROCESS``: every call is driven on the caller's thread; no I/O loop ever
    starts, and close may run on any thread, since it never waits for I/O."""

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return _drive(coro)

    def run_anywhere(self, coro: Coroutine[Any, Any, T]) -> T:
        return _drive(coro)

    def check_close_thread(self) -> None:
        return

    def close_connections(self, aclose: Coroutine[Any, Any, None], timeout: float) -> None:
        _drive(aclose)


RUNNERS: Final[dict[BlockingMode, type[SyncRunner]]] = {
    BlockingMode.IN_PROCESS: InProcessRunner,
    BlockingMode.CALLER_THREAD: CallerThreadRunner,
    BlockingMode.IO_LOOP: SyncRunner,
}


def runner_for(
    mode: BlockingMode, name: str, closed_error: Callable[[], BaseException]
) -> SyncRunner:
    """The runner a saver whose backend declares ``mode`` drives blocking calls with."""
    return RUNNERS[mode](name, closed_error)


# -- user-supplied clients ------------------------------------------------------------------


class ForeignLoop(enum.Enum):
    """What a backend does with a user-supplied client on a loop that is not its home."""

    HAND_OFF = "hand-off"
    """Run the call on the client's home loop (which must be running) and wait for it."""
    SIBLING = "sibling"
    """Open a client with the same settings on the loop the call is on (the backend's
    per-loop resource factory does it)."""


@dataclass(frozen=True, eq=False)
class UserClient(Generic[C]):
    """A client or pool the user passed in, under the policy of the module docstring."""

    client: C
    on_foreign_loop: ForeignLoop
    home: asyncio.AbstractEventLoop | None = None
    """The loop the client is bound to, if it records one."""
    kind: str = "a client"
    """What the client is, for error messages ("an asyncpg pool")."""

    def at_home(self) -> bool:
        """May a call on the running loop use the client itself?"""
        if self.home is not None:
            return asyncio.get_running_loop() is self.home
        return not on_io_loop()

    async def run_at_home(self, coro: Coroutine[Any, Any, T]) -> T:
        """``HAND_OFF``: run ``coro`` on the client's home loop, waiting for it here
        (cancelling this wait cancels it there)."""
        home = self.home
        if home is None or home.is_closed() or not home.is_running():
            coro.close()
            raise InvalidConfigError(
                f"this saver was built on {self.kind} whose event loop is not running; "
                "call it on that loop (async API) or from another thread while that loop "
                "runs, or build the saver from a connection string instead"
            )
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, home)
        return await asyncio.wrap_future(future)


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
            _io_thread.active = True
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
