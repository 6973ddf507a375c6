"""A deterministic checkpoint workload, shared by the test process and its children.

Step ``s`` of a thread has a known state (so a reader can check every value exactly):
a growing message list (elements large enough to become items, and enough of them
to be cut into segments), a list of short tags (kept inline), a counter, and a channel
written only at step 0 (so later checkpoints name an old blob). After each checkpoint
the writer also stores two pending writes for it, one of them a list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.base import LATEST_VERSION, Checkpoint, CheckpointTuple
from langgraph.checkpoint.base.id import uuid6

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import config_for

CHANNELS = ("messages", "tags", "counter")


def message(i: int) -> BaseMessage | dict[str, Any]:
    """Element ``i`` of the message list: mostly plain dicts (cheap to check by the
    thousand), every tenth a LangChain message (what real graphs store)."""
    text = f"message {i}: " + "lorem ipsum dolor sit amet " * 3
    if i % 10 == 0:
        return HumanMessage(content=text, id=f"msg-{i}")
    if i % 10 == 5:
        return AIMessage(content=text, id=f"msg-{i}")
    return {"role": "user" if i % 2 else "assistant", "content": text, "id": f"msg-{i}"}


def state_at(step: int) -> dict[str, Any]:
    return {
        "messages": [message(i) for i in range(step + 1)],
        "tags": [f"t{i}" for i in range(step % 37)],
        "counter": step,
    }


def writes_after(step: int) -> list[tuple[str, Any]]:
    return [("messages", [message(step + 1)]), ("counter", step + 1)]


def next_checkpoint(
    saver: UnifiedCheckpointSaver, previous: Checkpoint | None, step: int
) -> tuple[Checkpoint, dict[str, str]]:
    """The checkpoint of ``step``, child of ``previous``, and its new channel versions.

    As in LangGraph, ``channel_values`` holds every channel's value, changed or not: the
    core may have to re-send an unchanged one whose blob was collected meanwhile."""
    values = expected_values(step)
    versions = dict(previous["channel_versions"]) if previous else {}
    changed = list(CHANNELS) if step == 0 else ["messages", "counter"] + (["tags"] if step % 37 else [])
    if step == 0:
        changed.append("static")
    new_versions = {ch: saver.get_next_version(versions.get(ch)) for ch in changed}
    versions.update(new_versions)
    checkpoint: Checkpoint = {
        "v": LATEST_VERSION,
        "id": str(uuid6(clock_seq=step)),
        "ts": datetime.now(UTC).isoformat(),
        "channel_values": values,
        "channel_versions": versions,
        "versions_seen": {"__input__": {}},
        "updated_channels": changed,
    }
    return checkpoint, new_versions


def metadata_for(step: int, writer: str) -> dict[str, Any]:
    return {"source": "loop", "step": step, "writer": writer, "parents": {}}


def expected_values(step: int) -> dict[str, Any]:
    values = state_at(step)
    if not values["tags"]:
        # Step 37k rewrote nothing into "tags": the channel keeps its previous version's
        # value, which is the last non-empty tag list... except at step 0.
        values["tags"] = [f"t{i}" for i in range(36)] if step else []
    values["static"] = {"written": "once", "padding": "p" * 100}
    return values


def check_tuple(tup: CheckpointTuple, where: str) -> int:
    """Assert one listed checkpoint is exactly what the workload wrote; its step."""
    step = tup.metadata["step"]
    values = tup.checkpoint["channel_values"]
    expected = expected_values(step)
    assert values == expected, f"{where}: state of step {step} differs from what was written"
    if tup.pending_writes:
        got = [(channel, value) for _task, channel, value in tup.pending_writes]
        assert got == writes_after(step), f"{where}: pending writes of step {step} differ"
    return int(step)


def verify_chain(
    tuples: Sequence[CheckpointTuple],
    acked_checkpoints: Iterable[str],
    acked_writes: Iterable[str],
    where: str,
) -> tuple[int, int]:
    """One writer's chain as listed (newest first): every checkpoint reads back exactly,
    every parent exists and is the previous step, and everything acknowledged is there.
    Returns how many checkpoints and pending writes were verified."""
    ids = [t.checkpoint["id"] for t in tuples]
    assert ids == sorted(ids, reverse=True), f"{where}: list() is not newest first"
    assert len(set(ids)) == len(ids), f"{where}: list() returned a checkpoint twice"
    step_of = {t.checkpoint["id"]: check_tuple(t, where) for t in tuples}
    for tup in tuples:
        step = step_of[tup.checkpoint["id"]]
        if step == 0:
            assert tup.parent_config is None, f"{where}: step 0 has a parent"
            continue
        assert tup.parent_config is not None, f"{where}: step {step} lost its parent link"
        parent_id = tup.parent_config["configurable"]["checkpoint_id"]
        assert parent_id in step_of, f"{where}: parent of step {step} is missing"
        assert step_of[parent_id] == step - 1, f"{where}: step {step} has the wrong parent"
    assert sorted(step_of.values()) == list(range(len(step_of))), f"{where}: a step is missing"
    missing = [c for c in acked_checkpoints if c not in step_of]
    assert not missing, f"{where}: {len(missing)} acknowledged checkpoints lost, e.g. {missing[-1]}"
    by_id = {t.checkpoint["id"]: t for t in tuples}
    for checkpoint_id in acked_writes:
        got = [(channel, value) for _task, channel, value in by_id[checkpoint_id].pending_writes]
        assert got == writes_after(step_of[checkpoint_id]), (
            f"{where}: acknowledged writes of checkpoint {checkpoint_id} are missing or wrong"
        )
    return len(tuples), sum(len(t.pending_writes) for t in tuples)


class Acked:
    """What a writer saw acknowledged, in order."""

    def __init__(self) -> None:
        self.checkpoints: list[str] = []
        self.writes: list[str] = []

    def checkpoint(self, checkpoint_id: str) -> None:
        self.checkpoints.append(checkpoint_id)

    def write(self, checkpoint_id: str) -> None:
        self.writes.append(checkpoint_id)


async def write_chain_async(
    saver: UnifiedCheckpointSaver, thread_id: str, steps: int, writer: str, acked: Acked
) -> None:
    previous: Checkpoint | None = None
    for step in range(steps):
        checkpoint, new_versions = next_checkpoint(saver, previous, step)
        parent = previous["id"] if previous else None
        config = await saver.aput(
            config_for(thread_id, parent), checkpoint, metadata_for(step, writer), new_versions
        )
        acked.checkpoint(checkpoint["id"])
        await saver.aput_writes(config, writes_after(step), task_id=f"task-{writer}-{step}")
        acked.write(checkpoint["id"])
        previous = checkpoint


def write_chain_sync(
    saver: UnifiedCheckpointSaver, thread_id: str, steps: int, writer: str, acked: Acked
) -> None:
    previous: Checkpoint | None = None
    for step in range(steps):
        checkpoint, new_versions = next_checkpoint(saver, previous, step)
        parent = previous["id"] if previous else None
        config = saver.put(
            config_for(thread_id, parent), checkpoint, metadata_for(step, writer), new_versions
        )
        acked.checkpoint(checkpoint["id"])
        saver.put_writes(config, writes_after(step), task_id=f"task-{writer}-{step}")
        acked.write(checkpoint["id"])
        previous = checkpoint
