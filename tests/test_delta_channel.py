"""LangGraph's DeltaChannel (beta) on every saver: values rebuild from ancestor writes,
and prune keeps every ancestor a delta channel still needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from langgraph.channels.delta import DeltaChannel
from langgraph.graph import END, START, StateGraph

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver


def _extend(state: list[str] | None, writes: Sequence[list[str]]) -> list[str]:
    result = list(state or [])
    for write in writes:
        result.extend(write)
    return result


class LogState(TypedDict, total=False):
    log: Annotated[list[str], DeltaChannel(_extend, snapshot_frequency=4)]
    turn: int


def log_graph(saver: UnifiedCheckpointSaver) -> Any:
    builder = StateGraph(LogState)
    builder.add_node("first", lambda s: {"log": [f"first-{s.get('turn', 0)}"]})
    builder.add_node("second", lambda s: {"log": [f"second-{s.get('turn', 0)}"]})
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", END)
    return builder.compile(checkpointer=saver)


def _expected(turns: int) -> list[str]:
    return [entry for t in range(turns) for entry in (f"input-{t}", f"first-{t}", f"second-{t}")]


async def _run(saver: UnifiedCheckpointSaver, thread: str, turns: int) -> dict[str, Any]:
    graph = log_graph(saver)
    config = {"configurable": {"thread_id": thread}}
    result: dict[str, Any] = {}
    for turn in range(turns):
        result = await graph.ainvoke({"log": [f"input-{turn}"], "turn": turn}, config)
    return result


async def test_delta_channel_rebuilds_from_history(saver: UnifiedCheckpointSaver) -> None:
    result = await _run(saver, "delta", 5)
    assert result["log"] == _expected(5)
    # A fresh graph object reads the same state back from storage alone.
    state = await log_graph(saver).aget_state({"configurable": {"thread_id": "delta"}})
    assert state.values["log"] == _expected(5)
    history = [s async for s in log_graph(saver).aget_state_history({"configurable": {"thread_id": "delta"}})]
    assert history[-1].values.get("log", []) == []
    assert any(s.values.get("log") == _expected(2) for s in history)


async def test_delta_channel_history_matches_the_reference_walk(saver: UnifiedCheckpointSaver) -> None:
    await _run(saver, "delta-walk", 3)
    latest = await saver.aget_tuple({"configurable": {"thread_id": "delta-walk"}})
    assert latest is not None
    ours = await saver.aget_delta_channel_history(config=latest.config, channels=["log", "turn"])
    reference = await super(UnifiedCheckpointSaver, saver).aget_delta_channel_history(
        config=latest.config, channels=["log", "turn"]
    )
    assert ours == reference
    assert ours["log"]["writes"], "the walk found the log's writes"


async def test_prune_keeps_what_delta_channels_need(saver: UnifiedCheckpointSaver) -> None:
    await _run(saver, "delta-prune", 5)
    await _run(saver, "plain-neighbour", 1)
    await saver.aprune(["delta-prune"], strategy="keep_latest")
    state = await log_graph(saver).aget_state({"configurable": {"thread_id": "delta-prune"}})
    assert state.values["log"] == _expected(5)
    kept = [t async for t in saver.alist({"configurable": {"thread_id": "delta-prune"}})]
    assert 1 < len(kept) < 5 * 4, "kept the head and the ancestors back to a snapshot, no more"
    # The graph goes on from the pruned thread.
    graph = log_graph(saver)
    result = await graph.ainvoke({"log": ["input-5"], "turn": 5}, {"configurable": {"thread_id": "delta-prune"}})
    assert result["log"] == _expected(6)


async def test_copy_thread_carries_delta_history(saver: UnifiedCheckpointSaver) -> None:
    await _run(saver, "delta-src", 3)
    await saver.acopy_thread("delta-src", "delta-dst")
    state = await log_graph(saver).aget_state({"configurable": {"thread_id": "delta-dst"}})
    assert state.values["log"] == _expected(3)
