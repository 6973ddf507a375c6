"""CrewAI Flow persistence on the unified store.

``UnifiedFlowPersistence`` is a CrewAI ``FlowPersistence``: every save becomes a
checkpoint on thread = flow id (framework ``"crewai"``), so a LangGraph graph, an
AutoGen agent or a LlamaIndex workflow can carry on the same conversation, and
``load_state`` returns whatever any of them wrote last.

A flow state's ``messages`` (OpenAI-style dicts: ``role``, ``content``, ``name``,
``tool_calls``, ``tool_call_id``) map to unified messages and its other fields to the
unified context. Use ``UnifiedFlowState`` when a flow wants that neutral shape spelled
out: ``messages`` plus a ``context`` dict.

CrewAI calls persistence synchronously, from inside its own event loop, so the saver
work runs on the saver's private I/O loop.
"""

from __future__ import annotations

from collections.abc import Coroutine, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, Field, PrivateAttr, model_validator
from pydantic_core import to_jsonable_python

from ..errors import SerializationError, missing_extra
from ..state import Role, ToolCall, UnifiedMessage, UnifiedWorkflowState
from ._common import (
    RAW_KEY,
    canonical,
    dump_arguments,
    framework_metadata,
    is_context_key,
    merge_context,
    new_state,
    parse_arguments,
    reuse_unchanged,
)

try:
    from crewai.flow.flow import FlowState
    from crewai.flow.persistence.base import FlowPersistence
except ImportError as exc:  # pragma: no cover - exercised with the extra uninstalled
    raise missing_extra("crewai", "crewai") from exc

if TYPE_CHECKING:
    from crewai.flow.async_feedback.types import PendingFeedbackContext

    from ..core.saver import UnifiedCheckpointSaver

__all__ = [
    "FRAMEWORK_KEY",
    "UnifiedFlowPersistence",
    "UnifiedFlowState",
    "message_from_crewai",
    "message_to_crewai",
]

T = TypeVar("T")

FRAMEWORK_KEY = "crewai"
_ROLES_IN: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "tool": "tool",
    "function": "tool",
}


# -- messages ------------------------------------------------------------------------------


def _plain_to_crewai(message: UnifiedMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name is not None:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": dump_arguments(call.arguments)},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def _core(message: UnifiedMessage) -> bytes:
    # What CrewAI can express of a message: everything but id and metadata.
    return canonical(_plain_to_crewai(message))


def _plain_from_crewai(item: Any) -> UnifiedMessage:
    if not isinstance(item, dict):
        return UnifiedMessage(role="user", content=item if isinstance(item, str) else str(item))
    content = item.get("content")
    if content is None:
        content = ""
    elif not isinstance(content, (str, list)):
        content = str(content)
    calls: list[ToolCall] = []
    for raw_call in item.get("tool_calls") or []:
        function = raw_call.get("function") if isinstance(raw_call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            continue
        arguments = parse_arguments(function.get("arguments"))
        calls.append(
            ToolCall(
                id=raw_call.get("id") if isinstance(raw_call.get("id"), str) else None,
                name=function["name"],
                arguments=arguments if arguments is not None else {},
            )
        )
    name = item.get("name")
    tool_call_id = item.get("tool_call_id")
    return UnifiedMessage(
        role=_ROLES_IN.get(str(item.get("role")), "user"),
        content=content,
        name=name if isinstance(name, str) else None,
        tool_calls=calls,
        tool_call_id=tool_call_id if isinstance(tool_call_id, str) else None,
    )


def message_from_crewai(item: Any) -> UnifiedMessage:
    """One flow-state message as a UnifiedMessage; what has no slot is kept raw."""
    item = to_jsonable_python(item)
    unified = _plain_from_crewai(item)
    if canonical(_plain_to_crewai(unified)) != canonical(item):
        unified.metadata[FRAMEWORK_KEY] = {RAW_KEY: item}
    return unified


def message_to_crewai(message: UnifiedMessage) -> Any:
    """A UnifiedMessage as an OpenAI-style dict, or the exact form CrewAI stored."""
    raw = framework_metadata(message, FRAMEWORK_KEY).get(RAW_KEY)
    if raw is not None and _core(_plain_from_crewai(raw)) == _core(message):
        return raw
    return _plain_to_crewai(message)


def _message_key(message: UnifiedMessage) -> Hashable:
    return canonical(message_to_crewai(message))


# -- state ---------------------------------------------------------------------------------


class UnifiedFlowState(FlowState):
    """A flow state in the neutral shape: chat ``messages`` plus a ``context`` dict.

    Keys a stored state has beyond the declared fields (context written by another
    framework) are gathered into ``context`` instead of being dropped.
    """

    messages: list[dict[str, Any]] = Field(default_factory=list)
    context: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gather_context(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        declared = set(cls.model_fields)
        extra = {k: v for k, v in data.items() if k not in declared}
        if not extra:
            return data
        kept = {k: v for k, v in data.items() if k in declared}
        kept["context"] = {**extra, **dict(kept.get("context") or {})}
        return kept

    def add_message(self, role: Role, content: str | list[Any], **fields: Any) -> dict[str, Any]:
        """Append an OpenAI-style message and return it."""
        message = {"role": role, "content": content, **fields}
        self.messages.append(message)
        return message


def _state_dict(state_data: dict[str, Any] | BaseModel) -> dict[str, Any]:
    raw = state_data.model_dump(mode="json") if isinstance(state_data, BaseModel) else state_data
    if not isinstance(raw, dict):
        raise SerializationError(
            f"a CrewAI flow state must be a dict or a pydantic model, not {type(raw).__name__}"
        )
    data: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            data[str(key)] = to_jsonable_python(value)
        except Exception as exc:  # pydantic raises its own error type for unknown objects
            raise SerializationError(
                f"flow state field {key!r} is not JSON data ({type(value).__name__}); "
                "store plain data in flow state"
            ) from exc
    return data


def _holder(state_data: dict[str, Any] | BaseModel) -> Any:
    """Which keys the flow's state could have carried (a dict or UnifiedFlowState: all)."""
    if isinstance(state_data, (dict, UnifiedFlowState)):
        return lambda key: True
    model = type(state_data)
    if model.model_config.get("extra") == "allow":
        return lambda key: True
    fields = set(model.model_fields)
    return lambda key: key in fields


class UnifiedFlowPersistence(FlowPersistence):
    """CrewAI flow persistence that writes every save as a checkpoint of thread = flow id."""

    persistence_type: str = Field(default="UnifiedFlowPersistence")
    _saver: UnifiedCheckpointSaver = PrivateAttr()

    def __init__(self, saver: UnifiedCheckpointSaver, /, **data: Any) -> None:
        super().__init__(**data)
        self._saver = saver

    @property
    def saver(self) -> UnifiedCheckpointSaver:
        return self._saver

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        # CrewAI calls these hooks synchronously from inside its running loop.
        return self._saver.run_blocking(coro)

    def init_db(self) -> None:
        self._run(self._saver.asetup())

    # -- saving ----------------------------------------------------------------------------

    def save_state(
        self, flow_uuid: str, method_name: str, state_data: dict[str, Any] | BaseModel
    ) -> None:
        self._run(self.asave_state(flow_uuid, method_name, state_data))

    async def asave_state(
        self,
        flow_uuid: str,
        method_name: str,
        state_data: dict[str, Any] | BaseModel,
        *,
        pending_feedback: dict[str, Any] | None = None,
    ) -> None:
        """The async body of ``save_state``, for callers already on an event loop."""
        data = _state_dict(state_data)
        data.pop("id", None)
        previous = await self._saver.aload_state(flow_uuid)
        state = previous.model_copy(deep=True) if previous is not None else new_state(flow_uuid)
        crewai_state: dict[str, Any] = {"method": method_name}
        earlier = state.framework_state.get(FRAMEWORK_KEY) or {}
        if earlier.get("pending_feedback") and pending_feedback is None:
            # A paused flow stays paused until CrewAI clears the feedback marker.
            pending_feedback = earlier["pending_feedback"]

        if isinstance(state_data, UnifiedFlowState):
            context_fields = data.pop("context", None) or {}
            data = {**data, **context_fields}

        messages = data.pop("messages", None)
        if isinstance(messages, list):
            incoming = [message_from_crewai(m) for m in messages]
            state.messages = reuse_unchanged(state.messages, incoming, _message_key)
            crewai_state["has_messages"] = True
        elif messages is not None:
            data["messages"] = messages  # not a message list: keep it as it is, below

        written = {k: v for k, v in data.items() if is_context_key(k)}
        reserved = {k: v for k, v in data.items() if not is_context_key(k)}
        if reserved:
            crewai_state["fields"] = reserved
        state.context = merge_context(state.context, written, _holder(state_data))
        if pending_feedback is not None:
            crewai_state["pending_feedback"] = pending_feedback
        state.framework_state[FRAMEWORK_KEY] = crewai_state
        await self._saver.asave_state(flow_uuid, state, framework="crewai")

    # -- loading ---------------------------------------------------------------------------

    def load_state(self, flow_uuid: str) -> dict[str, Any] | None:
        return self._run(self.aload_state(flow_uuid))

    async def aload_state(self, flow_uuid: str) -> dict[str, Any] | None:
        """The thread's latest state as a flow-state dict; None when the flow is unknown."""
        state = await self._saver.aload_state(flow_uuid)
        if state is None:
            return None
        return self._as_flow_state(flow_uuid, state)

    @staticmethod
    def _as_flow_state(flow_uuid: str, state: UnifiedWorkflowState) -> dict[str, Any]:
        crewai_state = state.framework_state.get(FRAMEWORK_KEY) or {}
        restored: dict[str, Any] = dict(state.context)
        restored.update(crewai_state.get("fields") or {})
        if state.messages or crewai_state.get("has_messages"):
            restored["messages"] = [message_to_crewai(m) for m in state.messages]
        restored["id"] = flow_uuid
        return restored

    # -- human feedback --------------------------------------------------------------------

    def save_pending_feedback(
        self,
        flow_uuid: str,
        context: PendingFeedbackContext,
        state_data: dict[str, Any] | BaseModel,
    ) -> None:
        self._run(
            self.asave_state(
                flow_uuid, context.method_name, state_data, pending_feedback=context.to_dict()
            )
        )

    def load_pending_feedback(
        self, flow_uuid: str
    ) -> tuple[dict[str, Any], PendingFeedbackContext] | None:
        from crewai.flow.async_feedback.types import PendingFeedbackContext

        state = self._run(self._saver.aload_state(flow_uuid))
        if state is None:
            return None
        pending = (state.framework_state.get(FRAMEWORK_KEY) or {}).get("pending_feedback")
        if not pending:
            return None
        return self._as_flow_state(flow_uuid, state), PendingFeedbackContext.from_dict(pending)

    def clear_pending_feedback(self, flow_uuid: str) -> None:
        self._run(self._aclear_pending_feedback(flow_uuid))

    async def _aclear_pending_feedback(self, flow_uuid: str) -> None:
        state = await self._saver.aload_state(flow_uuid)
        if state is None:
            return
        crewai_state = dict(state.framework_state.get(FRAMEWORK_KEY) or {})
        if crewai_state.pop("pending_feedback", None) is None:
            return
        state.framework_state[FRAMEWORK_KEY] = crewai_state
        await self._saver.asave_state(flow_uuid, state, framework="crewai")
