"""What the lifecycle tests put on threads, and how they look at storage before and after."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig

from langgraph_unified_store.core.lifecycle import Removed
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..reliability import raw
from ..support import checkpoint_and_versions, config_for, thread_config

NONE_LEFT = {"blobs": 0, "writes": 0, "items": 0, "missing_items": 0, "other": 0}


async def seed(
    saver: UnifiedCheckpointSaver,
    thread_id: str,
    steps: int = 2,
    *,
    ns: str = "",
    writes: bool = True,
    **metadata: Any,
) -> list[RunnableConfig]:
    """A chain of ``steps`` checkpoints in namespace ``ns`` (each a new version of its
    channels, one holding a list long enough to be stored as items), and a pending write
    on the last; every checkpoint's metadata holds ``metadata`` (``owner``: the thread id
    unless given). Returns their configs."""
    metadata.setdefault("owner", thread_id)
    configs: list[RunnableConfig] = []
    parent: str | None = None
    for step in range(steps):
        values = {"v": f"{thread_id}/{ns}/{step}", "log": [f"{thread_id}-{step}-{i}" * 4 for i in range(40)]}
        checkpoint, versions = checkpoint_and_versions(values, step)
        config = await saver.aput(
            config_for(thread_id, parent, ns=ns),
            checkpoint,
            {"source": "loop", "step": step, **metadata},
            versions,
        )
        parent = config["configurable"]["checkpoint_id"]
        configs.append(config)
    if writes and configs:
        await saver.aput_writes(configs[-1], [("v", "pending"), ("log", ["w"] * 30)], "task-1")
    return configs


async def raw_counts(saver: UnifiedCheckpointSaver, thread_ids: list[str]) -> Removed:
    """What storage holds of these threads, by kind, as a removal would count it."""
    total = Removed()
    for thread_id in thread_ids:
        stored = await raw.stored_thread(saver, thread_id)
        total.add(
            Removed(
                checkpoints=len(stored.checkpoints),
                writes=len(stored.writes),
                blobs=len(stored.blobs),
                items=len(stored.items),
            )
        )
    return total


def counts_of(removed: Removed) -> tuple[int, int, int, int]:
    return (removed.checkpoints, removed.writes, removed.blobs, removed.items)


async def snapshot(saver: UnifiedCheckpointSaver, thread_id: str) -> list[Any]:
    """Every checkpoint of a thread, whole: what 'untouched' compares."""
    return [
        (
            t.config["configurable"]["checkpoint_ns"],
            t.checkpoint["id"],
            t.checkpoint["channel_values"],
            dict(t.metadata),
            sorted(map(repr, t.pending_writes or [])),
        )
        async for t in saver.alist(thread_config(thread_id))
    ]


async def nothing_left(saver: UnifiedCheckpointSaver, thread_ids: list[str]) -> dict[str, list[str]]:
    """Thread id -> what raw storage still holds of it, for those that hold anything."""
    left = {t: await raw.thread_left(saver, t) for t in thread_ids}
    return {t: what for t, what in left.items() if what}


async def all_load(saver: UnifiedCheckpointSaver, thread_ids: list[str]) -> int:
    """get_tuple of every listed checkpoint of these threads works and matches the
    listing; returns how many there were."""
    seen = 0
    for thread_id in thread_ids:
        async for listed in saver.alist(thread_config(thread_id)):
            loaded = await saver.aget_tuple(listed.config)
            assert loaded is not None, listed.config
            assert loaded.checkpoint["channel_values"] == listed.checkpoint["channel_values"]
            seen += 1
    return seen
