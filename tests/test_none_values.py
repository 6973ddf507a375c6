"""None-valued channels ride in the checkpoint record, not in a blob each, on every backend."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import empty_checkpoint

from langgraph_unified_store import MemorySaver
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver


def _config(thread_id: str, checkpoint_id: str | None = None) -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


async def _put(
    saver: UnifiedCheckpointSaver,
    parent: dict[str, Any],
    checkpoint_id: str,
    values: dict[str, Any],
    versions: dict[str, str],
    new: dict[str, str],
) -> dict[str, Any]:
    checkpoint = empty_checkpoint()
    checkpoint["id"] = checkpoint_id
    checkpoint["channel_values"] = values
    checkpoint["channel_versions"] = versions  # type: ignore[typeddict-item]
    return await saver.aput(parent, checkpoint, {"source": "loop", "step": 0}, new)  # type: ignore[arg-type]


async def test_none_values_read_back_at_old_and_new_versions(saver: UnifiedCheckpointSaver) -> None:
    first = await _put(
        saver,
        _config("t"),
        "1",
        {"trigger": None, "data": [1, 2], "flag": False},
        {"trigger": "a1.000001", "data": "a1.000001", "flag": "a1.000001"},
        {"trigger": "a1.000001", "data": "a1.000001", "flag": "a1.000001"},
    )
    # "trigger" keeps its old version (and None); "data" turns None at a new version.
    await _put(
        saver,
        first,
        "2",
        {"trigger": None, "data": None, "flag": False},
        {"trigger": "a1.000001", "data": "a2.000002", "flag": "a1.000001"},
        {"data": "a2.000002"},
    )
    latest = await saver.aget_tuple(_config("t"))
    assert latest is not None
    assert latest.checkpoint["channel_values"] == {"trigger": None, "data": None, "flag": False}
    earlier = await saver.aget_tuple(_config("t", "1"))
    assert earlier is not None
    assert earlier.checkpoint["channel_values"] == {"trigger": None, "data": [1, 2], "flag": False}
    assert "lus_none" not in latest.checkpoint
    await saver.acopy_thread("t", "copy")
    copied = await saver.aget_tuple(_config("copy"))
    assert copied is not None and copied.checkpoint["channel_values"] == latest.checkpoint["channel_values"]


async def test_none_values_store_no_blob() -> None:
    saver = MemorySaver()
    await _put(
        saver,
        _config("t"),
        "1",
        {"trigger": None, "data": 1},
        {"trigger": "a1.000001", "data": "a1.000001"},
        {"trigger": "a1.000001", "data": "a1.000001"},
    )
    stored = await saver.backend.get_checkpoint("t", "", None)
    assert stored is not None and set(stored.blobs) == {"data"}
