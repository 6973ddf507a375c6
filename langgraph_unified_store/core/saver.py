"""The one checkpoint saver: LangGraph's semantics written once, above every backend.

The async methods hold the logic. The blocking twins hand the same coroutines to the
saver's private I/O loop (see ``core.sync``), or, for an in-process backend, run them
inline. There is no second copy of any logic.
"""

from __future__ import annotations

import builtins
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self, TypeVar, cast

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
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer

from ..errors import (
    CheckpointNotFoundError,
    CorruptDataError,
    InvalidConfigError,
    ItemsMissingError,
    UnifiedStoreError,
)
from ..state import Framework, UnifiedWorkflowState
from .backend import Backend
from .codec import Codec, ListMemo, ListMemos
from .limits import ReadBudget, ReadLimits, check_read_limits
from .records import (
    EMPTY_TYPE,
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
)
from .serde import AesGcmCipher, SafeSerializer
from .sync import BLOCKING_INLINE, LoopThread, ensure_no_running_loop, run_inline

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How many tuples the blocking ``list`` pulls from the I/O loop per hand-off.
SYNC_LIST_BATCH = 64
PRUNE_STRATEGIES = ("keep_latest", "delete")


def _require_configurable(config: RunnableConfig | None, what: str) -> dict[str, Any]:
    if not config or not isinstance(config.get("configurable"), Mapping):
        raise InvalidConfigError(
            f"{what}: config has no 'configurable' section with a 'thread_id' "
            "(e.g. {'configurable': {'thread_id': 'my-thread'}})"
        )
    configurable: dict[str, Any] = dict(config["configurable"])
    thread_id = configurable.get("thread_id")
    if thread_id is None or thread_id == "":
        raise InvalidConfigError(
            f"{what}: config['configurable'] needs a 'thread_id' "
            "(e.g. {'configurable': {'thread_id': 'my-thread'}})"
        )
    configurable["thread_id"] = str(thread_id)
    ns = configurable.get("checkpoint_ns") or ""
    if not isinstance(ns, str):
        raise InvalidConfigError(f"{what}: checkpoint_ns must be a string, not {type(ns).__name__}")
    configurable["checkpoint_ns"] = ns
    checkpoint_id = configurable.get("checkpoint_id")
    if checkpoint_id is not None and not isinstance(checkpoint_id, str):
        raise InvalidConfigError(f"{what}: checkpoint_id must be a string")
    return configurable


# Skeleton key listing the channels whose value is None (see _encode_checkpoint).
NONE_CHANNELS_KEY: Final = "lus_none"


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
    if value is None:
        return metadata.get(key) is None
    return key in metadata and metadata[key] == value


def _pushable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (
        isinstance(value, float) and value != value
    )


class UnifiedCheckpointSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer over any ``Backend``; also reads and writes unified state.

    Pass ``encryption_key`` (or an ``EncryptedSerializer`` as ``serde``) to encrypt every
    stored value; without a ``serde`` the safe-by-default ``SafeSerializer`` is used.
    ``read_limits`` (a ``ReadLimits``) bounds what reading stored data may decode to.
    """

    backend: Backend

    def __init__(
        self,
        backend: Backend,
        *,
        serde: SerializerProtocol | None = None,
        encryption_key: bytes | str | None = None,
        read_limits: ReadLimits | None = None,
    ) -> None:
        self.read_limits = check_read_limits(read_limits)
        base_serde = serde if serde is not None else SafeSerializer()
        if encryption_key is not None:
            if isinstance(base_serde, EncryptedSerializer):
                raise InvalidConfigError("pass either encryption_key or an EncryptedSerializer")
            base_serde = EncryptedSerializer(AesGcmCipher(encryption_key), base_serde)
        super().__init__(serde=base_serde)
        self.backend = backend
        backend.read_limits = self.read_limits
        self._io = LoopThread(f"{type(self).__name__}-io")
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

    def _block(self, method: str, coro: Coroutine[Any, Any, T]) -> T:
        """Run one async core call to completion for a blocking method."""
        try:
            ensure_no_running_loop(method)
        except Exception:
            coro.close()
            raise
        if self.backend.inline:
            return run_inline(coro)
        if self.backend.blocks_inline:
            token = BLOCKING_INLINE.set(True)
            try:
                return run_inline(coro)
            finally:
                BLOCKING_INLINE.reset(token)
        return self._io.run(coro)

    def _block_anywhere(self, coro: Coroutine[Any, Any, T]) -> T:
        """Like ``_block`` but allowed on a loop thread: for sync-only framework hooks
        (CrewAI persistence) that are themselves called from inside a running loop."""
        if self.backend.inline:
            return run_inline(coro)
        return self._io.run(coro)

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

    async def asetup(self) -> None:
        await self.backend.setup()

    def setup(self) -> None:
        self._block("setup", self.backend.setup())

    async def aclose(self) -> None:
        await self.backend.aclose()
        if self._io.started:
            # Connections the blocking API opened live on the I/O loop; close them there.
            await _await_in_thread(self._io, self.backend.aclose())
        self._io.stop()

    def close(self) -> None:
        if self.backend.inline:
            run_inline(self.backend.aclose())
        else:
            # aiosqlite, asyncpg and redis connections close asynchronously; the I/O loop
            # can close what the async API opened as well as its own.
            self._io.run(self.backend.aclose())
        self._io.stop()

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
        checkpoint = cast(Checkpoint, decoded)
        # The id and string versions are stored once, in the record (see _encode_checkpoint).
        checkpoint["id"] = record.checkpoint_id
        if "channel_versions" not in checkpoint:
            checkpoint["channel_versions"] = dict(record.channel_versions)
        values: dict[str, Any] = {
            c: None for c in none_channels if isinstance(c, str) and c in record.channel_versions
        }
        for channel in record.channel_versions:
            if channel in values:
                continue
            blob = stored.blobs.get(channel)
            if blob is None or blob.type == EMPTY_TYPE:
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
        parent = record.parent_checkpoint_id
        return CheckpointTuple(
            config=_checkpoint_config(record.thread_id, record.checkpoint_ns, record.checkpoint_id),
            checkpoint=checkpoint,
            metadata=codec.load_metadata(record.metadata, where),  # type: ignore[arg-type]
            parent_config=(
                _checkpoint_config(record.thread_id, record.checkpoint_ns, parent) if parent else None
            ),
            pending_writes=pending,
        )

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = _require_configurable(config, "get_tuple")
        stored = await self.backend.get_checkpoint(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            configurable.get("checkpoint_id"),
        )
        return None if stored is None else self._to_tuple(stored)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        query = ListQuery(limit=limit)
        if config is not None:
            configurable = config.get("configurable") or {}
            if configurable.get("thread_id") not in (None, ""):
                query.thread_id = str(configurable["thread_id"])
            ns = configurable.get("checkpoint_ns")
            query.checkpoint_ns = ns if isinstance(ns, str) else None
            query.checkpoint_id = configurable.get("checkpoint_id")
        if before is not None:
            query.before = get_checkpoint_id(before)
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidConfigError(f"list: limit must be a non-negative integer, not {limit!r}")
        if limit == 0:
            return
        leftover: dict[str, Any] = {}
        for key, value in (filter or {}).items():
            if not isinstance(key, str):
                raise InvalidConfigError(f"list: filter keys must be strings, not {key!r}")
            if _pushable(value):
                query.filter[key] = value
            else:
                leftover[key] = value
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

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = _require_configurable(config, "put")
        serializable_metadata = get_serializable_checkpoint_metadata(config, metadata)
        memos: list[ListMemo] = []
        record, blobs, items = self._encode_checkpoint(
            configurable, checkpoint, serializable_metadata, new_versions, memos
        )
        try:
            await self.backend.put_checkpoint(record, blobs, items)
        except ItemsMissingError:
            # A list was encoded as an extension of a blob that is gone (deleted by
            # another saver or process, expired). Nothing was written: send it whole.
            self._memos.forget(record.thread_id)
            memos = []
            record, blobs, items = self._encode_checkpoint(
                configurable, checkpoint, serializable_metadata, new_versions, memos
            )
            await self.backend.put_checkpoint(record, blobs, items)
        self._memos.remember(memos)
        return _checkpoint_config(record.thread_id, record.checkpoint_ns, record.checkpoint_id)

    def _encode_checkpoint(
        self,
        configurable: Mapping[str, Any],
        checkpoint: Checkpoint,
        metadata: Mapping[str, Any],
        new_versions: ChannelVersions,
        memos: list[ListMemo],
    ) -> tuple[CheckpointRecord, list[BlobRecord], list[ItemRecord]]:
        thread_id: str = configurable["thread_id"]
        ns: str = configurable["checkpoint_ns"]
        checkpoint_id = checkpoint.get("id")
        if not isinstance(checkpoint_id, str) or not checkpoint_id:
            raise InvalidConfigError("put: the checkpoint has no 'id'")
        codec = self.codec
        versions = checkpoint["channel_versions"]
        # String versions are kept once, in the record's plaintext channel_versions; other
        # types (ints, from hand-made checkpoints) stay in the skeleton to keep their type.
        dropped = ("channel_values", "id", "channel_versions") if all(
            isinstance(v, str) for v in versions.values()
        ) else ("channel_values", "id")
        skeleton = {k: v for k, v in checkpoint.items() if k not in dropped}
        values = checkpoint.get("channel_values") or {}
        # None values (LangGraph's branch:to:* triggers, every step) ride in the skeleton,
        # where they cost a few deflated bytes, instead of a blob row each.
        none_channels = sorted(c for c in versions if c in values and values[c] is None)
        if none_channels:
            skeleton[NONE_CHANNELS_KEY] = none_channels
        blobs: list[BlobRecord] = []
        items: list[ItemRecord] = []
        for channel, version in new_versions.items():
            # A new version with no value is an emptied channel: no blob is how it reads back.
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
        return record, blobs, items

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
        await self.backend.put_writes(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            checkpoint_id,
            records,
            items,
            replace=all(channel in WRITES_IDX_MAP for channel, _ in writes),
        )

    # -- deleting and copying --------------------------------------------------------------

    async def adelete_thread(self, thread_id: str) -> None:
        self._memos.forget(str(thread_id))
        await self.backend.delete_thread(str(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        run_ids = [str(r) for r in run_ids]
        if run_ids:
            self._memos.forget()
            await self.backend.delete_for_runs(run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        if str(source_thread_id) == str(target_thread_id):
            raise InvalidConfigError("copy_thread: source and target thread are the same")
        self._memos.forget(str(target_thread_id))
        await self.backend.copy_thread(str(source_thread_id), str(target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if strategy not in PRUNE_STRATEGIES:
            raise InvalidConfigError(
                f"prune: unknown strategy {strategy!r}; use one of {', '.join(PRUNE_STRATEGIES)}"
            )
        for thread_id in dict.fromkeys(str(t) for t in thread_ids):
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

    async def aload_state(
        self, workflow_id: str, checkpoint_id: str | None = None
    ) -> UnifiedWorkflowState | None:
        """Any checkpoint of a thread as unified state; None when the thread has none."""
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
        return _state_of(tup)

    async def alist_workflows(self) -> builtins.list[str]:
        return await self.backend.list_thread_ids()

    async def ahistory(self, workflow_id: str, limit: int | None = None) -> builtins.list[UnifiedWorkflowState]:
        """The thread's root-namespace checkpoints as unified states, newest first."""
        config: RunnableConfig = {"configurable": {"thread_id": workflow_id, "checkpoint_ns": ""}}
        return [_state_of(t) async for t in self.alist(config, limit=limit)]

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


def _state_of(tup: CheckpointTuple) -> UnifiedWorkflowState:
    """A checkpoint as unified state; stored values of the wrong shape (a string where a
    message belongs...) are CorruptDataError naming the checkpoint, not a bare error."""
    from ..mapping import state_from_checkpoint

    try:
        return state_from_checkpoint(tup)
    except UnifiedStoreError:
        raise
    except Exception as exc:
        configurable = tup.config["configurable"]
        raise CorruptDataError(
            f"thread {configurable['thread_id']!r}, namespace {configurable['checkpoint_ns']!r}, "
            f"checkpoint {configurable['checkpoint_id']!r}: stored state cannot be read as "
            f"unified state ({type(exc).__name__}: {exc})"
        ) from exc


async def _await_in_thread(io: LoopThread, coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine on the I/O loop from async code without blocking the caller's loop."""
    import asyncio

    await asyncio.to_thread(io.run, coro)
