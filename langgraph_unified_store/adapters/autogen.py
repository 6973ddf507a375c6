"""AutoGen (autogen-agentchat / autogen-core 0.7) on the unified store.

``AutoGenStateStore`` saves an agent's or a team's state as a checkpoint of a thread
and loads it back. For an agent, its model context's messages are the thread's
messages (tool calls and tool results included); for a team, the group chat's message
thread is. Everything else in the saved state is kept in ``framework_state["autogen"]``.

``UnifiedChatCompletionContext`` is a model context that reads and writes the thread
directly, so an agent shares its conversation with every other framework live.

The system prompt of an AutoGen agent is not part of its saved state (AutoGen keeps it
on the agent), so it is not stored.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pydantic_core import to_jsonable_python

from ..errors import missing_extra
from ..messages import LANGCHAIN_KEY
from ..state import ToolCall, UnifiedMessage, UnifiedWorkflowState
from ._common import (
    RAW_KEY,
    canonical,
    dump_arguments,
    framework_metadata,
    new_state,
    parse_arguments,
    reuse_unchanged,
    text_of,
)

try:
    from autogen_core.model_context import ChatCompletionContext, ChatCompletionContextState
    from autogen_core.models import LLMMessage
except ImportError as exc:  # pragma: no cover - exercised with the extra uninstalled
    raise missing_extra("autogen", "autogen-core") from exc

if TYPE_CHECKING:
    from ..core.saver import UnifiedCheckpointSaver

__all__ = [
    "FRAMEWORK_KEY",
    "AutoGenStateStore",
    "StatefulComponent",
    "UnifiedChatCompletionContext",
    "llm_messages_from_unified",
    "unified_from_llm_messages",
]

FRAMEWORK_KEY = "autogen"
_USER_SOURCE = "user"
_ASSISTANT_SOURCE = "assistant"


class StatefulComponent(Protocol):
    """An AutoGen agent or team: anything with async ``save_state``/``load_state``."""

    async def save_state(self) -> Mapping[str, Any]: ...

    async def load_state(self, state: Mapping[str, Any]) -> None: ...


# -- LLM messages (a model context) <-> unified --------------------------------------------


def _as_dict(message: Any) -> dict[str, Any]:
    dumped = message.model_dump(mode="json") if hasattr(message, "model_dump") else message
    data: dict[str, Any] = to_jsonable_python(dumped)
    return data


def _content_blocks(content: list[Any]) -> list[Any]:
    blocks: list[Any] = []
    for part in content:
        if isinstance(part, str):
            blocks.append({"type": "text", "text": part})
        elif isinstance(part, dict) and isinstance(part.get("data"), str):
            blocks.append({"type": "image", "base64": part["data"], "mime_type": "image/png"})
        else:
            blocks.append(part)
    return blocks


def _autogen_content(content: str | list[Any]) -> str | list[Any]:
    if isinstance(content, str):
        return content
    parts: list[Any] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif isinstance(block, dict) and block.get("type") == "image" and block.get("base64"):
            parts.append({"data": block["base64"]})
    if all(isinstance(p, str) for p in parts):
        return "\n".join(parts)
    return parts


def _name(source: Any, default: str) -> str | None:
    # AutoGen's default sources carry no name; leaving them out keeps LangChain names clean.
    return source if isinstance(source, str) and source != default else None


def _plain_from_llm(data: dict[str, Any]) -> list[UnifiedMessage]:
    kind = data.get("type")
    if kind == "SystemMessage":
        return [UnifiedMessage(role="system", content=str(data.get("content", "")))]
    if kind == "UserMessage":
        content = data.get("content", "")
        return [
            UnifiedMessage(
                role="user",
                content=content if isinstance(content, str) else _content_blocks(content),
                name=_name(data.get("source"), _USER_SOURCE),
            )
        ]
    if kind == "AssistantMessage":
        content = data.get("content")
        thought = data.get("thought")
        if isinstance(content, list):
            calls = [
                ToolCall(
                    id=call.get("id"),
                    name=str(call.get("name", "")),
                    arguments=parse_arguments(call.get("arguments")) or {},
                )
                for call in content
            ]
            return [
                UnifiedMessage(
                    role="assistant",
                    content=thought or "",
                    name=_name(data.get("source"), _ASSISTANT_SOURCE),
                    tool_calls=calls,
                )
            ]
        message = UnifiedMessage(
            role="assistant",
            content=str(content),
            name=_name(data.get("source"), _ASSISTANT_SOURCE),
        )
        if thought is not None:
            message.metadata[FRAMEWORK_KEY] = {"thought": thought}
        return [message]
    if kind == "FunctionExecutionResultMessage":
        results: list[UnifiedMessage] = []
        for result in data.get("content") or []:
            message = UnifiedMessage(
                role="tool",
                content=str(result.get("content", "")),
                name=result.get("name"),
                tool_call_id=result.get("call_id"),
            )
            if result.get("is_error") is not False:
                message.metadata[FRAMEWORK_KEY] = {"is_error": result.get("is_error")}
            results.append(message)
        return results
    # A message type this adapter does not know: keep it whole.
    return [UnifiedMessage(role="user", content=str(data.get("content", "")))]


def _is_error(message: UnifiedMessage) -> bool | None:
    own = framework_metadata(message, FRAMEWORK_KEY)
    if "is_error" in own:
        value = own["is_error"]
        return value if isinstance(value, bool) else None
    langchain = message.metadata.get(LANGCHAIN_KEY)
    return isinstance(langchain, dict) and langchain.get("status") == "error"


def _plain_to_llm(message: UnifiedMessage) -> dict[str, Any]:
    """One unified message as an AutoGen LLM message dict (tool results one per message)."""
    if message.role == "system":
        return {"type": "SystemMessage", "content": text_of(message.content)}
    if message.role == "user":
        return {
            "type": "UserMessage",
            "content": _autogen_content(message.content),
            "source": message.name or _USER_SOURCE,
        }
    if message.role == "tool":
        return {
            "type": "FunctionExecutionResultMessage",
            "content": [
                {
                    "content": text_of(message.content),
                    "name": message.name or "",
                    "call_id": message.tool_call_id or "",
                    "is_error": _is_error(message),
                }
            ],
        }
    source = message.name or _ASSISTANT_SOURCE
    if message.tool_calls:
        text = text_of(message.content)
        return {
            "type": "AssistantMessage",
            "content": [
                {"id": call.id or "", "arguments": dump_arguments(call.arguments), "name": call.name}
                for call in message.tool_calls
            ],
            "thought": text or None,
            "source": source,
        }
    return {
        "type": "AssistantMessage",
        "content": text_of(message.content),
        "thought": framework_metadata(message, FRAMEWORK_KEY).get("thought"),
        "source": source,
    }


def _core(message: UnifiedMessage) -> bytes:
    return canonical(
        {
            "role": message.role,
            "content": message.content,
            "name": message.name,
            "tool_calls": [c.model_dump() for c in message.tool_calls],
            "tool_call_id": message.tool_call_id,
        }
    )


def _raw_of(message: UnifiedMessage) -> dict[str, Any] | None:
    """The exact LLM message AutoGen stored, if it still describes ``message``."""
    raw = framework_metadata(message, FRAMEWORK_KEY).get(RAW_KEY)
    if not isinstance(raw, dict):
        return None
    plain = _plain_from_llm(raw)
    return raw if len(plain) == 1 and _core(plain[0]) == _core(message) else None


def unified_from_llm_messages(messages: Sequence[Any]) -> list[UnifiedMessage]:
    """AutoGen LLM messages (objects or dicts) as unified messages, nothing dropped."""
    unified: list[UnifiedMessage] = []
    for message in messages:
        data = _as_dict(message)
        converted = _plain_from_llm(data)
        if data.get("type") == "FunctionExecutionResultMessage":
            # Exact by construction: each result is one tool message; they regroup on load.
            unified.extend(converted)
            continue
        (single,) = converted
        if canonical(_plain_to_llm(single)) != canonical(data):
            own = dict(framework_metadata(single, FRAMEWORK_KEY))
            own[RAW_KEY] = data
            single.metadata[FRAMEWORK_KEY] = own
        unified.append(single)
    return unified


def _llm_dicts(messages: Sequence[UnifiedMessage]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        data = _raw_of(message) or _plain_to_llm(message)
        previous = out[-1] if out else None
        if (
            data["type"] == "FunctionExecutionResultMessage"
            and previous is not None
            and previous["type"] == "FunctionExecutionResultMessage"
        ):
            # AutoGen answers one assistant turn's calls in one result message.
            previous["content"] = [*previous["content"], *data["content"]]
            continue
        out.append(data)
    return out


def llm_messages_from_unified(messages: Sequence[UnifiedMessage]) -> list[LLMMessage]:
    """Unified messages as AutoGen LLM messages (consecutive tool results grouped)."""
    state = ChatCompletionContextState.model_validate({"messages": _llm_dicts(messages)})
    return list(state.messages)


def _llm_key(message: UnifiedMessage) -> Hashable:
    return canonical(_llm_dicts([message]))


# -- a team's message thread <-> unified ---------------------------------------------------


def _thread_item_to_unified(item: dict[str, Any]) -> UnifiedMessage:
    source = item.get("source")
    content = item.get("content")
    return UnifiedMessage(
        role="user" if source == _USER_SOURCE else "assistant",
        content=content if isinstance(content, str) else canonical(content).decode(),
        name=_name(source, _USER_SOURCE),
        id=item.get("id") if isinstance(item.get("id"), str) else None,
        metadata={FRAMEWORK_KEY: {RAW_KEY: item}},
    )


def _thread_item(message: UnifiedMessage) -> dict[str, Any]:
    raw = framework_metadata(message, FRAMEWORK_KEY).get(RAW_KEY)
    if (
        isinstance(raw, dict)
        and "source" in raw
        and _core(_thread_item_to_unified(raw)) == _core(message)
    ):
        return raw
    item: dict[str, Any] = {
        "type": "TextMessage",
        "source": message.name or message.role,
        "content": text_of(message.content),
    }
    if message.id:
        item["id"] = message.id
    return item


def _thread_key(message: UnifiedMessage) -> Hashable:
    item = _thread_item(message)
    return canonical({k: item.get(k) for k in ("type", "source", "content")})


def _context_view(message: UnifiedMessage) -> dict[str, Any]:
    """How a team member's model context sees a message another framework wrote."""
    if message.role == "system":
        return {"type": "SystemMessage", "content": text_of(message.content)}
    return {
        "type": "UserMessage",
        "content": text_of(message.content),
        "source": message.name or message.role,
    }


# -- agent and team state ------------------------------------------------------------------


def _kind(state: Mapping[str, Any]) -> str:
    context = state.get("llm_context")
    if isinstance(context, dict) and isinstance(context.get("messages"), list):
        return "agent"
    if _manager(state) is not None:
        return "team"
    return "other"


def _manager(state: Mapping[str, Any]) -> dict[str, Any] | None:
    agents = state.get("agent_states")
    if not isinstance(agents, dict):
        return None
    for member in agents.values():
        if isinstance(member, dict) and isinstance(member.get("message_thread"), list):
            return member
    return None


def _member_contexts(state: Mapping[str, Any]) -> list[list[Any]]:
    contexts: list[list[Any]] = []
    for member in (state.get("agent_states") or {}).values():
        inner = member.get("agent_state") if isinstance(member, dict) else None
        context = inner.get("llm_context") if isinstance(inner, dict) else None
        if isinstance(context, dict) and isinstance(context.get("messages"), list):
            contexts.append(context["messages"])
    return contexts


class AutoGenStateStore:
    """Saves and loads AutoGen agents and teams as checkpoints of a workflow's thread."""

    def __init__(self, saver: UnifiedCheckpointSaver) -> None:
        self.saver = saver

    async def save(self, workflow_id: str, agent_or_team: StatefulComponent) -> UnifiedWorkflowState:
        """Write the agent's or team's state as the thread's next checkpoint; return it."""
        saved = to_jsonable_python(dict(await agent_or_team.save_state()))
        previous = await self.saver.aload_state(workflow_id)
        state = previous.model_copy(deep=True) if previous is not None else new_state(workflow_id)
        kind = _kind(saved)
        rest = copy.deepcopy(saved)
        if kind == "agent":
            incoming = unified_from_llm_messages(saved["llm_context"]["messages"])
            state.messages = reuse_unchanged(state.messages, incoming, _llm_key)
            rest["llm_context"]["messages"] = []
        elif kind == "team":
            manager = _manager(rest)
            assert manager is not None
            incoming = [_thread_item_to_unified(item) for item in manager["message_thread"]]
            state.messages = reuse_unchanged(state.messages, incoming, _thread_key)
            manager["message_thread"] = []
        state.framework_state[FRAMEWORK_KEY] = {
            "kind": kind,
            "state": rest,
            "message_count": len(state.messages),
        }
        await self.saver.asave_state(workflow_id, state, framework="autogen")
        return state

    async def load(self, workflow_id: str, agent_or_team: StatefulComponent) -> bool:
        """Load the thread into the agent or team; False (and nothing touched) when the
        workflow has no checkpoint."""
        state = await self.saver.aload_state(workflow_id)
        if state is None:
            return False
        fresh = to_jsonable_python(dict(await agent_or_team.save_state()))
        stored = state.framework_state.get(FRAMEWORK_KEY) or {}
        stored_state = stored.get("state")
        reuse = isinstance(stored_state, dict) and stored_state.get("type") == fresh.get("type")
        skeleton: dict[str, Any] = (
            copy.deepcopy(stored_state) if reuse and isinstance(stored_state, dict) else fresh
        )
        kind = _kind(skeleton)
        if kind == "agent":
            skeleton["llm_context"]["messages"] = _llm_dicts(state.messages)
        elif kind == "team":
            manager = _manager(skeleton)
            assert manager is not None
            manager["message_thread"] = [_thread_item(m) for m in state.messages]
            seen = int(stored.get("message_count", 0)) if reuse else 0
            unseen = [_context_view(m) for m in state.messages[seen:]]
            for context in _member_contexts(skeleton):
                context.extend(copy.deepcopy(unseen))
        await agent_or_team.load_state(skeleton)
        return True


class UnifiedChatCompletionContext(ChatCompletionContext):
    """A model context whose messages are the thread's: every add is a checkpoint."""

    def __init__(self, saver: UnifiedCheckpointSaver, workflow_id: str) -> None:
        super().__init__()
        self.saver = saver
        self.workflow_id = workflow_id

    async def _write(self, messages: list[UnifiedMessage]) -> None:
        state = await self.saver.aload_state(self.workflow_id)
        if state is None:
            if not messages:
                return
            state = new_state(self.workflow_id)
        elif canonical([m.model_dump(mode="json") for m in state.messages]) == canonical(
            [m.model_dump(mode="json") for m in messages]
        ):
            return
        state.messages = messages
        await self.saver.asave_state(self.workflow_id, state, framework="autogen")

    async def add_message(self, message: LLMMessage) -> None:
        state = await self.saver.aload_state(self.workflow_id) or new_state(self.workflow_id)
        state.messages = [*state.messages, *unified_from_llm_messages([message])]
        await self.saver.asave_state(self.workflow_id, state, framework="autogen")
        self._messages = llm_messages_from_unified(state.messages)

    async def get_messages(self) -> list[LLMMessage]:
        state = await self.saver.aload_state(self.workflow_id)
        self._messages = llm_messages_from_unified(state.messages) if state is not None else []
        return list(self._messages)

    async def clear(self) -> None:
        await self._write([])
        self._messages = []

    async def save_state(self) -> Mapping[str, Any]:
        messages = await self.get_messages()
        return ChatCompletionContextState(messages=messages).model_dump()

    async def load_state(self, state: Mapping[str, Any]) -> None:
        messages = ChatCompletionContextState.model_validate(state).messages
        current = await self.saver.aload_state(self.workflow_id)
        previous = current.messages if current is not None else []
        incoming = unified_from_llm_messages(messages)
        await self._write(reuse_unchanged(previous, incoming, _llm_key))
        self._messages = list(messages)
