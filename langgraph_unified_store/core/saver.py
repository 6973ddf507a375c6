"""The one checkpoint saver: LangGraph's semantics written once, above every backend.

The async methods hold the logic. The blocking twins (``core.blocking``, a base of the
saver) hand the same coroutines to the saver's ``SyncRunner`` (``core.sync``), chosen by
the backend's ``BlockingMode``. There is no second copy of any logic. Turning a
checkpoint into records and back is ``core.checkpoints``; admitting each call through
the saver's ``CallGate`` is ``core.guards``.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import dataclasses
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Final, Self

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from ..errors import (
    CheckpointNotFoundError,
    InvalidConfigError,
    ItemsMissingError,
    SaverClosedError,
)
from ..state import Framework, UnifiedWorkflowState
from .backend import Backend
from .checkpoints import CHANNEL_KINDS_KEY as CHANNEL_KINDS_KEY
from .checkpoints import NONE_CHANNELS_KEY as NONE_CHANNELS_KEY
from .checkpoints import (
    checkpoint_config,
    decode_checkpoint,
    encode_checkpoint,
    encode_writes,
    list_query,
    require_configurable,
)
from .codec import Codec
from .decoded_items import DecodedItems
from .delta_history import delta_channel_history
from .guards import guarded, guarded_iterator
from .health import SaverHealth
from .lifecycle import Clock, ThreadClock, check_clock, check_ttl
from .lifecycle_methods import LifecycleMethods
from .limits import ReadLimits, check_read_limits
from .list_memos import ListMemo, ListMemos
from .observability import (
    COPIED,
    DELETED,
    LISTED,
    LOADED,
    RUNS_DELETED,
    SAVED,
    WRITES_SAVED,
    observe,
    stored_bytes,
)
from .options import flag, seconds_or_none, seconds_or_zero
from .records import (
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
    CANCEL_TIMEOUT,
    DEFAULT_CLOSE_TIMEOUT,
    STOP_TIMEOUT,
    CallGate,
    runner_for,
)
from .validate import (
    check_channels,
    check_id_list,
    check_text,
    check_thread_id,
    metadata_shape_problem,
)

logger = logging.getLogger(__name__)

# Seconds close waits for the backend to close its connections (each is bounded itself).
BACKEND_CLOSE_TIMEOUT: Final = 10.0


def _metadata_has(metadata: Mapping[str, Any], key: str, value: Any) -> bool:
    """The filter rule for values backends cannot compare: None matches a missing key
    or null, anything else must be present and equal."""
    return metadata_value_matches(metadata, key, value)


class UnifiedCheckpointSaver(LifecycleMethods, SaverHealth):
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
    decode_items_once: bool = True
    """``list`` decodes each stored item once per call (off: as before, for measuring)."""

    def __init__(
        self,
        backend: Backend,
        *,
        serde: SerializerProtocol | None = None,
        encryption_key: bytes | str | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        read_limits: ReadLimits | None = None,
        ttl: float | timedelta | None = None,
        refresh_on_read: bool = False,
        clock: Clock | None = None,
        sweep_interval: float | None = None,
    ) -> None:
        close_timeout = seconds_or_zero("close_timeout", close_timeout)
        lifecycle = ThreadClock(
            check_ttl("ttl", ttl, backend.max_ttl, backend.name),
            flag("refresh_on_read", refresh_on_read),
            check_clock(clock),
        )
        sweep_interval = seconds_or_none("sweep_interval", sweep_interval)
        self.read_limits = check_read_limits(read_limits)
        resolved = resolve_serde(serde, encryption_key)
        if resolved.warning is not None:
            warn_unsafe_serde(resolved.warning)
        super().__init__(serde=resolved.public)
        self.backend = backend
        backend.read_limits = self.read_limits
        backend.lifecycle = lifecycle
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
        if sweep_interval is not None:
            self.start_sweeper(sweep_interval)

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
        self._stop_sweeper()
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
        self._stop_sweeper()
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

    def _to_tuple(
        self, stored: StoredCheckpoint, decoded: DecodedItems | None = None
    ) -> CheckpointTuple:
        return decode_checkpoint(self.codec, self.read_limits, stored, decoded)

    @guarded
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = require_configurable(config, "get_tuple")
        with observe(LOADED, self.backend.name) as op:
            stored = await self.backend.get_checkpoint(
                configurable["thread_id"],
                configurable["checkpoint_ns"],
                configurable.get("checkpoint_id"),
            )
            found = None if stored is None else self._to_tuple(stored)
            if op:
                op.note(
                    thread_id=configurable["thread_id"],
                    checkpoint_ns=configurable["checkpoint_ns"],
                    checkpoint_id=configurable.get("checkpoint_id")
                    if stored is None else stored.record.checkpoint_id,
                    found=stored is not None,
                    bytes=0 if stored is None else _stored_size(stored),
                )
            return found

    @guarded_iterator
    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        query, leftover = list_query(config, filter, before, limit)
        if limit == 0:
            return
        remaining = limit
        # Each stored item is decoded once per call; every other use gets a fresh copy.
        decoded = DecodedItems() if self.decode_items_once else None
        # Not the current span: the blocking list steps through it in several tasks.
        with observe(LISTED, self.backend.name, current=False) as op:
            count = size = 0
            if op:
                op.note(thread_id=query.thread_id, checkpoint_ns=query.checkpoint_ns, count=0, bytes=0)
            async for stored in self.backend.list_checkpoints(query):
                if leftover:
                    metadata = Codec.load_metadata(stored.record.metadata, "list")
                    if not all(_metadata_has(metadata, k, v) for k, v in leftover.items()):
                        continue
                tup = self._to_tuple(stored, decoded)
                if op:
                    count += 1
                    size += _stored_size(stored)
                    op.note(count=count, bytes=size)
                yield tup
                if remaining is not None:
                    remaining -= 1
                    if remaining <= 0:
                        return

    @guarded
    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """The base class's answer in one backend read (``core.delta_history``)."""
        return await delta_channel_history(
            self.codec, self.read_limits, self.backend, config, channels
        )

    # -- writing ---------------------------------------------------------------------------

    @guarded
    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = require_configurable(config, "put")
        if not isinstance(metadata, Mapping):
            raise InvalidConfigError(f"put: metadata must be a mapping, not {type(metadata).__name__}")
        problem = metadata_shape_problem(metadata)
        if problem is not None:
            raise InvalidConfigError(f"put: {problem}")
        with observe(SAVED, self.backend.name) as op:
            serializable_metadata = get_serializable_checkpoint_metadata(config, metadata)
            memos: list[ListMemo] = []
            record, blobs, items, inherited = self._encode_checkpoint(
                configurable, checkpoint, serializable_metadata, new_versions, memos
            )
            try:
                await self.backend.put_checkpoint(record, blobs, items, inherited)
            except ItemsMissingError:
                # Something this put relies on without sending it is gone: a blob whose
                # items a list extends, or a value inherited from the parent (pruned,
                # deleted by another saver or process, expired). Nothing was written: the
                # checkpoint holds every value, so send them all, whole, and rely on nothing.
                self._memos.forget(record.thread_id)
                memos = []
                record, blobs, items, inherited = self._encode_checkpoint(
                    configurable, checkpoint, serializable_metadata, new_versions, memos,
                    resend=True,
                )
                await self.backend.put_checkpoint(record, blobs, items, inherited)
            self._memos.remember(memos)
            if op:
                op.note(
                    thread_id=record.thread_id,
                    checkpoint_ns=record.checkpoint_ns,
                    checkpoint_id=record.checkpoint_id,
                    bytes=stored_bytes(record, *blobs, *items),
                )
            return checkpoint_config(record.thread_id, record.checkpoint_ns, record.checkpoint_id)

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
        """``core.checkpoints.encode_checkpoint`` with this saver's codec."""
        return encode_checkpoint(
            self.codec, configurable, checkpoint, metadata, new_versions, memos, resend=resend
        )

    @guarded
    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        configurable = require_configurable(config, "put_writes")
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
        records, items = encode_writes(
            self.codec, configurable, checkpoint_id, writes, task_id, task_path
        )
        if not records:
            return
        with observe(WRITES_SAVED, self.backend.name) as op:
            await self.backend.put_writes(
                configurable["thread_id"],
                configurable["checkpoint_ns"],
                checkpoint_id,
                records,
                items,
                replace=all(channel in WRITES_IDX_MAP for channel, _ in writes),
            )
            if op:
                op.note(
                    thread_id=configurable["thread_id"],
                    checkpoint_ns=configurable["checkpoint_ns"],
                    checkpoint_id=checkpoint_id,
                    count=len(records),
                    bytes=stored_bytes(*records, *items),
                )

    # -- deleting and copying --------------------------------------------------------------

    @guarded
    async def adelete_thread(self, thread_id: str) -> None:
        thread_id = check_thread_id(thread_id, "delete_thread")
        self._memos.forget(thread_id)
        with observe(DELETED, self.backend.name) as op:
            await self.backend.delete_thread(thread_id)
            op.note(thread_id=thread_id)

    @guarded
    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        run_ids = check_id_list(run_ids, "run id", "delete_for_runs")
        if run_ids:
            self._memos.forget()
            with observe(RUNS_DELETED, self.backend.name) as op:
                await self.backend.delete_for_runs(run_ids)
                op.note(count=len(run_ids))

    @guarded
    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        source = check_thread_id(source_thread_id, "copy_thread", "source thread id")
        target = check_thread_id(target_thread_id, "copy_thread", "target thread id")
        if source == target:
            raise InvalidConfigError("copy_thread: source and target thread are the same")
        self._memos.forget(target)
        with observe(COPIED, self.backend.name) as op:
            if self.codec.sealed:
                await self._copy_sealed(source, target)
            else:
                await self.backend.copy_thread(source, target)
            op.note(thread_id=source, target_thread_id=target)

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


def _stored_size(stored: StoredCheckpoint) -> int:
    """The bytes a read brought back: the record, its blobs, writes and items."""
    return stored_bytes(
        stored.record, *stored.blobs.values(), *stored.writes, *stored.items.values()
    )


async def _wait_event(event: threading.Event, timeout: float) -> None:
    """Wait for a thread's event from async code without blocking the caller's loop."""
    deadline = time.monotonic() + timeout
    while not event.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
