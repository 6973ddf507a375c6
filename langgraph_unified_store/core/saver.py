"""The one checkpoint saver: LangGraph's semantics written once, above every backend.

The async methods hold the logic. The blocking twins hand the same coroutines to the
saver's ``SyncRunner`` (``core.sync``), chosen by the backend's ``BlockingMode``. There is
no second copy of any logic.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import dataclasses
import functools
import logging
import random
import threading
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Collection,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, Concatenate, Final, ParamSpec, Self, TypeVar, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from ..errors import (
    CheckpointNotFoundError,
    CorruptDataError,
    InvalidConfigError,
    ItemsMissingError,
    SaverClosedError,
)
from ..state import Framework, UnifiedWorkflowState
from .backend import Backend
from .codec import Codec
from .list_memos import ListMemo, ListMemos
from .limits import ReadBudget, ReadLimits, check_read_limits
from .options import seconds_or_zero
from .records import (
    EMPTY_TYPE,
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
)
from .rules import metadata_value_matches
from .serde import SafeSerializer, SealedSerializer, resolve_serde, warn_unsafe_serde
from .sync import (
    ACTIVE_CALL,
    CANCEL_TIMEOUT,
    DEFAULT_CLOSE_TIMEOUT,
    STOP_TIMEOUT,
    Call,
    CallGate,
    ensure_no_running_loop,
    runner_for,
)
from .validate import (
    INT64_MAX,
    check_channels,
    check_checkpoint_shape,
    check_filter_value,
    check_id_list,
    check_metadata_shape,
    check_text,
    check_thread_id,
    check_versions,
    metadata_shape_problem,
    show,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")
S = TypeVar("S", bound="UnifiedCheckpointSaver")

# Seconds close waits for the backend to close its connections (each is bounded itself).
BACKEND_CLOSE_TIMEOUT: Final = 10.0

# How many tuples the blocking ``list`` pulls from the I/O loop per hand-off.
SYNC_LIST_BATCH = 64
PRUNE_STRATEGIES = ("keep_latest", "delete")


def _require_configurable(config: RunnableConfig | None, what: str) -> dict[str, Any]:
    """The config's ``configurable`` with a checked thread id, namespace and checkpoint id
    (``core.validate``: text every backend can store, or InvalidConfigError naming it)."""
    if not config or not isinstance(config.get("configurable"), Mapping):
        raise InvalidConfigError(
            f"{what}: config has no 'configurable' section with a 'thread_id' "
            "(e.g. {'configurable': {'thread_id': 'my-thread'}})"
        )
    configurable: dict[str, Any] = dict(config["configurable"])
    configurable["thread_id"] = check_thread_id(configurable.get("thread_id"), what)
    ns = configurable.get("checkpoint_ns") or ""
    configurable["checkpoint_ns"] = check_text(ns, "checkpoint_ns", what)
    checkpoint_id = configurable.get("checkpoint_id")
    if checkpoint_id is not None:
        check_text(checkpoint_id, "checkpoint_id", what)
    return configurable


# Skeleton key listing the channels whose value is None (see _encode_checkpoint); written
# by releases before CHANNEL_KINDS_KEY, still read.
NONE_CHANNELS_KEY: Final = "lus_none"
# Skeleton key of what each channel of channel_versions holds, one letter per channel in
# sorted name order: a value (stored as a blob), None, or no value in channel_values (an
# emptied channel, or a DeltaChannel between snapshots, whose blob at that version, if
# any, still reads back). A reader then tells an empty channel from a value that went
# missing (CorruptDataError); a skeleton without it (an earlier release) reads as
# before: no blob means empty.
CHANNEL_KINDS_KEY: Final = "lus_c"
KIND_VALUE: Final = "v"
KIND_NONE: Final = "n"
KIND_EMPTY: Final = "e"


def _checkpoint_config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def _metadata_has(metadata: Mapping[str, Any], key: str, value: Any) -> bool:
    """The filter rule for values backends cannot compare: None matches a missing key
    or null, anything else must be present and equal."""
    return metadata_value_matches(metadata, key, value)


def _closed_by(saver: UnifiedCheckpointSaver, call: Call, method: str, exc: BaseException) -> BaseException:
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


def _pushable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (
        isinstance(value, float) and value != value
    )


class UnifiedCheckpointSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer over any ``Backend``; also reads and writes unified state.

    Pass ``encryption_key`` (or an ``EncryptedSerializer`` as ``serde``) to encrypt every
    stored value, each bound to its place; without a ``serde`` the safe-by-default
    ``SafeSerializer`` is used. Whatever ``serde`` is given, stored data is read by the
    safe rules (``core.serde.resolve_serde``); one that cannot be made safe is used as it
    is, with an ``UnsafeSerializerWarning``.

    Closing (``close()``, ``aclose()``, leaving ``with``/``async with``) is safe while other
    threads and tasks are mid-call: new calls raise ``SaverClosedError`` at once, calls in
    flight get ``close_timeout`` seconds (default 5) to finish, then are cancelled and
    raise ``SaverClosedError``; a write is stored whole or not at all either way. Close
    returns at most a few seconds after ``close_timeout``, is idempotent, and a closed
    saver stays closed (make a new one). ``close()`` on a thread running an event loop
    raises ``SyncCallInEventLoopError`` (use ``await aclose()``), except for MemorySaver.
    ``read_limits`` (a ``ReadLimits``) bounds what reading stored data may decode to.

    """

    backend: Backend

    def __init__(
        self,
        backend: Backend,
        *,
        serde: SerializerProtocol | None = None,
        encryption_key: bytes | str | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        read_limits: ReadLimits | None = None,
    ) -> None:
        close_timeout = seconds_or_zero("close_timeout", close_timeout)
        self.read_limits = check_read_limits(read_limits)
        resolved = resolve_serde(serde, encryption_key)
        if resolved.warning is not None:
            warn_unsafe_serde(resolved.warning)
        super().__init__(serde=resolved.public)
        self.backend = backend
        backend.read_limits = self.read_limits
        self.close_timeout = float(close_timeout)
        # Shared by with_allowlist clones (shallow copies): closing one closes them all.
        self._gate = CallGate()
        self._closed = threading.Event()
        self._runner = runner_for(
            backend.blocking, f"{type(self).__name__}-io", lambda: SaverClosedError(repr(self))
        )
        self._codec: Codec | None = None
        # Shared (not copied) by with_allowlist clones, so a delete through one is seen by all.
        self._memos = ListMemos()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self.backend!r})"

    # -- plumbing --------------------------------------------------------------------------

    @property
    def codec(self) -> Codec:
        # Built lazily: ``with_allowlist`` swaps ``serde`` on a shallow copy.
        codec = self._codec
        if codec is None or codec.serde is not self.serde:
            codec = self._codec = Codec(
                self.serde, self._memos, compress=self.backend.compress, limits=self.read_limits
            )
        return codec

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> Self:
        """A shallow clone whose safe serde also builds the listed types (encryption, and
        any writer the serde had, kept)."""
        resolved = resolve_serde(self.serde)
        plain = resolved.plain
        if not isinstance(plain, SafeSerializer):
            logger.warning(
                "serde %s has no allowlist: with_allowlist changes nothing", type(plain).__name__
            )
            return self
        widened = plain.with_msgpack_allowlist(extra_allowlist)
        if widened is plain:
            return self
        clone = copy.copy(self)
        clone.serde = (
            widened if resolved.sealer is None else SealedSerializer(resolved.sealer, widened)
        )
        clone._codec = None
        return clone

    def _block(self, method: str, coro: Coroutine[Any, Any, T]) -> T:
        """Run one async core call to completion for a blocking method."""
        try:
            ensure_no_running_loop(method)
            if self._gate.closed:
                raise SaverClosedError(repr(self), method)
        except Exception:
            coro.close()
            raise
        try:
            return self._runner.run(coro)
        except SaverClosedError as exc:
            # Named after the blocking method the caller used, not its async twin.
            raise SaverClosedError(exc.saver, method, in_flight=exc.in_flight) from exc.__cause__

    def run_blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run one of this saver's coroutines to completion from synchronous code on any
        thread, even one running an event loop (which it stalls until done): for a
        framework's sync-only hooks that it calls from inside its own loop (CrewAI flow
        persistence). Everywhere else, use the blocking methods or ``await``."""
        method = getattr(coro, "__name__", "call")
        try:
            return self._runner.run_anywhere(coro)
        except SaverClosedError as exc:
            raise exc.for_method(method) if exc.method is None else exc from exc.__cause__

    def get_next_version(self, current: str | int | float | None, channel: None = None) -> str:
        """A hex counter led by a letter for its digit count, then a random suffix:
        ``a7.5f3a9c``, ``b1c.03d2e1``.

        The letter keeps string order equal to numeric order while small counters stay
        short; the random part makes a fork's next version differ from the original
        branch's, so the two never share a blob key.
        """
        if current is None:
            number = 0
        elif isinstance(current, (int, float)):
            number = int(current)
        else:
            number = int(current.split(".", 1)[0][1:], 16)
        digits = f"{number + 1:x}"
        return f"{chr(ord('a') + len(digits) - 1)}{digits}.{random.getrandbits(24):06x}"

    # -- lifecycle -------------------------------------------------------------------------

    @guarded
    async def asetup(self) -> None:
        await self.backend.setup()

    def setup(self) -> None:
        self._block("setup", self.asetup())

    @property
    def closed(self) -> bool:
        """True once ``close()`` or ``aclose()`` has begun: every call then raises
        ``SaverClosedError``."""
        return self._gate.closed

    async def aclose(self) -> None:
        """Close the saver: new calls are refused at once; calls in flight get
        ``close_timeout`` seconds to finish, then are cancelled (each raises
        ``SaverClosedError``, and a write it made is stored whole or not at all); then
        every connection is closed. Idempotent, and safe from any loop or task."""
        if not self._gate.close():
            await _wait_event(self._closed, self._close_bound())
            return
        try:
            if not await self._gate.await_idle(time.monotonic() + self.close_timeout):
                self._cancel_in_flight()
                await self._gate.await_idle(time.monotonic() + CANCEL_TIMEOUT)
            try:
                await asyncio.wait_for(self.backend.aclose(), BACKEND_CLOSE_TIMEOUT)
                await self._runner.aclose_connections(self.backend.aclose, BACKEND_CLOSE_TIMEOUT)
            except TimeoutError:
                self._log_close_timeout()
        finally:
            await self._runner.astop()
            self._closed.set()

    def close(self) -> None:
        """The blocking ``aclose``. On a thread running an event loop (other than an
        in-process saver's) it raises ``SyncCallInEventLoopError``: use ``await aclose()``."""
        self._runner.check_close_thread()
        if not self._gate.close():
            self._closed.wait(self._close_bound())
            return
        try:
            if not self._gate.wait_idle(time.monotonic() + self.close_timeout):
                self._cancel_in_flight()
                self._gate.wait_idle(time.monotonic() + CANCEL_TIMEOUT)
            try:
                self._runner.close_connections(self.backend.aclose(), BACKEND_CLOSE_TIMEOUT)
            except TimeoutError:
                self._log_close_timeout()
        finally:
            self._runner.stop()
            self._closed.set()

    def _cancel_in_flight(self) -> None:
        calls = self._gate.cancel()
        if calls:
            logger.warning(
                "%r closed with %d call(s) still running after close_timeout=%gs (%s); "
                "they were cancelled and raise SaverClosedError",
                self, len(calls), self.close_timeout,
                ", ".join(sorted({c.method for c in calls})),
            )
            # Blocking I/O on callers' own threads (SQLite) has no task to cancel.
            self.backend.interrupt()

    def _log_close_timeout(self) -> None:
        logger.warning(
            "%r: connections did not close within %gs; they were dropped",
            self, BACKEND_CLOSE_TIMEOUT,
        )

    def _close_bound(self) -> float:
        """How long a second close waits for the first: as long as the first can take."""
        return self.close_timeout + CANCEL_TIMEOUT + 2 * BACKEND_CLOSE_TIMEOUT + STOP_TIMEOUT

    def __enter__(self) -> Self:
        self.setup()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        await self.asetup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- reading ---------------------------------------------------------------------------

    def _to_tuple(self, stored: StoredCheckpoint) -> CheckpointTuple:
        record = stored.record
        where = (
            f"thread {record.thread_id!r}, namespace {record.checkpoint_ns!r}, "
            f"checkpoint {record.checkpoint_id!r}"
        )
        codec = self.codec
        if not isinstance(record.channel_versions, dict):
            raise CorruptDataError(f"{where}: stored channel_versions is not a mapping")
        if codec.sealed:
            stored = codec.open_checkpoint(stored)
            record = stored.record
        # One budget for the whole read: what it may decode grows with what it fetched.
        budget = ReadBudget(self.read_limits)
        decoded = codec.decode_value(
            record.type, record.data, {}, where, (), budget, stored_size=record.stored_size
        )
        if not isinstance(decoded, dict):
            raise CorruptDataError(f"{where}: stored checkpoint is not a mapping")
        none_channels = decoded.pop(NONE_CHANNELS_KEY, [])
        if not isinstance(none_channels, list):
            raise CorruptDataError(f"{where}: stored list of None-valued channels is damaged")
        kinds = _channel_kinds(decoded.pop(CHANNEL_KINDS_KEY, None), record, where)
        checkpoint = cast(Checkpoint, decoded)
        # The id and string versions are stored once, in the record (see _encode_checkpoint).
        checkpoint["id"] = record.checkpoint_id
        in_skeleton = "channel_versions" in checkpoint
        if not in_skeleton:
            checkpoint["channel_versions"] = dict(record.channel_versions)
        check_checkpoint_shape(decoded, where, check_versions=in_skeleton)
        if kinds is None:  # an earlier release's skeleton
            kinds = {
                c: KIND_NONE for c in none_channels if isinstance(c, str) and c in record.channel_versions
            }
        values: dict[str, Any] = {}
        for channel, version in record.channel_versions.items():
            kind = kinds.get(channel)
            if kind == KIND_NONE:
                values[channel] = None
                continue
            blob = stored.blobs.get(channel)
            if blob is None:
                if kind != KIND_VALUE:
                    # Emptied (or an earlier release's skeleton, where no blob meant that).
                    continue
                # GC or someone else removed a value this checkpoint names: never read
                # that as an empty channel.
                raise CorruptDataError(
                    f"{where}, channel {channel!r}: its stored value (version {version!r}) "
                    "is missing"
                )
            if blob.type == EMPTY_TYPE:
                continue
            values[channel] = codec.decode_value(
                blob.type,
                blob.data,
                stored.items,
                f"{where}, channel {channel!r}",
                blob.item_refs,
                budget,
            )
        checkpoint["channel_values"] = values
        writes = sorted(stored.writes, key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx))
        pending = [
            (
                w.task_id,
                w.channel,
                codec.decode_value(
                    w.type, w.data, stored.items, f"{where}, write {w.channel!r}", w.item_refs,
                    budget,
                ),
            )
            for w in writes
        ]
        metadata = codec.load_metadata(record.metadata, where)
        check_metadata_shape(metadata, where)
        parent = record.parent_checkpoint_id
        return CheckpointTuple(
            config=_checkpoint_config(record.thread_id, record.checkpoint_ns, record.checkpoint_id),
            checkpoint=checkpoint,
            metadata=metadata,  # type: ignore[arg-type]
            parent_config=(
                _checkpoint_config(record.thread_id, record.checkpoint_ns, parent) if parent else None
            ),
            pending_writes=pending,
        )

    @guarded
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = _require_configurable(config, "get_tuple")
        stored = await self.backend.get_checkpoint(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            configurable.get("checkpoint_id"),
        )
        return None if stored is None else self._to_tuple(stored)

    @guarded_iterator
    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise InvalidConfigError(f"list: limit must be a non-negative integer, not {show(limit)}")
        # The core counts what it yields; a limit no backend's integer holds is no limit.
        query = ListQuery(limit=limit if limit is None or limit <= INT64_MAX else None)
        if config is not None:
            if not isinstance(config, Mapping):
                raise InvalidConfigError(f"list: config must be a mapping, not {type(config).__name__}")
            configurable = config.get("configurable") or {}
            if configurable.get("thread_id") not in (None, ""):
                query.thread_id = check_thread_id(configurable["thread_id"], "list")
            ns = configurable.get("checkpoint_ns")
            query.checkpoint_ns = None if ns is None else check_text(ns, "checkpoint_ns", "list")
            checkpoint_id = configurable.get("checkpoint_id")
            if checkpoint_id is not None:
                query.checkpoint_id = check_text(checkpoint_id, "checkpoint_id", "list")
        if before is not None:
            if not isinstance(before, Mapping):
                raise InvalidConfigError(f"list: before must be a config, not {type(before).__name__}")
            before_id = get_checkpoint_id(before)
            if before_id is not None:
                query.before = check_text(before_id, "before's checkpoint_id", "list")
        if filter is not None and not isinstance(filter, Mapping):
            raise InvalidConfigError(f"list: filter must be a mapping, not {type(filter).__name__}")
        leftover: dict[str, Any] = {}
        for key, value in (filter or {}).items():
            if not isinstance(key, str):
                raise InvalidConfigError(f"list: filter keys must be strings, not {show(key)}")
            check_text(key, "filter key", "list")
            check_filter_value(key, value)
            if _pushable(value):
                query.filter[key] = value
            else:
                leftover[key] = value
        if limit == 0:
            return
        if leftover:
            # Values a backend cannot compare exactly (None, lists, dicts) are checked here.
            query.limit = None
        remaining = limit
        async for stored in self.backend.list_checkpoints(query):
            if leftover:
                metadata = Codec.load_metadata(stored.record.metadata, "list")
                if not all(_metadata_has(metadata, k, v) for k, v in leftover.items()):
                    continue
            yield self._to_tuple(stored)
            if remaining is not None:
                remaining -= 1
                if remaining <= 0:
                    return

    # -- writing ---------------------------------------------------------------------------

    @guarded
    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = _require_configurable(config, "put")
        if not isinstance(metadata, Mapping):
            raise InvalidConfigError(f"put: metadata must be a mapping, not {type(metadata).__name__}")
        problem = metadata_shape_problem(metadata)
        if problem is not None:
            raise InvalidConfigError(f"put: {problem}")
        serializable_metadata = get_serializable_checkpoint_metadata(config, metadata)
        memos: list[ListMemo] = []
        record, blobs, items, inherited = self._encode_checkpoint(
            configurable, checkpoint, serializable_metadata, new_versions, memos
        )
        try:
            await self.backend.put_checkpoint(record, blobs, items, inherited)
        except ItemsMissingError:
            # Something this put relies on without sending it is gone: a blob whose items
            # a list extends, or a value inherited from the parent (pruned, deleted by
            # another saver or process, expired). Nothing was written: the checkpoint
            # holds every value, so send them all, whole, and rely on nothing.
            self._memos.forget(record.thread_id)
            memos = []
            record, blobs, items, inherited = self._encode_checkpoint(
                configurable, checkpoint, serializable_metadata, new_versions, memos,
                resend=True,
            )
            await self.backend.put_checkpoint(record, blobs, items, inherited)
        self._memos.remember(memos)
        return _checkpoint_config(record.thread_id, record.checkpoint_ns, record.checkpoint_id)

    def _encode_checkpoint(
        self,
        configurable: Mapping[str, Any],
        checkpoint: Checkpoint,
        metadata: Mapping[str, Any],
        new_versions: ChannelVersions,
        memos: list[ListMemo],
        *,
        resend: bool = False,
    ) -> tuple[CheckpointRecord, list[BlobRecord], list[ItemRecord], list[str]]:
        """The records of a put, and the channels whose stored blob (at the version in
        channel_versions) it names without sending: ``put_checkpoint`` must find those.
        With ``resend``, every value is sent and nothing is relied on."""
        thread_id: str = configurable["thread_id"]
        ns: str = configurable["checkpoint_ns"]
        if not isinstance(checkpoint, Mapping):
            raise InvalidConfigError(f"put: checkpoint must be a mapping, not {type(checkpoint).__name__}")
        checkpoint_id = checkpoint.get("id")
        if not isinstance(checkpoint_id, str) or not checkpoint_id:
            raise InvalidConfigError("put: the checkpoint has no 'id'")
        check_text(checkpoint_id, "checkpoint id", "put")
        versions = check_versions(checkpoint.get("channel_versions"), "channel_versions", "put")
        if not (type(new_versions) is dict and new_versions.items() <= versions.items()):
            # (LangGraph's new versions are a part of channel_versions: checked already.)
            check_versions(new_versions, "new_versions", "put")
        if not isinstance(checkpoint.get("channel_values") or {}, Mapping):
            raise InvalidConfigError("put: the checkpoint's channel_values must be a mapping")
        codec = self.codec
        # String versions are kept once, in the record's plaintext channel_versions; other
        # types (ints, from hand-made checkpoints) stay in the skeleton to keep their type.
        dropped = ("channel_values", "id", "channel_versions") if all(
            isinstance(v, str) for v in versions.values()
        ) else ("channel_values", "id")
        skeleton = {k: v for k, v in checkpoint.items() if k not in dropped}
        values = checkpoint.get("channel_values") or {}
        # None values (LangGraph's branch:to:* triggers, every step) ride in the skeleton,
        # where they cost a few deflated bytes, instead of a blob row each.
        # What each channel holds (see CHANNEL_KINDS_KEY): None values ride here, where
        # they cost a letter, and so does "emptied", instead of a blob row each.
        skeleton[CHANNEL_KINDS_KEY] = "".join(
            KIND_EMPTY if c not in values else KIND_NONE if values[c] is None else KIND_VALUE
            for c in sorted(versions)
        )
        if resend:
            new_versions = {
                c: v for c, v in versions.items() if c in values and values[c] is not None
            }
        blobs: list[BlobRecord] = []
        items: list[ItemRecord] = []
        for channel, version in new_versions.items():
            # A new version with no value is an emptied channel: no blob is stored for it.
            if channel in values and values[channel] is not None:
                memo_count = len(memos)
                type_, data, refs, new_items = codec.encode_value(
                    values[channel],
                    f"channel {channel!r} of thread {thread_id!r}",
                    (thread_id, ns, channel),
                    memos,
                )
                items.extend(new_items)
                base_version = None
                if len(memos) > memo_count:
                    memos[-1].version = str(version)
                    base_version = memos[-1].base_version
                blobs.append(BlobRecord(channel, str(version), type_, data, refs, base_version))
        sent = {(b.channel, b.version) for b in blobs}
        inherited = [
            c
            for c, v in versions.items()
            if c in values and values[c] is not None and (c, str(v)) not in sent
        ]
        type_, data = codec.dumps_checkpoint(skeleton)
        run_id = metadata.get("run_id")
        record = CheckpointRecord(
            thread_id=thread_id,
            checkpoint_ns=ns,
            checkpoint_id=checkpoint_id,
            parent_checkpoint_id=configurable.get("checkpoint_id"),
            type=type_,
            data=data,
            channel_versions={k: str(v) for k, v in versions.items()},
            metadata=codec.dump_metadata(metadata),
            run_id=None if run_id is None else str(run_id),
        )
        if codec.sealed:
            record, blobs, items = codec.seal_checkpoint(record, blobs, items)
        return record, blobs, items, inherited

    @guarded
    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        configurable = _require_configurable(config, "put_writes")
        checkpoint_id = configurable.get("checkpoint_id")
        if not checkpoint_id:
            raise InvalidConfigError("put_writes: config['configurable'] needs a 'checkpoint_id'")
        check_text(task_id, "task_id", "put_writes")
        check_text(task_path, "task_path", "put_writes")
        if isinstance(writes, (str, bytes)) or not isinstance(writes, Sequence) or not all(
            isinstance(w, (tuple, list)) and len(w) == 2 for w in writes
        ):
            raise InvalidConfigError("put_writes: writes must be a sequence of (channel, value) pairs")
        check_channels((channel for channel, _ in writes), "put_writes")
        codec = self.codec
        records: list[WriteRecord] = []
        items: list[ItemRecord] = []
        for idx, (channel, value) in enumerate(writes):
            type_, data, refs, new_items = codec.encode_value(
                value, f"write to channel {channel!r} by task {task_id!r}"
            )
            items.extend(new_items)
            records.append(
                WriteRecord(
                    task_id=task_id,
                    idx=WRITES_IDX_MAP.get(channel, idx),
                    channel=channel,
                    type=type_,
                    data=data,
                    task_path=task_path,
                    item_refs=refs,
                )
            )
        if not records:
            return
        if codec.sealed:
            records, items = codec.seal_writes(
                configurable["thread_id"], configurable["checkpoint_ns"], checkpoint_id,
                records, items,
            )
        await self.backend.put_writes(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            checkpoint_id,
            records,
            items,
            replace=all(channel in WRITES_IDX_MAP for channel, _ in writes),
        )

    # -- deleting and copying --------------------------------------------------------------

    @guarded
    async def adelete_thread(self, thread_id: str) -> None:
        thread_id = check_thread_id(thread_id, "delete_thread")
        self._memos.forget(thread_id)
        await self.backend.delete_thread(thread_id)

    @guarded
    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        run_ids = check_id_list(run_ids, "run id", "delete_for_runs")
        if run_ids:
            self._memos.forget()
            await self.backend.delete_for_runs(run_ids)

    @guarded
    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        source = check_thread_id(source_thread_id, "copy_thread", "source thread id")
        target = check_thread_id(target_thread_id, "copy_thread", "target thread id")
        if source == target:
            raise InvalidConfigError("copy_thread: source and target thread are the same")
        self._memos.forget(target)
        if self.codec.sealed:
            await self._copy_sealed(source, target)
        else:
            await self.backend.copy_thread(source, target)

    async def _copy_sealed(self, source: str, target: str) -> None:
        """copy_thread of encrypted data: every value is bound to its thread, so a raw
        copy would not open. Streams the source, checkpoint by checkpoint, opening each
        value and sealing it again for the target (no value is deserialized), each
        blob and item sent once. Not one transaction: a copy cut short leaves part of
        the target, which copying again completes."""
        codec = self.codec
        sent_blobs: set[tuple[str, str, str]] = set()
        sent_items: set[bytes] = set()
        async for stored in self.backend.list_checkpoints(ListQuery(thread_id=source)):
            opened = codec.open_checkpoint(stored)
            record = dataclasses.replace(opened.record, thread_id=target)
            ns = record.checkpoint_ns
            blobs = []
            for blob in opened.blobs.values():
                if (ns, blob.channel, blob.version) not in sent_blobs:
                    sent_blobs.add((ns, blob.channel, blob.version))
                    blobs.append(dataclasses.replace(blob, base_version=None))
            items = [i for ref, i in opened.items.items() if ref not in sent_items]
            sent_items.update(i.ref for i in items)
            await self.backend.put_checkpoint(*codec.seal_checkpoint(record, blobs, items))
            by_task: dict[str, builtins.list[WriteRecord]] = {}
            for write in opened.writes:
                by_task.setdefault(write.task_id, []).append(write)
            for writes in by_task.values():
                sealed, _ = codec.seal_writes(target, ns, record.checkpoint_id, writes, [])
                await self.backend.put_writes(
                    target, ns, record.checkpoint_id, sealed, [], replace=True
                )

    @guarded
    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if strategy not in PRUNE_STRATEGIES:
            raise InvalidConfigError(
                f"prune: unknown strategy {show(strategy)}; use one of {', '.join(PRUNE_STRATEGIES)}"
            )
        for thread_id in dict.fromkeys(check_id_list(thread_ids, "thread id", "prune")):
            self._memos.forget(thread_id)
            if strategy == "delete":
                await self.backend.delete_thread(thread_id)
                continue
            keep: set[tuple[str, str]] = set()
            for head in await self.backend.checkpoint_heads(thread_id):
                keep.update(await self._delta_chain(head))
            await self.backend.retain(thread_id, keep)

    async def _delta_chain(self, head: CheckpointRecord) -> list[tuple[str, str]]:
        """The head plus every ancestor its DeltaChannels still need to rebuild their value.

        A delta channel's value at the head is rebuilt from the writes of ancestors back
        to the nearest one that stored a snapshot; pruning those would silently empty it.
        """
        kept = [(head.checkpoint_ns, head.checkpoint_id)]
        metadata = Codec.load_metadata(head.metadata, "prune")
        waiting = set((metadata.get("counters_since_delta_snapshot") or {}).keys())
        record: CheckpointRecord | None = head
        while waiting and record is not None and record.parent_checkpoint_id:
            parent = await self.backend.get_checkpoint(
                record.thread_id, record.checkpoint_ns, record.parent_checkpoint_id
            )
            if parent is None:
                break
            record = parent.record
            kept.append((record.checkpoint_ns, record.checkpoint_id))
            waiting -= {
                ch for ch in waiting
                if ch in parent.blobs and parent.blobs[ch].type != EMPTY_TYPE
            }
        return kept

    # -- the blocking API: the same coroutines, driven to completion -----------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._block("get_tuple", self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        ensure_no_running_loop("list")
        iterator = self.alist(config, filter=filter, before=before, limit=limit)

        async def next_batch() -> builtins.list[CheckpointTuple]:
            batch: builtins.list[CheckpointTuple] = []
            async for tup in iterator:
                batch.append(tup)
                if len(batch) >= SYNC_LIST_BATCH:
                    break
            return batch

        try:
            while True:
                batch = self._block("list", next_batch())
                yield from batch
                if len(batch) < SYNC_LIST_BATCH:
                    return
        finally:
            with contextlib.suppress(SaverClosedError):  # closed: nothing left to release
                self._block("list", cast(AsyncGenerator[CheckpointTuple, None], iterator).aclose())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._block("put", self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._block("put_writes", self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._block("delete_thread", self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._block("delete_for_runs", self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._block("copy_thread", self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._block("prune", self.aprune(thread_ids, strategy=strategy))

    # -- unified workflow state ------------------------------------------------------------

    @guarded
    async def asave_state(
        self,
        workflow_id: str,
        state: UnifiedWorkflowState,
        *,
        framework: Framework | None = None,
    ) -> RunnableConfig:
        """Write ``state`` as a new checkpoint on thread ``workflow_id``, child of its latest,
        so that a LangGraph graph invoked with ``thread_id=workflow_id`` goes on from it."""
        from ..mapping import checkpoint_from_state

        if not workflow_id:
            raise InvalidConfigError("save_state: workflow_id must be a non-empty string")
        parent = await self.aget_tuple({"configurable": {"thread_id": workflow_id}})
        checkpoint, metadata, new_versions = checkpoint_from_state(
            state, parent, framework or state.metadata.framework, self.get_next_version
        )
        config: RunnableConfig = {"configurable": {"thread_id": workflow_id, "checkpoint_ns": ""}}
        if parent is not None:
            config["configurable"]["checkpoint_id"] = parent.checkpoint["id"]
        return await self.aput(config, checkpoint, metadata, new_versions)  # type: ignore[arg-type]

    @guarded
    async def aload_state(
        self, workflow_id: str, checkpoint_id: str | None = None
    ) -> UnifiedWorkflowState | None:
        """Any checkpoint of a thread as unified state; None when the thread has none."""
        from ..mapping import state_from_checkpoint

        config: RunnableConfig = {"configurable": {"thread_id": workflow_id, "checkpoint_ns": ""}}
        if checkpoint_id is not None:
            config["configurable"]["checkpoint_id"] = checkpoint_id
        tup = await self.aget_tuple(config)
        if tup is None:
            if checkpoint_id is not None:
                raise CheckpointNotFoundError(
                    f"workflow {workflow_id!r} has no checkpoint {checkpoint_id!r}"
                )
            return None
        return state_from_checkpoint(tup)

    @guarded
    async def alist_workflows(self) -> builtins.list[str]:
        return await self.backend.list_thread_ids()

    @guarded
    async def ahistory(self, workflow_id: str, limit: int | None = None) -> builtins.list[UnifiedWorkflowState]:
        """The thread's root-namespace checkpoints as unified states, newest first."""
        from ..mapping import state_from_checkpoint

        config: RunnableConfig = {"configurable": {"thread_id": workflow_id, "checkpoint_ns": ""}}
        return [state_from_checkpoint(t) async for t in self.alist(config, limit=limit)]

    def save_state(
        self, workflow_id: str, state: UnifiedWorkflowState, *, framework: Framework | None = None
    ) -> RunnableConfig:
        return self._block("save_state", self.asave_state(workflow_id, state, framework=framework))

    def load_state(
        self, workflow_id: str, checkpoint_id: str | None = None
    ) -> UnifiedWorkflowState | None:
        return self._block("load_state", self.aload_state(workflow_id, checkpoint_id))

    def list_workflows(self) -> builtins.list[str]:
        return self._block("list_workflows", self.alist_workflows())

    def history(self, workflow_id: str, limit: int | None = None) -> builtins.list[UnifiedWorkflowState]:
        return self._block("history", self.ahistory(workflow_id, limit))


def _channel_kinds(
    stored: Any, record: CheckpointRecord, where: str
) -> dict[str, str] | None:
    """CHANNEL_KINDS_KEY of a skeleton as channel -> kind; None for an earlier release's."""
    if stored is None:
        return None
    names = sorted(record.channel_versions)
    if (
        not isinstance(stored, str)
        or len(stored) != len(names)
        or not set(stored) <= {KIND_VALUE, KIND_NONE, KIND_EMPTY}
    ):
        raise CorruptDataError(
            f"{where}: the stored kinds of its channels do not match its channel_versions"
        )
    return dict(zip(names, stored, strict=True))


async def _wait_event(event: threading.Event, timeout: float) -> None:
    """Wait for a thread's event from async code without blocking the caller's loop."""
    deadline = time.monotonic() + timeout
    while not event.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
