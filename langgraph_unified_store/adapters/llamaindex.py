"""LlamaIndex (llama-index-core 0.14, llama-index-workflows 2) on the unified store.

* ``UnifiedChatStore``: a ``BaseChatStore`` (``ChatMemoryBuffer``, chat engines); key =
  workflow id; sync and async.
* ``UnifiedDBChatStore``: an ``AsyncDBChatStore`` for the new ``Memory``; archived
  messages stay in the thread, marked ``metadata["llamaindex"]["status"] = "archived"``.
* ``LlamaIndexContextStore``: saves a workflow ``Context`` on the thread and loads it
  back; JSON values of its state store map to the unified context. ``Context.to_dict``
  drops a ``memory`` key, so messages travel through the chat stores above.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import PrivateAttr
from pydantic_core import to_jsonable_python

from ..errors import missing_extra
from ..state import Role, ToolCall, UnifiedMessage, UnifiedWorkflowState
from ._common import (
    RAW_KEY,
    canonical,
    framework_metadata,
    is_context_key,
    is_json,
    merge_context,
    new_state,
    parse_arguments,
    reuse_unchanged,
    with_framework_metadata,
)

try:
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.storage.chat_store.base import BaseChatStore
    from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus
except ImportError as exc:  # pragma: no cover - exercised with the extra uninstalled
    raise missing_extra("llamaindex", "llama-index-core") from exc

if TYPE_CHECKING:
    from workflows import Context, Workflow

    from ..core.saver import UnifiedCheckpointSaver

__all__ = [
    "FRAMEWORK_KEY",
    "LlamaIndexContextStore",
    "UnifiedChatStore",
    "UnifiedDBChatStore",
    "chat_message_from_unified",
    "unified_from_chat_message",
]

R = TypeVar("R")

FRAMEWORK_KEY = "llamaindex"
ARCHIVED = "archived"
_ROLES_IN: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "chatbot": "assistant",
    "model": "assistant",
    "tool": "tool",
    "function": "tool",
}

# (messages or None when the thread has none) -> (messages to write or None, result)
Operation = Callable[[list[UnifiedMessage] | None], tuple[list[UnifiedMessage] | None, R]]


# -- ChatMessage <-> unified ---------------------------------------------------------------


def _normalized(data: dict[str, Any]) -> dict[str, Any]:
    dumped: dict[str, Any] = ChatMessage.model_validate(data).model_dump(mode="json")
    return dumped


def _content_part(block: dict[str, Any]) -> dict[str, Any] | None:
    """A block as a LangChain-style content part; None for kinds only the raw copy keeps."""
    kind = block.get("block_type")
    if kind == "text":
        return {"type": "text", "text": str(block.get("text", ""))}
    if kind == "image" and isinstance(block.get("url"), str):
        return {"type": "image", "url": block["url"]}
    return None


def _plain_from_chat(data: dict[str, Any]) -> UnifiedMessage:
    blocks = data.get("blocks") or []
    texts = [str(b.get("text", "")) for b in blocks if b.get("block_type") == "text"]
    parts = [_content_part(b) for b in blocks if b.get("block_type") != "tool_call"]
    others = [b for b in blocks if b.get("block_type") not in ("text", "tool_call")]
    calls = [
        ToolCall(
            id=b.get("tool_call_id"),
            name=str(b.get("tool_name", "")),
            arguments=parse_arguments(b.get("tool_kwargs")) or {},
        )
        for b in blocks
        if b.get("block_type") == "tool_call"
    ]
    content: str | list[Any]
    if len(texts) == 1 and not others:
        content = texts[0]
    elif not texts and not others:
        content = ""
    else:
        content = [part for part in parts if part is not None]
    kwargs = data.get("additional_kwargs") or {}
    name = kwargs.get("name")
    tool_call_id = kwargs.get("tool_call_id")
    return UnifiedMessage(
        role=_ROLES_IN.get(str(data.get("role")), "user"),
        content=content,
        name=name if isinstance(name, str) else None,
        tool_calls=calls,
        tool_call_id=tool_call_id if isinstance(tool_call_id, str) else None,
    )


def _plain_to_chat(message: UnifiedMessage) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if isinstance(message.content, str):
        if message.content or not message.tool_calls:
            blocks.append({"block_type": "text", "text": message.content})
    else:
        for part in message.content:
            if isinstance(part, str):
                blocks.append({"block_type": "text", "text": part})
            elif isinstance(part, dict) and part.get("type") == "text":
                blocks.append({"block_type": "text", "text": str(part.get("text", ""))})
            elif isinstance(part, dict) and part.get("type") == "image" and part.get("url"):
                blocks.append({"block_type": "image", "url": part["url"]})
    blocks.extend(
        {
            "block_type": "tool_call",
            "tool_call_id": call.id,
            "tool_name": call.name,
            "tool_kwargs": call.arguments,
        }
        for call in message.tool_calls
    )
    kwargs: dict[str, Any] = {}
    if message.name is not None:
        kwargs["name"] = message.name
    if message.tool_call_id is not None:
        kwargs["tool_call_id"] = message.tool_call_id
    return {"role": message.role, "additional_kwargs": kwargs, "blocks": blocks}


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


def _chat_dict(message: UnifiedMessage) -> dict[str, Any]:
    raw = framework_metadata(message, FRAMEWORK_KEY).get(RAW_KEY)
    if isinstance(raw, dict) and _core(_plain_from_chat(raw)) == _core(message):
        return raw
    return _normalized(_plain_to_chat(message))


def unified_from_chat_message(message: ChatMessage, status: str | None = None) -> UnifiedMessage:
    """A LlamaIndex ChatMessage as a UnifiedMessage; blocks and kwargs without a slot
    are kept whole in ``metadata["llamaindex"]["raw"]``."""
    data = message.model_dump(mode="json")
    unified = _plain_from_chat(data)
    own: dict[str, Any] = {}
    if canonical(_normalized(_plain_to_chat(unified))) != canonical(data):
        own[RAW_KEY] = data
    if status is not None and status != MessageStatus.ACTIVE.value:
        own["status"] = status
    if own:
        unified.metadata[FRAMEWORK_KEY] = own
    return unified


def chat_message_from_unified(message: UnifiedMessage) -> ChatMessage:
    """A UnifiedMessage as a LlamaIndex ChatMessage (the exact one, if LlamaIndex wrote it)."""
    return ChatMessage.model_validate(_chat_dict(message))


def _key(message: UnifiedMessage) -> Hashable:
    return canonical(_chat_dict(message))


def _status(message: UnifiedMessage) -> str:
    return str(framework_metadata(message, FRAMEWORK_KEY).get("status", MessageStatus.ACTIVE.value))


def _with_status(message: UnifiedMessage, status: str) -> UnifiedMessage:
    if _status(message) == status:
        return message
    own = dict(framework_metadata(message, FRAMEWORK_KEY))
    if status == MessageStatus.ACTIVE.value:
        own.pop("status", None)
    else:
        own["status"] = status
    return with_framework_metadata(message, FRAMEWORK_KEY, own)


def _converted(messages: Sequence[ChatMessage], status: str | None = None) -> list[UnifiedMessage]:
    return [unified_from_chat_message(m, status) for m in messages]


# -- one read-modify-write of a thread's messages, sync or async ---------------------------


def _apply_sync(saver: UnifiedCheckpointSaver, key: str, operation: Operation[R]) -> R:
    state = saver.load_state(key)
    written, result = operation(state.messages if state is not None else None)
    if written is not None:
        target = state if state is not None else new_state(key)
        target.messages = written
        saver.save_state(key, target, framework="llamaindex")
    return result


async def _apply(saver: UnifiedCheckpointSaver, key: str, operation: Operation[R]) -> R:
    state = await saver.aload_state(key)
    written, result = operation(state.messages if state is not None else None)
    if written is not None:
        target = state if state is not None else new_state(key)
        target.messages = written
        await saver.asave_state(key, target, framework="llamaindex")
    return result


def _set(messages: Sequence[ChatMessage], status: str | None = None) -> Operation[None]:
    def operation(current: list[UnifiedMessage] | None) -> tuple[list[UnifiedMessage], None]:
        incoming = _converted(messages, status)
        merged = reuse_unchanged(current or [], incoming, _key)
        if status is not None:
            merged = [_with_status(m, status) for m in merged]
        return merged, None

    return operation


def _append(messages: Sequence[ChatMessage], status: str | None = None) -> Operation[None]:
    def operation(current: list[UnifiedMessage] | None) -> tuple[list[UnifiedMessage] | None, None]:
        if not messages:
            return None, None
        return [*(current or []), *_converted(messages, status)], None

    return operation


def _delete_all(current: list[UnifiedMessage] | None) -> tuple[list[UnifiedMessage] | None, list[ChatMessage] | None]:
    if current is None:
        return None, None
    return [], [chat_message_from_unified(m) for m in current]


def _delete_at(idx: int) -> Operation[ChatMessage | None]:
    def operation(
        current: list[UnifiedMessage] | None,
    ) -> tuple[list[UnifiedMessage] | None, ChatMessage | None]:
        if current is None or not -len(current) <= idx < len(current):
            return None, None
        remaining = list(current)
        removed = remaining.pop(idx)
        return remaining, chat_message_from_unified(removed)

    return operation


def _get(current: list[UnifiedMessage] | None) -> tuple[None, list[ChatMessage]]:
    return None, [chat_message_from_unified(m) for m in current or []]


# -- BaseChatStore -------------------------------------------------------------------------


class UnifiedChatStore(BaseChatStore):
    """A LlamaIndex chat store whose keys are workflow ids of the unified store."""

    _saver: UnifiedCheckpointSaver = PrivateAttr()

    def __init__(self, saver: UnifiedCheckpointSaver, /, **data: Any) -> None:
        super().__init__(**data)
        self._saver = saver

    @classmethod
    def class_name(cls) -> str:
        return "UnifiedChatStore"

    @property
    def saver(self) -> UnifiedCheckpointSaver:
        return self._saver

    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        _apply_sync(self._saver, key, _set(messages))

    def get_messages(self, key: str) -> list[ChatMessage]:
        return _apply_sync(self._saver, key, _get)

    def add_message(self, key: str, message: ChatMessage) -> None:
        _apply_sync(self._saver, key, _append([message]))

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        return _apply_sync(self._saver, key, _delete_all)

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        return _apply_sync(self._saver, key, _delete_at(idx))

    def delete_last_message(self, key: str) -> ChatMessage | None:
        return _apply_sync(self._saver, key, _delete_at(-1))

    def get_keys(self) -> list[str]:
        return self._saver.list_workflows()

    async def aset_messages(self, key: str, messages: list[ChatMessage]) -> None:
        await _apply(self._saver, key, _set(messages))

    async def aget_messages(self, key: str) -> list[ChatMessage]:
        return await _apply(self._saver, key, _get)

    async def async_add_message(self, key: str, message: ChatMessage) -> None:
        await _apply(self._saver, key, _append([message]))

    async def adelete_messages(self, key: str) -> list[ChatMessage] | None:
        return await _apply(self._saver, key, _delete_all)

    async def adelete_message(self, key: str, idx: int) -> ChatMessage | None:
        return await _apply(self._saver, key, _delete_at(idx))

    async def adelete_last_message(self, key: str) -> ChatMessage | None:
        return await _apply(self._saver, key, _delete_at(-1))

    async def aget_keys(self) -> list[str]:
        return await self._saver.alist_workflows()


# -- AsyncDBChatStore (the new Memory) -----------------------------------------------------


def _matches(message: UnifiedMessage, status: MessageStatus | None) -> bool:
    return status is None or _status(message) == status.value


class UnifiedDBChatStore(AsyncDBChatStore):
    """The chat store behind LlamaIndex ``Memory``: a FIFO queue of active messages
    whose overflow is archived, not deleted, so other frameworks still see it."""

    _saver: UnifiedCheckpointSaver = PrivateAttr()

    def __init__(self, saver: UnifiedCheckpointSaver, /, **data: Any) -> None:
        super().__init__(**data)
        self._saver = saver

    @classmethod
    def class_name(cls) -> str:
        return "UnifiedDBChatStore"

    @property
    def saver(self) -> UnifiedCheckpointSaver:
        return self._saver

    async def get_messages(
        self,
        key: str,
        status: MessageStatus | None = MessageStatus.ACTIVE,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[ChatMessage]:
        state = await self._saver.aload_state(key)
        chosen = [m for m in (state.messages if state else []) if _matches(m, status)]
        start = offset or 0
        chosen = chosen[start:] if limit is None else chosen[start : start + limit]
        return [chat_message_from_unified(m) for m in chosen]

    async def count_messages(
        self, key: str, status: MessageStatus | None = MessageStatus.ACTIVE
    ) -> int:
        state = await self._saver.aload_state(key)
        return sum(1 for m in (state.messages if state else []) if _matches(m, status))

    async def add_message(
        self, key: str, message: ChatMessage, status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        await _apply(self._saver, key, _append([message], MessageStatus(status).value))

    async def add_messages(
        self,
        key: str,
        messages: list[ChatMessage],
        status: MessageStatus = MessageStatus.ACTIVE,
    ) -> None:
        await _apply(self._saver, key, _append(messages, MessageStatus(status).value))

    async def set_messages(
        self,
        key: str,
        messages: list[ChatMessage],
        status: MessageStatus = MessageStatus.ACTIVE,
    ) -> None:
        await _apply(self._saver, key, _set(messages, MessageStatus(status).value))

    async def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx`` of the thread (archived ones included)."""
        return await _apply(self._saver, key, _delete_at(idx))

    async def delete_messages(self, key: str, status: MessageStatus | None = None) -> None:
        def operation(current: list[UnifiedMessage] | None) -> tuple[list[UnifiedMessage] | None, None]:
            if not current:
                return None, None
            kept = [m for m in current if not _matches(m, status)]
            return (kept if len(kept) != len(current) else None), None

        await _apply(self._saver, key, operation)

    async def delete_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        def operation(
            current: list[UnifiedMessage] | None,
        ) -> tuple[list[UnifiedMessage] | None, list[ChatMessage]]:
            oldest = self._oldest_active(current, n)
            if not oldest:
                return None, []
            kept = [m for i, m in enumerate(current or []) if i not in oldest]
            return kept, [chat_message_from_unified((current or [])[i]) for i in oldest]

        return await _apply(self._saver, key, operation)

    async def archive_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        def operation(
            current: list[UnifiedMessage] | None,
        ) -> tuple[list[UnifiedMessage] | None, list[ChatMessage]]:
            oldest = self._oldest_active(current, n)
            if not oldest:
                return None, []
            updated = [
                _with_status(m, ARCHIVED) if i in oldest else m
                for i, m in enumerate(current or [])
            ]
            return updated, [chat_message_from_unified((current or [])[i]) for i in oldest]

        return await _apply(self._saver, key, operation)

    @staticmethod
    def _oldest_active(current: list[UnifiedMessage] | None, n: int) -> list[int]:
        active = [i for i, m in enumerate(current or []) if _matches(m, MessageStatus.ACTIVE)]
        return active[: max(n, 0)]

    async def get_keys(self) -> list[str]:
        return await self._saver.alist_workflows()


# -- workflow Context ----------------------------------------------------------------------


async def _store_values(ctx: Context[Any]) -> tuple[dict[str, Any], Callable[[str], bool]]:
    """The context's state-store values, and which keys that store could have held."""
    from workflows.events import DictLikeModel

    state = await ctx.store.get_state()
    if isinstance(state, DictLikeModel):
        return {str(k): state[k] for k in list(state.keys())}, lambda key: True
    fields = set(type(state).model_fields)
    return {name: getattr(state, name) for name in fields}, lambda key: key in fields


def _json_values(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "memory" or not is_context_key(key):
            continue
        try:
            plain = to_jsonable_python(value)
        except Exception:  # pydantic raises its own error type for objects it cannot dump
            continue  # not JSON data: it stays in the serialized Context only
        if is_json(plain):
            out[key] = plain
    return out


def _memory_spec(value: Any) -> dict[str, Any] | None:
    from llama_index.core.memory import Memory

    if isinstance(value, Memory) and isinstance(value.sql_store, UnifiedDBChatStore):
        return {
            "session_id": value.session_id,
            "token_limit": value.token_limit,
            "chat_history_token_ratio": value.chat_history_token_ratio,
            "token_flush_size": value.token_flush_size,
        }
    return None


class LlamaIndexContextStore:
    """Saves a LlamaIndex workflow ``Context`` as a checkpoint of a thread, and back."""

    def __init__(self, saver: UnifiedCheckpointSaver) -> None:
        self.saver = saver

    async def save(self, workflow_id: str, ctx: Context[Any]) -> UnifiedWorkflowState:
        """Write the context (queues, state store) as the thread's next checkpoint."""
        values, can_hold = await _store_values(ctx)
        memory = _memory_spec(values.get("memory"))
        with warnings.catch_warnings():
            if memory is not None:
                # to_dict warns that it drops "memory"; this store restores that Memory.
                warnings.simplefilter("ignore")
            serialized = ctx.to_dict()
        written = _json_values(values)
        previous = await self.saver.aload_state(workflow_id)
        state = previous.model_copy(deep=True) if previous is not None else new_state(workflow_id)
        state.context = merge_context(state.context, written, can_hold)
        own: dict[str, Any] = {"context": serialized, "context_keys": sorted(written)}
        if memory is not None:
            own["memory"] = memory
        state.framework_state[FRAMEWORK_KEY] = own
        await self.saver.asave_state(workflow_id, state, framework="llamaindex")
        return state

    async def load(self, workflow_id: str, workflow: Workflow) -> Context[Any]:
        """The thread as a Context for ``workflow``; a fresh Context when the workflow id
        has no checkpoint. Context values other frameworks wrote are in its store."""
        from workflows import Context
        from workflows.events import DictLikeModel

        state = await self.saver.aload_state(workflow_id)
        if state is None:
            return Context(workflow)
        own = state.framework_state.get(FRAMEWORK_KEY) or {}
        serialized = own.get("context")
        ctx: Context[Any] = (
            Context.from_dict(workflow, serialized) if serialized else Context(workflow)
        )
        stale = [k for k in own.get("context_keys") or [] if k not in state.context]
        if stale:
            current = await ctx.store.get_state()
            if isinstance(current, DictLikeModel):
                # Another framework deleted these keys since LlamaIndex saved them.
                rebuilt = type(current)()
                for key in list(current.keys()):
                    if key not in stale:
                        rebuilt[key] = current[key]
                await ctx.store.set_state(rebuilt)
        for key, value in state.context.items():
            try:
                await ctx.store.set(key, value)
            except (ValueError, TypeError, KeyError, AttributeError):
                continue  # a typed state without that field: the key stays in the thread
        memory = own.get("memory")
        if isinstance(memory, dict):
            from llama_index.core.memory import Memory

            await ctx.store.set(
                "memory",
                Memory.from_defaults(
                    session_id=memory["session_id"],
                    chat_store=UnifiedDBChatStore(self.saver),
                    token_limit=memory["token_limit"],
                    chat_history_token_ratio=memory["chat_history_token_ratio"],
                    token_flush_size=memory["token_flush_size"],
                ),
            )
        return ctx
