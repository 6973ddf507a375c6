"""CrewAI flow persistence on every backend: round trips, hops, bad input, no LLM."""

from __future__ import annotations

import os

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

import asyncio
import importlib
import sys
from typing import Any

import pytest
from crewai.flow.flow import Flow, FlowState, listen, start
from crewai.flow.persistence import persist
from crewai.flow.persistence.factory import set_flow_persistence_factory

from langgraph_unified_store import (
    MissingExtraError,
    ToolCall,
    UnifiedMessage,
    UnifiedWorkflowState,
)
from langgraph_unified_store.adapters.crewai import (
    UnifiedFlowPersistence,
    UnifiedFlowState,
    message_from_crewai,
    message_to_crewai,
)
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from .support import unique

TOOL_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "lookup", "arguments": '{"city": "Porto"}'},
}
CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Porto?", "name": "ana"},
    {"role": "assistant", "content": "", "tool_calls": [TOOL_CALL]},
    {"role": "tool", "content": "21 C", "tool_call_id": "call_1", "name": "lookup"},
    {"role": "assistant", "content": "21 C and sunny.", "name": "forecaster"},
]
# Shapes the unified schema has no slot for: kept whole and given back.
ODD_MESSAGES: list[Any] = [
    {"role": "developer", "content": "house rules"},
    {"role": "user", "content": "cached", "cache_control": {"type": "ephemeral"}},
    {"role": "assistant", "content": "x", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "not json"}}]},
    "a bare string",
]


def seeded_state(workflow_id: str) -> UnifiedWorkflowState:
    """A thread as LangGraph would leave it: ids and LangChain metadata on messages."""
    state = UnifiedWorkflowState()
    state.metadata.workflow_id = workflow_id
    state.add_message("user", "Plan a trip", id="lg-1")
    state.add_message(
        "assistant",
        "Sure",
        id="lg-2",
        metadata={"langchain": {"response_metadata": {"model": "fake"}}},
    )
    state.update_context(topic="trip", budget=300)
    state.framework_state["langgraph_extra"] = {"kept": True}
    return state


class TypedState(FlowState):  # type: ignore[misc]
    counter: int = 0


def chat_flow(saver: UnifiedCheckpointSaver) -> Any:
    """A flow that appends one user and one assistant message per kickoff.

    Flow classes are made per test: CrewAI reads a class's persistence once, when the
    class is first used.
    """

    @persist(UnifiedFlowPersistence(saver))
    class ChatFlow(Flow[UnifiedFlowState]):  # type: ignore[misc]
        suppress_flow_events: bool = True

        @start()
        def request(self) -> None:
            self.state.add_message("user", "crew question")

        @listen(request)
        def answer(self) -> None:
            seen = len(self.state.messages)
            self.state.context["crew_seen"] = seen
            self.state.add_message("assistant", f"crew answer after {seen}", name="crew")

    return ChatFlow()


def typed_flow(saver: UnifiedCheckpointSaver) -> Any:
    @persist(UnifiedFlowPersistence(saver))
    class TypedFlow(Flow[TypedState]):  # type: ignore[misc]
        suppress_flow_events: bool = True

        @start()
        def bump(self) -> None:
            self.state.counter += 1

    return TypedFlow()


def dict_flow(saver: UnifiedCheckpointSaver) -> Any:
    @persist(UnifiedFlowPersistence(saver))
    class DictFlow(Flow[dict[str, Any]]):  # type: ignore[misc]
        suppress_flow_events: bool = True

        @start()
        def edit(self) -> None:
            self.state.pop("budget", None)
            self.state["note"] = "dict state"

    return DictFlow()


# -- message mapping (no backend) ----------------------------------------------------------


def test_conversation_maps_to_unified_fields() -> None:
    unified = [message_from_crewai(m) for m in CONVERSATION]
    assert [m.role for m in unified] == ["system", "user", "assistant", "tool", "assistant"]
    assert unified[1].name == "ana"
    assert unified[2].tool_calls == [ToolCall(id="call_1", name="lookup", arguments={"city": "Porto"})]
    assert unified[3].tool_call_id == "call_1"
    assert unified[3].name == "lookup"
    assert all(not m.metadata for m in unified), "these shapes need no raw copy"
    assert [message_to_crewai(m) for m in unified] == CONVERSATION


def test_unexpressible_messages_are_kept_and_restored() -> None:
    unified = [message_from_crewai(m) for m in ODD_MESSAGES]
    assert all("raw" in m.metadata["crewai"] for m in unified)
    assert unified[0].role == "system"
    assert [message_to_crewai(m) for m in unified] == ODD_MESSAGES


def test_edited_message_is_not_shadowed_by_its_raw_copy() -> None:
    unified = message_from_crewai(ODD_MESSAGES[1])
    edited = unified.model_copy(update={"content": "edited elsewhere"})
    assert message_to_crewai(edited) == {"role": "user", "content": "edited elsewhere"}


# -- persistence on every backend ----------------------------------------------------------


async def test_flow_round_trip_and_history(saver: UnifiedCheckpointSaver) -> None:
    flow = chat_flow(saver)
    await flow.kickoff_async()
    flow_id = flow.state.id
    state = await saver.aload_state(flow_id)
    assert state is not None
    assert [m.content for m in state.messages] == ["crew question", "crew answer after 1"]
    assert state.messages[1].name == "crew"
    assert state.context == {"crew_seen": 1}
    history = await saver.ahistory(flow_id)
    assert [h.metadata.framework for h in history] == ["crewai", "crewai"]

    again = chat_flow(saver)
    await again.kickoff_async(inputs={"id": flow_id})
    state = await saver.aload_state(flow_id)
    assert state is not None
    assert len(state.messages) == 4
    assert state.context == {"crew_seen": 3}


async def test_blocking_kickoff_from_a_worker_thread(saver: UnifiedCheckpointSaver) -> None:
    flow_id = unique("flow")
    flow = chat_flow(saver)
    await asyncio.to_thread(flow.kickoff, inputs={"id": flow_id})
    persistence = UnifiedFlowPersistence(saver)
    loaded = await asyncio.to_thread(persistence.load_state, flow_id)
    assert loaded is not None
    assert loaded["id"] == flow_id
    assert [m["content"] for m in loaded["messages"]] == ["crew question", "crew answer after 1"]


async def test_continues_a_langgraph_thread_keeping_ids_and_metadata(
    saver: UnifiedCheckpointSaver,
) -> None:
    workflow_id = unique("wf")
    seeded = seeded_state(workflow_id)
    await saver.asave_state(workflow_id, seeded, framework="langgraph")
    flow = chat_flow(saver)
    await flow.kickoff_async(inputs={"id": workflow_id})

    state = await saver.aload_state(workflow_id)
    assert state is not None
    assert state.metadata.framework == "crewai"
    assert [m.model_dump() for m in state.messages[:2]] == [m.model_dump() for m in seeded.messages]
    assert [m.content for m in state.messages[2:]] == ["crew question", "crew answer after 3"]
    assert state.context == {"topic": "trip", "budget": 300, "crew_seen": 3}
    assert state.framework_state["langgraph_extra"] == {"kept": True}


async def test_round_trip_of_every_message_shape(saver: UnifiedCheckpointSaver) -> None:
    persistence = UnifiedFlowPersistence(saver)
    flow_id = unique("flow")
    data = {"id": flow_id, "messages": [*CONVERSATION, *ODD_MESSAGES], "step": 2}
    await persistence.asave_state(flow_id, "manual", data)
    loaded = await persistence.aload_state(flow_id)
    assert loaded == data
    state = await saver.aload_state(flow_id)
    assert state is not None
    assert len(state.messages) == len(CONVERSATION) + len(ODD_MESSAGES)
    assert state.framework_state["crewai"]["method"] == "manual"


async def test_unknown_flow_loads_as_none_and_writes_nothing(saver: UnifiedCheckpointSaver) -> None:
    persistence = UnifiedFlowPersistence(saver)
    assert await persistence.aload_state(unique("missing")) is None
    assert await asyncio.to_thread(persistence.load_pending_feedback, unique("missing")) is None
    await asyncio.to_thread(persistence.clear_pending_feedback, unique("missing"))
    assert await saver.alist_workflows() == []


async def test_typed_state_keeps_context_it_cannot_hold(saver: UnifiedCheckpointSaver) -> None:
    workflow_id = unique("wf")
    await saver.asave_state(workflow_id, seeded_state(workflow_id), framework="langgraph")
    flow = typed_flow(saver)
    await flow.kickoff_async(inputs={"id": workflow_id})
    state = await saver.aload_state(workflow_id)
    assert state is not None
    # TypedState has no messages field and no topic/budget: all of it survives.
    assert [m.id for m in state.messages] == ["lg-1", "lg-2"]
    assert state.context == {"topic": "trip", "budget": 300, "counter": 1}


async def test_dict_state_can_delete_a_context_key(saver: UnifiedCheckpointSaver) -> None:
    workflow_id = unique("wf")
    await saver.asave_state(workflow_id, seeded_state(workflow_id), framework="langgraph")
    flow = dict_flow(saver)
    await flow.kickoff_async(inputs={"id": workflow_id})
    state = await saver.aload_state(workflow_id)
    assert state is not None
    assert state.context == {"topic": "trip", "note": "dict state"}
    assert [m.id for m in state.messages] == ["lg-1", "lg-2"]


async def test_reserved_field_names_round_trip(saver: UnifiedCheckpointSaver) -> None:
    persistence = UnifiedFlowPersistence(saver)
    flow_id = unique("flow")
    data = {"id": flow_id, "__private": 1, "a:b": [1, 2], "plain": "ok"}
    await persistence.asave_state(flow_id, "m", data)
    state = await saver.aload_state(flow_id)
    assert state is not None
    assert state.context == {"plain": "ok"}
    assert await persistence.aload_state(flow_id) == data


async def test_unified_flow_state_gathers_foreign_keys() -> None:
    restored = UnifiedFlowState.model_validate({"id": "x", "messages": [], "topic": "t", "n": 1})
    assert restored.context == {"topic": "t", "n": 1}


async def test_pending_feedback_round_trip(saver: UnifiedCheckpointSaver) -> None:
    from crewai.flow.async_feedback.types import PendingFeedbackContext

    persistence = UnifiedFlowPersistence(saver)
    flow_id = unique("flow")
    context = PendingFeedbackContext(
        flow_id=flow_id,
        flow_class="tests.Flow",
        method_name="review",
        method_output="draft",
        message="Approve?",
    )
    await asyncio.to_thread(
        persistence.save_pending_feedback, flow_id, context, {"id": flow_id, "draft": "v1"}
    )
    loaded = await asyncio.to_thread(persistence.load_pending_feedback, flow_id)
    assert loaded is not None
    state_data, restored = loaded
    assert state_data == {"id": flow_id, "draft": "v1"}
    assert restored.to_dict() == context.to_dict()
    await asyncio.to_thread(persistence.save_state, flow_id, "other", {"id": flow_id, "draft": "v2"})
    assert await asyncio.to_thread(persistence.load_pending_feedback, flow_id) is not None
    await asyncio.to_thread(persistence.clear_pending_feedback, flow_id)
    assert await asyncio.to_thread(persistence.load_pending_feedback, flow_id) is None
    assert await persistence.aload_state(flow_id) == {"id": flow_id, "draft": "v2"}


async def test_process_wide_default_persistence(saver: UnifiedCheckpointSaver) -> None:
    persistence = UnifiedFlowPersistence(saver)
    set_flow_persistence_factory(lambda: persistence)
    try:

        @persist()
        class DefaultFlow(Flow[UnifiedFlowState]):  # type: ignore[misc]
            suppress_flow_events: bool = True

            @start()
            def request(self) -> None:
                self.state.add_message("user", "hello")

        flow = DefaultFlow()
        await flow.kickoff_async()
    finally:
        set_flow_persistence_factory(None)
    state = await saver.aload_state(flow.state.id)
    assert state is not None
    assert state.metadata.framework == "crewai"


async def test_non_json_state_is_refused_loudly(saver: UnifiedCheckpointSaver) -> None:
    persistence = UnifiedFlowPersistence(saver)
    with pytest.raises(TypeError, match="'handle'"):
        await persistence.asave_state("f", "m", {"id": "f", "handle": object()})
    assert await saver.aload_state("f") is None


def test_missing_crewai_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "crewai" or name.startswith("crewai."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "langgraph_unified_store.adapters.crewai")
    with pytest.raises(MissingExtraError, match=r"langgraph-unified-store\[crewai\]"):
        importlib.import_module("langgraph_unified_store.adapters.crewai")


def test_unified_messages_are_plain_llm_messages() -> None:
    message = UnifiedMessage(role="assistant", content="hi", id="x", metadata={"langchain": {"a": 1}})
    assert message_to_crewai(message) == {"role": "assistant", "content": "hi"}
