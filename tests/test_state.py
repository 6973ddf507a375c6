"""UnifiedWorkflowState and LangChain message conversion."""

from __future__ import annotations

from datetime import datetime

import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

from langgraph_unified_store import UnifiedMessage, UnifiedWorkflowState
from langgraph_unified_store.messages import langchain_messages, to_langchain, unified_messages

CONVERSATION = [
    SystemMessage("be brief", id="s"),
    HumanMessage("what is 2+2?", id="h", name="alice", additional_kwargs={"lang": "en"}),
    AIMessage(
        "",
        id="a",
        tool_calls=[{"id": "call-1", "name": "add", "args": {"a": 2, "b": 2}}],
        usage_metadata={"input_tokens": 5, "output_tokens": 1, "total_tokens": 6},
        response_metadata={"model": "fake"},
    ),
    ToolMessage("4", tool_call_id="call-1", id="t", name="add", artifact={"raw": 4}),
    AIMessage("4", id="a2"),
]


def test_langchain_messages_round_trip_with_nothing_lost() -> None:
    unified = unified_messages(CONVERSATION)
    assert [m.role for m in unified] == ["system", "user", "assistant", "tool", "assistant"]
    assert unified[2].tool_calls[0].name == "add" and unified[2].tool_calls[0].arguments == {"a": 2, "b": 2}
    assert unified[3].tool_call_id == "call-1" and unified[1].name == "alice"
    back = langchain_messages(unified)
    assert back == CONVERSATION
    assert [type(m) for m in back] == [type(m) for m in CONVERSATION]


@pytest.mark.parametrize(
    "message",
    [ChatMessage(content="hmm", role="critic", id="c"), FunctionMessage(content="f", name="fn", id="f"), RemoveMessage(id="x")],
)
def test_kinds_without_a_neutral_form_are_kept_whole(message: object) -> None:
    unified = unified_messages([message])  # type: ignore[list-item]
    assert "raw" in unified[0].metadata["langchain"]
    assert to_langchain(unified[0]) == message


def test_state_helpers_and_json_round_trip() -> None:
    state = UnifiedWorkflowState()
    assert state.metadata.workflow_id and state.metadata.created_at.tzinfo is not None
    state.add_message("user", "hi", id="u1", metadata={"source": "web"})
    state.update_context(topic="billing", count=2)
    state.framework_state["autogen"] = {"team": {"turn": 3}}
    copy = UnifiedWorkflowState.from_json(state.to_json())
    assert copy == state
    assert UnifiedWorkflowState.from_dict(state.to_dict()) == state
    with pytest.raises(TypeError, match="context\\['when'\\]"):
        state.update_context(when=object())


def test_naive_datetimes_become_utc() -> None:
    state = UnifiedWorkflowState.model_validate({"metadata": {"created_at": datetime(2026, 1, 1)}})
    assert state.metadata.created_at.tzinfo is not None


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="role"):
        UnifiedMessage(role="robot", content="x")  # type: ignore[arg-type]


def test_foreign_metadata_survives_the_messages_channel() -> None:
    message = UnifiedMessage(role="assistant", content="x", id="m", metadata={"autogen": {"source": "bot"}})
    back = unified_messages([to_langchain(message)])[0]
    assert back == message
    assert unified_messages(langchain_messages([back]))[0] == message
