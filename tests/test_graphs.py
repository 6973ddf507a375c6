"""Real LangGraph graphs on every saver, through ``invoke`` and ``ainvoke``."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send, interrupt

from langgraph_unified_store import UnifiedWorkflowState
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from .graphs import chat_graph
from .support import ALL_BACKENDS, drop_saver, make_saver, thread_config


@pytest.fixture(params=ALL_BACKENDS)
def sync_saver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UnifiedCheckpointSaver]:
    """A saver used only from plain (non-async) test code, through the blocking API."""
    saver = make_saver(str(request.param), tmp_path)
    saver.setup()
    try:
        yield saver
    finally:
        asyncio.run(drop_saver(saver))


# -- multi-turn chat ------------------------------------------------------------------------


def test_chat_invoke_keeps_history(sync_saver: UnifiedCheckpointSaver) -> None:
    graph = chat_graph(sync_saver)
    for turn in range(3):
        result = graph.invoke({"messages": [HumanMessage(f"hello {turn}", id=f"h{turn}")]}, thread_config("t"))
    assert len(result["messages"]) == 9
    assert [m.content for m in result["messages"][:3]] == ["hello 0", "reply to 1 messages", "reviewed"]
    assert graph.get_state(thread_config("t")).values["messages"] == result["messages"]


async def test_chat_ainvoke_keeps_history(saver: UnifiedCheckpointSaver) -> None:
    graph = chat_graph(saver)
    for turn in range(3):
        result = await graph.ainvoke({"messages": [HumanMessage(f"hello {turn}", id=f"h{turn}")]}, thread_config("t"))
    assert len(result["messages"]) == 9
    state = await graph.aget_state(thread_config("t"))
    assert state.values["messages"] == result["messages"]


async def test_concurrent_threads_stay_apart(saver: UnifiedCheckpointSaver) -> None:
    graph = chat_graph(saver)

    async def run(thread: str) -> None:
        for turn in range(3):
            await graph.ainvoke({"messages": [HumanMessage(f"{thread}-{turn}", id=f"{thread}{turn}")]}, thread_config(thread))

    await asyncio.gather(*(run(f"thread-{i}") for i in range(6)))
    for i in range(6):
        values = (await graph.aget_state(thread_config(f"thread-{i}"))).values
        assert [m.content for m in values["messages"] if isinstance(m, HumanMessage)] == [
            f"thread-{i}-{turn}" for turn in range(3)
        ]


# -- interrupt and resume -------------------------------------------------------------------


class ApprovalState(TypedDict, total=False):
    request: str
    decision: str


def approval_graph(saver: UnifiedCheckpointSaver) -> Any:
    def ask(state: ApprovalState) -> dict[str, Any]:
        answer = interrupt({"question": f"approve {state['request']}?"})
        return {"decision": answer}

    builder = StateGraph(ApprovalState)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver)


def test_interrupt_and_resume_sync(sync_saver: UnifiedCheckpointSaver) -> None:
    graph = approval_graph(sync_saver)
    first = graph.invoke({"request": "deploy"}, thread_config("approval"))
    assert first["__interrupt__"][0].value == {"question": "approve deploy?"}
    assert graph.get_state(thread_config("approval")).next == ("ask",)
    final = graph.invoke(Command(resume="yes"), thread_config("approval"))
    assert final == {"request": "deploy", "decision": "yes"}
    assert graph.get_state(thread_config("approval")).next == ()


async def test_interrupt_and_resume_async(saver: UnifiedCheckpointSaver) -> None:
    graph = approval_graph(saver)
    first = await graph.ainvoke({"request": "deploy"}, thread_config("approval"))
    assert first["__interrupt__"][0].value == {"question": "approve deploy?"}
    final = await graph.ainvoke(Command(resume="no"), thread_config("approval"))
    assert final["decision"] == "no"


# -- subgraphs --------------------------------------------------------------------------------


class CountState(TypedDict):
    items: Annotated[list[str], operator.add]


def nested_graph(saver: UnifiedCheckpointSaver) -> Any:
    inner = StateGraph(CountState)
    inner.add_node("inner_a", lambda s: {"items": ["inner-a"]})
    inner.add_node("inner_b", lambda s: {"items": ["inner-b"]})
    inner.add_edge(START, "inner_a")
    inner.add_edge("inner_a", "inner_b")
    inner.add_edge("inner_b", END)
    outer = StateGraph(CountState)
    outer.add_node("before", lambda s: {"items": ["before"]})
    outer.add_node("child", inner.compile())
    outer.add_node("after", lambda s: {"items": ["after"]})
    outer.add_edge(START, "before")
    outer.add_edge("before", "child")
    outer.add_edge("child", "after")
    outer.add_edge("after", END)
    return outer.compile(checkpointer=saver)


async def test_subgraph_checkpoints(saver: UnifiedCheckpointSaver) -> None:
    graph = nested_graph(saver)
    result = await graph.ainvoke({"items": []}, thread_config("nested"))
    assert result["items"] == ["before", "before", "inner-a", "inner-b", "after"]
    namespaces = {t.config["configurable"]["checkpoint_ns"] async for t in saver.alist(thread_config("nested") | {})}
    assert "" in namespaces


async def test_subgraph_interrupt_resumes_inside_child(saver: UnifiedCheckpointSaver) -> None:
    inner = StateGraph(ApprovalState)

    def ask(state: ApprovalState) -> dict[str, Any]:
        return {"decision": interrupt("inner question")}

    inner.add_node("ask", ask)
    inner.add_edge(START, "ask")
    inner.add_edge("ask", END)
    outer = StateGraph(ApprovalState)
    outer.add_node("child", inner.compile(checkpointer=True))
    outer.add_edge(START, "child")
    outer.add_edge("child", END)
    graph = outer.compile(checkpointer=saver)
    await graph.ainvoke({"request": "x"}, thread_config("sub-int"))
    state = await graph.aget_state(thread_config("sub-int"), subgraphs=True)
    assert state.tasks[0].state is not None  # the child's own checkpoint is readable
    final = await graph.ainvoke(Command(resume="approved"), thread_config("sub-int"))
    assert final["decision"] == "approved"


# -- history, forks and Send ------------------------------------------------------------------


def test_state_history_and_fork_sync(sync_saver: UnifiedCheckpointSaver) -> None:
    graph = chat_graph(sync_saver)
    for turn in range(2):
        graph.invoke({"messages": [HumanMessage(f"turn {turn}", id=f"h{turn}")]}, thread_config("hist"))
    history = list(graph.get_state_history(thread_config("hist")))
    assert len(history) == 8  # (input, reply, review, done) x 2 turns... newest first
    ids = [h.config["configurable"]["checkpoint_id"] for h in history]
    assert ids == sorted(ids, reverse=True)
    # Fork: go back to the state after the first turn and branch off with another message.
    after_first = next(h for h in history if len(h.values.get("messages", [])) == 3 and not h.next)
    forked = graph.invoke({"messages": [HumanMessage("branch", id="hb")]}, after_first.config)
    assert [m.content for m in forked["messages"]][3] == "branch"
    assert len(forked["messages"]) == 6
    # The original branch is untouched and still readable.
    original = graph.get_state(history[0].config)
    assert [m.content for m in original.values["messages"]][3] == "turn 1"
    assert len(list(graph.get_state_history(thread_config("hist")))) > len(history)


async def test_update_state_then_continue(saver: UnifiedCheckpointSaver) -> None:
    graph = chat_graph(saver)
    await graph.ainvoke({"messages": [HumanMessage("one", id="h1")]}, thread_config("upd"))
    await graph.aupdate_state(thread_config("upd"), {"messages": [HumanMessage("injected", id="inj")]})
    result = await graph.ainvoke({"messages": [HumanMessage("two", id="h2")]}, thread_config("upd"))
    assert [m.content for m in result["messages"]][3:5] == ["injected", "two"]


class FanOutState(TypedDict, total=False):
    subjects: list[str]
    jokes: Annotated[list[str], operator.add]


class JokeInput(TypedDict):
    subject: str


def send_graph(saver: UnifiedCheckpointSaver) -> Any:
    builder = StateGraph(FanOutState)
    builder.add_node("joke", lambda s: {"jokes": [f"joke about {s['subject']}"]})
    builder.add_conditional_edges(
        START, lambda s: [Send("joke", {"subject": subject}) for subject in s["subjects"]]
    )
    builder.add_edge("joke", END)
    return builder.compile(checkpointer=saver)


def test_send_fan_out_sync(sync_saver: UnifiedCheckpointSaver) -> None:
    result = send_graph(sync_saver).invoke({"subjects": ["cats", "dogs", "owls"]}, thread_config("send"))
    assert sorted(result["jokes"]) == ["joke about cats", "joke about dogs", "joke about owls"]


async def test_send_fan_out_async(saver: UnifiedCheckpointSaver) -> None:
    result = await send_graph(saver).ainvoke({"subjects": ["a", "b"]}, thread_config("send"))
    assert sorted(result["jokes"]) == ["joke about a", "joke about b"]


# -- unified state ------------------------------------------------------------------------------


async def test_unified_state_round_trip_with_graph(saver: UnifiedCheckpointSaver) -> None:
    graph = chat_graph(saver)
    for turn in range(3):
        await graph.ainvoke({"messages": [HumanMessage(f"q{turn}", id=f"q{turn}")]}, thread_config("wf"))
    state = await saver.aload_state("wf")
    assert state is not None
    assert len(state.messages) == 9
    assert state.metadata.framework == "langgraph"
    assert state.metadata.workflow_id == "wf"
    assert state.messages[0].role == "user" and state.messages[1].role == "assistant"

    state.add_message("user", "from another framework", id="ext-1")
    state.add_message("assistant", "noted", id="ext-2", name="helper")
    state.update_context(topic="billing")
    state.framework_state["crewai"] = {"flow": "support"}
    await saver.asave_state("wf", state, framework="crewai")

    reloaded = await saver.aload_state("wf")
    assert reloaded is not None and reloaded.metadata.framework == "crewai"
    assert len(reloaded.messages) == 11 and reloaded.context["topic"] == "billing"

    result = await graph.ainvoke({"messages": [HumanMessage("q3", id="q3")]}, thread_config("wf"))
    contents = [m.content for m in result["messages"]]
    assert contents[9:12] == ["from another framework", "noted", "q3"]
    assert result["topic"] == "billing"
    assert result["messages"][10].name == "helper"
    latest = await saver.aload_state("wf")
    assert latest is not None and latest.metadata.framework == "langgraph"
    # framework_state rides along even after the graph wrote new checkpoints.
    assert latest.framework_state == {"crewai": {"flow": "support"}}
    assert "wf" in await saver.alist_workflows()


def test_unified_state_sync_api(sync_saver: UnifiedCheckpointSaver) -> None:
    assert sync_saver.load_state("nobody") is None
    state = UnifiedWorkflowState()
    state.add_message("system", "be brief", id="s1")
    state.add_message("user", "hi", id="u1")
    state.update_context(step_count=1)
    config = sync_saver.save_state("fresh", state)
    loaded = sync_saver.load_state("fresh")
    assert loaded is not None
    assert [m.content for m in loaded.messages] == ["be brief", "hi"]
    assert loaded.context == {"step_count": 1}
    assert loaded.metadata.checkpoint_id == config["configurable"]["checkpoint_id"]
    # A LangGraph graph picks up a thread that another framework started.
    result = chat_graph(sync_saver).invoke({"messages": [HumanMessage("go", id="g")]}, thread_config("fresh"))
    assert [m.content for m in result["messages"][:3]] == ["be brief", "hi", "go"]
    assert sync_saver.list_workflows() == ["fresh"]
    assert [s.metadata.framework for s in sync_saver.history("fresh")][-1] == "unified"


def test_sqlite_from_conn_string_with_both_context_managers(tmp_path: Path) -> None:
    from langgraph_unified_store import SQLiteSaver

    path = tmp_path / "cm.sqlite"
    with SQLiteSaver.from_conn_string(path) as saver:
        chat_graph(saver).invoke({"messages": [HumanMessage("sync", id="s1")]}, thread_config("cm"))

    async def reopen() -> list[str]:
        async with SQLiteSaver.from_conn_string(path) as again:
            state = await chat_graph(again).aget_state(thread_config("cm"))
            return [m.content for m in state.values["messages"]]

    assert asyncio.run(reopen()) == ["sync", "reply to 1 messages", "reviewed"]
