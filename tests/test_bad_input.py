"""Bad input: a clear exception that names what was wrong, nothing written, no other thread touched."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from langgraph_unified_store import (
    CheckpointNotFoundError,
    InvalidConfigError,
    SerializationError,
    SyncCallInEventLoopError,
    UnifiedWorkflowState,
)
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from .support import checkpoint_and_versions, put_values


async def _snapshot(saver: UnifiedCheckpointSaver, thread_id: str) -> list[tuple[str, Any]]:
    return [
        (t.checkpoint["id"], t.checkpoint["channel_values"])
        async for t in saver.alist({"configurable": {"thread_id": thread_id}})
    ]


@pytest.mark.parametrize(
    "config",
    [{}, {"configurable": {}}, {"configurable": {"thread_id": ""}}, {"configurable": {"checkpoint_ns": ""}}],
)
async def test_config_without_thread_id(saver: UnifiedCheckpointSaver, config: dict[str, Any]) -> None:
    checkpoint, versions = checkpoint_and_versions({"a": 1})
    with pytest.raises(InvalidConfigError, match="thread_id"):
        await saver.aput(config, checkpoint, {}, versions)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="thread_id"):
        await saver.aget_tuple(config)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="thread_id"):
        await saver.aput_writes(config, [("a", 1)], "task")  # type: ignore[arg-type]
    assert await saver.alist_workflows() == []


async def test_put_writes_without_checkpoint_id(saver: UnifiedCheckpointSaver) -> None:
    with pytest.raises(InvalidConfigError, match="checkpoint_id"):
        await saver.aput_writes({"configurable": {"thread_id": "t"}}, [("a", 1)], "task")


async def test_unknown_checkpoint_id(saver: UnifiedCheckpointSaver) -> None:
    await put_values(saver, "known", {"a": 1})
    missing = {"configurable": {"thread_id": "known", "checkpoint_ns": "", "checkpoint_id": "nope"}}
    assert await saver.aget_tuple(missing) is None  # LangGraph's contract for get_tuple
    assert [t async for t in saver.alist(missing)] == []
    with pytest.raises(CheckpointNotFoundError, match=r"'known'.*'nope'"):
        await saver.aload_state("known", checkpoint_id="nope")


INJECTIONS = [
    "source') OR 1=1 --",
    "x'; DROP TABLE checkpoints; --",
    '$."a"',
    "*",
    "?",
    "[a-z]*",
    "{thread}",
    "\\",
    "' UNION SELECT * FROM blobs --",
]


@pytest.mark.parametrize("text", INJECTIONS)
async def test_filter_injection_matches_nothing_and_breaks_nothing(
    saver: UnifiedCheckpointSaver, text: str
) -> None:
    await put_values(saver, "victim", {"a": "secret"}, owner="alice")
    before = await _snapshot(saver, "victim")
    assert [t async for t in saver.alist(None, filter={text: "alice"})] == []
    assert [t async for t in saver.alist(None, filter={"owner": text})] == []
    assert [t async for t in saver.alist(None, filter={text: text})] == []
    assert await _snapshot(saver, "victim") == before
    # A literal key holding those characters is stored and found exactly.
    await put_values(saver, "literal", {"a": 1}, **{text: text})
    found = [t async for t in saver.alist(None, filter={text: text})]
    assert [t.config["configurable"]["thread_id"] for t in found] == ["literal"]


async def test_filter_with_non_string_key_is_refused(saver: UnifiedCheckpointSaver) -> None:
    with pytest.raises(InvalidConfigError, match="filter keys"):
        [t async for t in saver.alist(None, filter={1: "x"})]  # type: ignore[dict-item]


async def test_unserializable_value_names_its_path_and_writes_nothing(
    saver: UnifiedCheckpointSaver,
) -> None:
    await put_values(saver, "bystander", {"a": [1, 2, 3]})
    before = await _snapshot(saver, "bystander")
    lock = threading.Lock()
    with pytest.raises(SerializationError, match=r"channel 'notes'.*\['inner'\]\[1\]\['lock'\].*lock"):
        await put_values(saver, "broken", {"fine": "ok", "notes": {"inner": [0, {"lock": lock}]}})
    assert await saver.aget_tuple({"configurable": {"thread_id": "broken"}}) is None
    stored = await put_values(saver, "broken-writes", {"a": 1})
    with pytest.raises(SerializationError, match=r"write to channel 'b'"):
        await saver.aput_writes(stored, [("a", "fine"), ("b", [lock])], "task-1")
    tup = await saver.aget_tuple(stored)
    assert tup is not None and tup.pending_writes == []
    assert await _snapshot(saver, "bystander") == before
    assert sorted(await saver.alist_workflows()) == ["broken-writes", "bystander"]


async def test_non_json_metadata_is_refused(saver: UnifiedCheckpointSaver) -> None:
    with pytest.raises(SerializationError, match=r"metadata\['when'\]"):
        await put_values(saver, "meta", {"a": 1}, when=object())
    assert await saver.aget_tuple({"configurable": {"thread_id": "meta"}}) is None


async def test_reserved_context_key_is_refused(saver: UnifiedCheckpointSaver) -> None:
    state = UnifiedWorkflowState()
    state.context["__start__"] = 1
    with pytest.raises(InvalidConfigError, match="__start__"):
        await saver.asave_state("wf", state)
    assert await saver.aload_state("wf") is None


async def test_bad_prune_strategy(saver: UnifiedCheckpointSaver) -> None:
    await put_values(saver, "p", {"a": 1})
    with pytest.raises(InvalidConfigError, match="keep_everything"):
        await saver.aprune(["p"], strategy="keep_everything")
    assert len(await _snapshot(saver, "p")) == 1


async def test_blocking_call_inside_event_loop_is_refused(saver: UnifiedCheckpointSaver) -> None:
    with pytest.raises(SyncCallInEventLoopError, match=r"aget_tuple"):
        saver.get_tuple({"configurable": {"thread_id": "t"}})
    with pytest.raises(SyncCallInEventLoopError, match=r"alist"):
        list(saver.list(None))
