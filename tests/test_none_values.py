"""None-valued channels ride in the checkpoint record, not in a blob each, on every backend."""

from __future__ import annotations

from typing import Any

from langgraph_unified_store import MemorySaver
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from .support import config_for, make_checkpoint


async def _put(
    saver: UnifiedCheckpointSaver,
    parent: dict[str, Any],
    checkpoint_id: str,
    values: dict[str, Any],
    versions: dict[str, str],
    new: dict[str, str],
) -> dict[str, Any]:
    checkpoint = make_checkpoint(values, versions, checkpoint_id=checkpoint_id)
    return await saver.aput(parent, checkpoint, {"source": "loop", "step": 0}, new)  # type: ignore[arg-type]


async def test_none_values_read_back_at_old_and_new_versions(saver: UnifiedCheckpointSaver) -> None:
    first = await _put(
        saver,
        config_for("t"),
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
    latest = await saver.aget_tuple(config_for("t"))
    assert latest is not None
    assert latest.checkpoint["channel_values"] == {"trigger": None, "data": None, "flag": False}
    earlier = await saver.aget_tuple(config_for("t", "1"))
    assert earlier is not None
    assert earlier.checkpoint["channel_values"] == {"trigger": None, "data": [1, 2], "flag": False}
    assert "lus_none" not in latest.checkpoint
    await saver.acopy_thread("t", "copy")
    copied = await saver.aget_tuple(config_for("copy"))
    assert copied is not None and copied.checkpoint["channel_values"] == latest.checkpoint["channel_values"]


async def test_none_values_store_no_blob() -> None:
    saver = MemorySaver()
    await _put(
        saver,
        config_for("t"),
        "1",
        {"trigger": None, "data": 1},
        {"trigger": "a1.000001", "data": "a1.000001"},
        {"trigger": "a1.000001", "data": "a1.000001"},
    )
    stored = await saver.backend.get_checkpoint("t", "", None)
    assert stored is not None and set(stored.blobs) == {"data"}
