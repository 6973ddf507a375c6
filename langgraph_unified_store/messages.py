"""LangChain messages <-> UnifiedMessage, with nothing lost.

Fields that have no neutral slot (usage metadata, response metadata, artifacts,
chunk-ness) travel in ``UnifiedMessage.metadata["langchain"]`` and come back on
the way out. Message kinds the schema cannot express (ChatMessage with a custom
role, FunctionMessage, RemoveMessage) keep their whole LangChain form there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)

from .state import Role, ToolCall, UnifiedMessage

LANGCHAIN_KEY = "langchain"

_ROLE_BY_TYPE: dict[str, Role] = {
    "human": "user",
    "ai": "assistant",
    "system": "system",
    "tool": "tool",
    "AIMessageChunk": "assistant",
}
_NATIVE_TYPES = (HumanMessage, AIMessage, SystemMessage, ToolMessage)


def _extras(message: BaseMessage) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    if message.additional_kwargs:
        extras["additional_kwargs"] = message.additional_kwargs
    if message.response_metadata:
        extras["response_metadata"] = message.response_metadata
    if isinstance(message, AIMessage):
        if message.usage_metadata:
            extras["usage_metadata"] = dict(message.usage_metadata)
        if message.invalid_tool_calls:
            extras["invalid_tool_calls"] = [dict(c) for c in message.invalid_tool_calls]
        if isinstance(message, AIMessageChunk):
            extras["chunk"] = True
    if isinstance(message, ToolMessage):
        if message.artifact is not None:
            extras["artifact"] = message.artifact
        if message.status != "success":
            extras["status"] = message.status
    return extras


def to_unified(message: BaseMessage | dict[str, Any]) -> UnifiedMessage:
    """Convert one LangChain message (or its dict form) to a UnifiedMessage."""
    if isinstance(message, dict):
        message = messages_from_dict([message])[0] if "data" in message else _from_plain(message)
    if not isinstance(message, _NATIVE_TYPES) or type(message) not in (
        HumanMessage,
        AIMessage,
        AIMessageChunk,
        SystemMessage,
        ToolMessage,
    ):
        return UnifiedMessage(
            role=_ROLE_BY_TYPE.get(message.type, "assistant"),
            content=message.content if isinstance(message.content, (str, list)) else "",
            name=message.name,
            id=message.id,
            metadata={LANGCHAIN_KEY: {"raw": message_to_dict(message)}},
        )
    extras = _extras(message)
    # Metadata another framework put on the message rides in additional_kwargs
    # (see to_langchain); give it back its top-level place.
    foreign: dict[str, Any] = {}
    if "unified_metadata" in extras.get("additional_kwargs", {}):
        kwargs = dict(extras["additional_kwargs"])
        foreign = dict(kwargs.pop("unified_metadata") or {})
        if kwargs:
            extras["additional_kwargs"] = kwargs
        else:
            del extras["additional_kwargs"]
    unified = UnifiedMessage(
        role=_ROLE_BY_TYPE[message.type],
        content=message.content,
        name=message.name,
        id=message.id,
        metadata={**foreign, LANGCHAIN_KEY: extras} if extras else foreign,
    )
    if isinstance(message, AIMessage):
        unified.tool_calls = [
            ToolCall(id=call.get("id"), name=call["name"], arguments=dict(call.get("args") or {}))
            for call in message.tool_calls
        ]
    if isinstance(message, ToolMessage):
        unified.tool_call_id = message.tool_call_id
    return unified


def _from_plain(data: dict[str, Any]) -> BaseMessage:
    # A plain {"role": ..., "content": ...} dict, as graphs sometimes store.
    role = data.get("role") or data.get("type")
    content = data.get("content", "")
    if role in ("user", "human"):
        return HumanMessage(content=content, id=data.get("id"), name=data.get("name"))
    if role in ("assistant", "ai"):
        return AIMessage(content=content, id=data.get("id"), name=data.get("name"))
    if role == "system":
        return SystemMessage(content=content, id=data.get("id"))
    if role == "tool":
        return ToolMessage(content=content, tool_call_id=data.get("tool_call_id", ""), id=data.get("id"))
    raise ValueError(f"cannot read a message with role {role!r}")


def to_langchain(message: UnifiedMessage) -> BaseMessage:
    """Convert a UnifiedMessage back to the LangChain message it came from."""
    extras: dict[str, Any] = dict(message.metadata.get(LANGCHAIN_KEY) or {})
    other_metadata = {k: v for k, v in message.metadata.items() if k != LANGCHAIN_KEY}
    if "raw" in extras:
        return messages_from_dict([extras["raw"]])[0]
    common: dict[str, Any] = {
        "content": message.content,
        "id": message.id,
        "additional_kwargs": extras.get("additional_kwargs", {}),
        "response_metadata": extras.get("response_metadata", {}),
    }
    if message.name is not None:
        common["name"] = message.name
    if other_metadata:
        # Metadata from other frameworks rides along where LangChain keeps extras.
        common["additional_kwargs"] = {
            **common["additional_kwargs"],
            "unified_metadata": other_metadata,
        }
    if message.role == "user":
        return HumanMessage(**common)
    if message.role == "system":
        return SystemMessage(**common)
    if message.role == "tool":
        tool_kwargs: dict[str, Any] = {"tool_call_id": message.tool_call_id or ""}
        if "artifact" in extras:
            tool_kwargs["artifact"] = extras["artifact"]
        if "status" in extras:
            tool_kwargs["status"] = extras["status"]
        return ToolMessage(**common, **tool_kwargs)
    ai_kwargs: dict[str, Any] = {
        "tool_calls": [
            {"id": call.id, "name": call.name, "args": call.arguments, "type": "tool_call"}
            for call in message.tool_calls
        ]
    }
    if "usage_metadata" in extras:
        ai_kwargs["usage_metadata"] = extras["usage_metadata"]
    if "invalid_tool_calls" in extras:
        ai_kwargs["invalid_tool_calls"] = extras["invalid_tool_calls"]
    cls = AIMessageChunk if extras.get("chunk") else AIMessage
    return cls(**common, **ai_kwargs)


def unified_messages(messages: Iterable[BaseMessage | dict[str, Any]]) -> list[UnifiedMessage]:
    return [to_unified(m) for m in messages]


def langchain_messages(messages: Sequence[UnifiedMessage]) -> list[BaseMessage]:
    return [to_langchain(m) for m in messages]
