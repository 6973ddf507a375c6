"""Admitting a saver's calls through its ``CallGate``: the decorators of its async methods.

Split from ``core.saver``: every public async method passes the gate (refused once the
saver is closed, answered with ``SaverClosedError`` when close cuts it short), and the
two decorators that do so are a concern of their own.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

from ..errors import SaverClosedError
from .sync import ACTIVE_CALL, Call, CallGate

T = TypeVar("T")
P = ParamSpec("P")


class Gated(Protocol):
    """What the decorators need of a saver: the gate its calls pass."""

    _gate: CallGate


S = TypeVar("S", bound=Gated)


def _closed_by(saver: Gated, call: Call, method: str, exc: BaseException) -> BaseException:
    """What a call that ended with ``exc`` raises: once close cut it short, whatever its
    I/O failed with (cancelled, connection closed) is a ``SaverClosedError``."""
    if isinstance(exc, SaverClosedError):
        return exc.for_method(method)
    if not call.cancelled:
        return exc
    if isinstance(exc, asyncio.CancelledError) and call.task is not None:
        call.task.uncancel()  # the cancel was ours, and is answered by this error
    return SaverClosedError(repr(saver), method, in_flight=True)


def guarded(
    fn: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Pass a saver method through the saver's ``CallGate``: refused once closed, and
    answered with ``SaverClosedError`` if close cuts it short."""
    method = fn.__name__

    @functools.wraps(fn)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if ACTIVE_CALL.get() is not None:  # part of a call already admitted
            return await fn(self, *args, **kwargs)
        call = self._gate.enter(method)
        if call is None:
            raise SaverClosedError(repr(self), method)
        token = ACTIVE_CALL.set(call)
        try:
            return await fn(self, *args, **kwargs)
        except BaseException as exc:
            closed = _closed_by(self, call, method, exc)
            if closed is exc:
                raise
            raise closed from exc
        finally:
            ACTIVE_CALL.reset(token)
            self._gate.leave(call)

    return wrapper


def guarded_iterator(
    fn: Callable[Concatenate[S, P], AsyncIterator[T]],
) -> Callable[Concatenate[S, P], AsyncIterator[T]]:
    """``guarded`` for an async generator: each step is one call in flight (a consumer
    holding the iterator between steps keeps nothing open)."""
    method = fn.__name__

    @functools.wraps(fn)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        inner = cast(AsyncGenerator[T, None], fn(self, *args, **kwargs))
        try:
            while True:
                call = None if ACTIVE_CALL.get() is not None else self._gate.enter(method)
                if call is None and ACTIVE_CALL.get() is None:
                    raise SaverClosedError(repr(self), method)
                token = ACTIVE_CALL.set(call) if call is not None else None
                try:
                    item = await inner.__anext__()
                except StopAsyncIteration:
                    return
                except BaseException as exc:
                    closed = exc if call is None else _closed_by(self, call, method, exc)
                    if closed is exc:
                        raise
                    raise closed from exc
                finally:
                    if call is not None and token is not None:
                        ACTIVE_CALL.reset(token)
                        self._gate.leave(call)
                yield item
        finally:
            await inner.aclose()

    return wrapper
