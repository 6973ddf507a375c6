"""The blocking API: each method hands its async twin's coroutine to the saver's runner.

Split from ``core.saver``, whose async methods hold all the logic: this mixin (a base
of ``UnifiedCheckpointSaver``) drives them to completion from synchronous code through
the ``SyncRunner`` the backend's ``BlockingMode`` chose (``core.sync``), so there is no
second copy of any logic.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import AsyncGenerator, Coroutine, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)

from ..errors import SaverClosedError
from .observability import in_caller_context
from .sync import CallGate, SyncRunner, ensure_no_running_loop

T = TypeVar("T")

# How many tuples the blocking ``list`` pulls from the I/O loop per hand-off.
SYNC_LIST_BATCH = 64


class BlockingTwins(BaseCheckpointSaver[str]):
    """LangGraph's blocking checkpointer methods, each its async twin run to completion."""

    _gate: CallGate
    _runner: SyncRunner

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
            return self._runner.run(in_caller_context(coro))
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

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return self._block(
            "get_delta_channel_history",
            self.aget_delta_channel_history(config=config, channels=channels),
        )

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

