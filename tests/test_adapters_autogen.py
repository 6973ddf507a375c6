"""AutoGen agents, teams and model contexts on every backend, offline (replayed model)."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import ChatAgent, Team
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core import FunctionCall, Image
from autogen_core.model_context import ChatCompletionContextState
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    ModelInfo,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_ext.models.replay import ReplayChatCompletionClient

from langgraph_unified_store import MissingExtraError, ToolCall, UnifiedWorkflowState
from langgraph_unified_store.adapters.autogen import (
    AutoGenStateStore,
    UnifiedChatCompletionContext,
    llm_messages_from_unified,
    unified_from_llm_messages,
)
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from .support import unique

logging.getLogger("autogen_core.events").setLevel(logging.ERROR)

PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
IMAGE = Image.from_base64(PIXEL)
TOOLS_MODEL = ModelInfo(
    vision=False, function_calling=True, json_output=False, family="unknown", structured_output=False
)


def every_message_kind() -> list[LLMMessage]:
    return [
        SystemMessage(content="You are terse."),
        UserMessage(content="Add 2 and 3, and 4 and 5.", source="user"),
        UserMessage(content="I am Bo.", source="bo"),
        AssistantMessage(
            content=[
                FunctionCall(id="c1", name="add", arguments='{"a": 2, "b": 3}'),
                FunctionCall(id="c2", name="add", arguments='{"a":4,"b":5}'),  # not canonical JSON
            ],
            thought="Two sums.",
            source="calc",
        ),
        FunctionExecutionResultMessage(
            content=[
                FunctionExecutionResult(content="5", name="add", call_id="c1", is_error=False),
                FunctionExecutionResult(content="boom", name="add", call_id="c2", is_error=True),
            ]
        ),
        AssistantMessage(content="5, and an error.", thought="reasoning", source="calc"),
        AssistantMessage(content="plain", source="assistant"),
        UserMessage(content=["look:", IMAGE], source="user"),
    ]


def dumps(messages: list[Any]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in messages]


def seeded_state(workflow_id: str) -> UnifiedWorkflowState:
    """A thread as LangGraph would leave it: ids and LangChain metadata on messages."""
    state = UnifiedWorkflowState()
    state.metadata.workflow_id = workflow_id
    state.add_message("system", "Be kind.", id="lg-0")
    state.add_message("user", "Weather?", id="lg-1")
    state.add_message(
        "assistant",
        "",
        id="lg-2",
        tool_calls=[ToolCall(id="w1", name="weather", arguments={"city": "Oslo"})],
        metadata={"langchain": {"response_metadata": {"model": "fake"}}},
    )
    state.add_message("tool", "3 C", id="lg-3", tool_call_id="w1", name="weather")
    state.add_message("assistant", "Cold.", id="lg-4")
    state.update_context(city="Oslo")
    state.framework_state["other"] = {"kept": True}
    return state


def replay_agent(name: str, replies: list[str | CreateResult], **kwargs: Any) -> AssistantAgent:
    client = ReplayChatCompletionClient(replies, model_info=TOOLS_MODEL)
    return AssistantAgent(name, model_client=client, **kwargs)


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


# -- message mapping (no backend) ----------------------------------------------------------


def test_every_llm_message_kind_round_trips() -> None:
    original = every_message_kind()
    unified = unified_from_llm_messages(original)
    assert [m.role for m in unified] == [
        "system", "user", "user", "assistant", "tool", "tool", "assistant", "assistant", "user",
    ]
    assert unified[1].name is None and unified[2].name == "bo"
    assert unified[3].tool_calls == [
        ToolCall(id="c1", name="add", arguments={"a": 2, "b": 3}),
        ToolCall(id="c2", name="add", arguments={"a": 4, "b": 5}),
    ]
    assert unified[3].content == "Two sums."
    assert (unified[4].tool_call_id, unified[4].content) == ("c1", "5")
    assert (unified[5].tool_call_id, unified[5].metadata["autogen"]) == ("c2", {"is_error": True})
    assert unified[6].metadata["autogen"] == {"thought": "reasoning"}
    assert unified[8].content[1] == {"type": "image", "base64": IMAGE.to_base64(), "mime_type": "image/png"}  # type: ignore[index]
    assert dumps(llm_messages_from_unified(unified)) == dumps(original)


def test_unified_messages_become_llm_messages() -> None:
    state = seeded_state("x")
    messages = llm_messages_from_unified(state.messages)
    assert [type(m).__name__ for m in messages] == [
        "SystemMessage", "UserMessage", "AssistantMessage", "FunctionExecutionResultMessage",
        "AssistantMessage",
    ]
    call = messages[2].content[0]  # type: ignore[union-attr,index]
    assert (call.id, call.name, call.arguments) == ("w1", "weather", '{"city": "Oslo"}')  # type: ignore[union-attr]


# -- the state store on every backend ------------------------------------------------------


async def test_agent_round_trip_with_tools(saver: UnifiedCheckpointSaver) -> None:
    workflow_id = unique("wf")
    agent = replay_agent(
        "calc",
        [
            CreateResult(
                finish_reason="function_calls",
                content=[FunctionCall(id="c1", name="add", arguments='{"a": 1, "b": 2}')],
                usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
                cached=False,
                thought="Summing.",
            ),
            "It is 3.",
        ],
        tools=[add],
        reflect_on_tool_use=True,
    )
    await agent.run(task="1+2?")
    store = AutoGenStateStore(saver)
    await store.save(workflow_id, agent)

    state = await saver.aload_state(workflow_id)
    assert state is not None
    assert state.metadata.framework == "autogen"
    assert [m.role for m in state.messages] == ["user", "assistant", "tool", "assistant"]
    assert state.messages[1].tool_calls[0].arguments == {"a": 1, "b": 2}
    assert state.messages[2].content == "3"
    assert state.framework_state["autogen"]["kind"] == "agent"

    fresh = replay_agent("calc", [], tools=[add])
    assert await store.load(workflow_id, fresh) is True
    assert (await fresh.save_state()) == (await agent.save_state())


async def test_agent_continues_a_langgraph_thread(saver: UnifiedCheckpointSaver) -> None:
    workflow_id = unique("wf")
    seeded = seeded_state(workflow_id)
    await saver.asave_state(workflow_id, seeded, framework="langgraph")
    client = ReplayChatCompletionClient(["Wear a coat."])
    agent = AssistantAgent("helper", model_client=client)
    store = AutoGenStateStore(saver)
    assert await store.load(workflow_id, agent) is True
    await agent.run(task="What should I wear?")
    shown = client.create_calls[0]["messages"]
    assert [type(m).__name__ for m in shown[1:6]] == [
        "SystemMessage", "UserMessage", "AssistantMessage", "FunctionExecutionResultMessage",
        "AssistantMessage",
    ]
    await store.save(workflow_id, agent)

    state = await saver.aload_state(workflow_id)
    assert state is not None
    assert [m.model_dump() for m in state.messages[:5]] == [m.model_dump() for m in seeded.messages]
    assert [(m.role, m.content, m.name) for m in state.messages[5:]] == [
        ("user", "What should I wear?", None),
        ("assistant", "Wear a coat.", "helper"),
    ]
    assert state.context == {"city": "Oslo"}
    assert state.framework_state["other"] == {"kept": True}


async def test_every_message_kind_through_the_store(saver: UnifiedCheckpointSaver) -> None:
    workflow_id = unique("wf")
    agent = replay_agent("calc", [])
    await agent.load_state({"llm_context": {"messages": dumps(every_message_kind())}})
    store = AutoGenStateStore(saver)
    await store.save(workflow_id, agent)
    fresh = replay_agent("calc", [])
    await store.load(workflow_id, fresh)
    restored = ChatCompletionContextState.model_validate((await fresh.save_state())["llm_context"])
    assert dumps(restored.messages) == dumps(every_message_kind())


async def test_unknown_workflow_leaves_the_agent_alone(saver: UnifiedCheckpointSaver) -> None:
    agent = replay_agent("calc", [])
    mine = {"type": "UserMessage", "content": "mine", "source": "user"}
    await agent.load_state({"llm_context": {"messages": [mine]}})
    before = await agent.save_state()
    assert await AutoGenStateStore(saver).load(unique("missing"), agent) is False
    assert await agent.save_state() == before
    assert await saver.alist_workflows() == []


async def test_team_round_trip_and_foreign_turns(saver: UnifiedCheckpointSaver) -> None:
    workflow_id = unique("wf")

    def team() -> RoundRobinGroupChat:
        client = ReplayChatCompletionClient(["a1", "b1", "a2", "b2", "a3", "b3"])
        members: list[ChatAgent | Team] = [
            AssistantAgent("a", model_client=client),
            AssistantAgent("b", model_client=client),
        ]
        return RoundRobinGroupChat(members, termination_condition=MaxMessageTermination(3))

    first = team()
    await first.run(task="go")
    store = AutoGenStateStore(saver)
    await store.save(workflow_id, first)
    state = await saver.aload_state(workflow_id)
    assert state is not None
    assert [(m.role, m.content, m.name) for m in state.messages] == [
        ("user", "go", None), ("assistant", "a1", "a"), ("assistant", "b1", "b"),
    ]
    assert state.framework_state["autogen"]["kind"] == "team"

    # Another framework adds a turn; the team sees it in its thread and in each member.
    state.add_message("user", "from langgraph", id="lg-9")
    await saver.asave_state(workflow_id, state, framework="langgraph")
    second = team()
    assert await store.load(workflow_id, second) is True
    saved = await second.save_state()
    thread = next(s for s in saved["agent_states"].values() if "message_thread" in s)["message_thread"]
    assert [m["content"] for m in thread] == ["go", "a1", "b1", "from langgraph"]
    for member in ("a", "b"):
        context = saved["agent_states"][member]["agent_state"]["llm_context"]["messages"]
        assert context[-1]["content"] == "from langgraph"

    await store.save(workflow_id, second)
    again = await saver.aload_state(workflow_id)
    assert again is not None
    assert again.messages[3].id == "lg-9"
    assert [m.model_dump() for m in again.messages] == [m.model_dump() for m in state.messages]


# -- the live model context ----------------------------------------------------------------


async def test_model_context_reads_and_writes_the_thread(saver: UnifiedCheckpointSaver) -> None:
    workflow_id = unique("wf")
    seeded = seeded_state(workflow_id)
    await saver.asave_state(workflow_id, seeded, framework="langgraph")
    context = UnifiedChatCompletionContext(saver, workflow_id)
    client = ReplayChatCompletionClient(["Noted."])
    agent = AssistantAgent("live", model_client=client, model_context=context)
    await agent.run(task="Remember Oslo.")

    state = await saver.aload_state(workflow_id)
    assert state is not None
    assert [m.model_dump() for m in state.messages[:5]] == [m.model_dump() for m in seeded.messages]
    assert [(m.role, m.content) for m in state.messages[5:]] == [
        ("user", "Remember Oslo."), ("assistant", "Noted."),
    ]
    assert len(client.create_calls[0]["messages"]) == 1 + 6  # system prompt + thread
    history = await saver.ahistory(workflow_id)
    assert [h.metadata.framework for h in history[:2]] == ["autogen", "autogen"]

    snapshot = await context.save_state()
    await context.clear()
    cleared = await saver.aload_state(workflow_id)
    assert cleared is not None and cleared.messages == []
    assert cleared.context == {"city": "Oslo"}
    await context.load_state(snapshot)
    restored = await saver.aload_state(workflow_id)
    assert restored is not None
    assert len(restored.messages) == 7


async def test_model_context_on_an_unknown_workflow(saver: UnifiedCheckpointSaver) -> None:
    context = UnifiedChatCompletionContext(saver, unique("missing"))
    assert await context.get_messages() == []
    await context.clear()
    assert await saver.alist_workflows() == []
    await context.add_message(UserMessage(content="first", source="user"))
    assert [m.content for m in await context.get_messages()] == ["first"]


def test_missing_autogen_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "autogen_core" or name.startswith("autogen_core."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "langgraph_unified_store.adapters.autogen")
    with pytest.raises(MissingExtraError, match=r"langgraph-unified-store\[autogen\]"):
        importlib.import_module("langgraph_unified_store.adapters.autogen")
