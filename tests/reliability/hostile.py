"""Small helpers the hostile-input tests share: writing one checkpoint, reading a thread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import config_for, drop_saver, make_checkpoint, open_saver, saver_for, unique
from .private_servers import PrivateRedis


async def put_state(
    saver: UnifiedCheckpointSaver,
    thread_id: str,
    values: dict[str, Any],
    metadata: dict[str, Any] | None = None,
    *,
    checkpoint_ns: str = "",
    parent: str | None = None,
) -> RunnableConfig:
    """Store ``values`` as one new checkpoint of ``thread_id``; its config."""
    versions = {channel: saver.get_next_version(None) for channel in values}
    checkpoint = make_checkpoint(values, versions)
    return await saver.aput(
        config_for(thread_id, parent, ns=checkpoint_ns),
        checkpoint,
        {"source": "input", "step": -1, **(metadata or {})},  # type: ignore[typeddict-item]
        versions,
    )


async def thread_tuples(
    saver: UnifiedCheckpointSaver, thread_id: str, checkpoint_ns: str | None = None
) -> list[CheckpointTuple]:
    configurable: dict[str, Any] = {"thread_id": thread_id}
    if checkpoint_ns is not None:
        configurable["checkpoint_ns"] = checkpoint_ns
    return [t async for t in saver.alist({"configurable": configurable})]


async def snapshot(saver: UnifiedCheckpointSaver, thread_id: str) -> list[tuple[Any, ...]]:
    """Everything a reader sees of a thread, to compare before and after an attack."""
    return [
        (t.checkpoint["id"], t.checkpoint["channel_values"], t.metadata, t.pending_writes)
        for t in await thread_tuples(saver, thread_id)
    ]


def bystander_values() -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": f"bystander message {i} " + "x" * 80} for i in range(20)],
        "counter": 7,
    }


async def make_bystander(saver: UnifiedCheckpointSaver, thread_id: str = "bystander") -> list[tuple[Any, ...]]:
    """A thread that must come out of every attack on other threads untouched."""
    config = await put_state(saver, thread_id, bystander_values(), {"owner": "bystander"})
    await saver.aput_writes(config, [("messages", [{"role": "ai", "content": "y" * 100}])], "task-b")
    await put_state(saver, thread_id, {"counter": 8}, {"owner": "bystander"},
                    parent=config["configurable"]["checkpoint_id"])
    return await snapshot(saver, thread_id)


@asynccontextmanager
async def sandboxed_saver(
    backend: str, tmp_path: Path, sandbox_redis: PrivateRedis, **options: Any
) -> AsyncIterator[UnifiedCheckpointSaver]:
    """A fresh saver; a Redis one lives on the private sandbox server, so that garbled
    data can never stall the shared server. A script still running is killed on exit."""
    if backend != "redis":
        async with saver_for(backend, tmp_path, **options) as saver:
            yield saver
        return
    saver = open_saver("redis", unique("lus_sandbox"), url=sandbox_redis.url, **options)
    try:
        await saver.asetup()
        yield saver
    finally:
        sandbox_redis.cli("script", "kill")
        await drop_saver(saver)


def reopen(saver: UnifiedCheckpointSaver, **options: Any) -> UnifiedCheckpointSaver:
    """Another saver on the same storage, with nothing cached: what a process that starts
    later (or another process) reads. Memory has no other view of its data: itself."""
    backend = saver.backend
    if backend.name == "memory":
        return saver
    if backend.name == "sqlite":
        return open_saver("sqlite", backend.path, **options)  # type: ignore[attr-defined]
    if backend.name == "postgres":
        dsn = getattr(backend, "_conn_string", None)
        return open_saver("postgres", backend.schema, **({"dsn": dsn} if dsn else {}), **options)  # type: ignore[attr-defined]
    if backend.name == "redis":
        return open_saver("redis", backend.prefix, url=backend._url, **options)  # type: ignore[attr-defined]
    raise ValueError(backend.name)


@asynccontextmanager
async def reader_of(saver: UnifiedCheckpointSaver, **options: Any) -> AsyncIterator[UnifiedCheckpointSaver]:
    """A fresh reader (see ``reopen``), closed afterwards unless it is the saver itself."""
    reader = reopen(saver, **options)
    try:
        yield reader
    finally:
        if reader is not saver:
            await reader.aclose()
