"""UnifiedWorkflowState: the framework-neutral shape every stored checkpoint maps onto."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1

Role = Literal["system", "user", "assistant", "tool"]
Framework = Literal["langgraph", "crewai", "autogen", "llamaindex", "unified"]


def _now() -> datetime:
    return datetime.now(UTC)


class ToolCall(BaseModel):
    """One tool call requested by an assistant message."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class UnifiedMessage(BaseModel):
    """A chat message every framework can express."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str | list[Any] = ""
    name: str | None = None
    id: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class WorkflowMetadata(BaseModel):
    """Where a state came from; filled in by the saver on load."""

    model_config = ConfigDict(extra="forbid")

    workflow_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    framework: Framework = "unified"
    step: int = 0
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    checkpoint_id: str | None = None
    parent_checkpoint_id: str | None = None

    @field_validator("created_at", "updated_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # Naive datetimes are ambiguous across machines; treat them as UTC.
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class UnifiedWorkflowState(BaseModel):
    """Messages, context and metadata of one workflow, independent of any framework.

    ``framework_state`` keeps per-framework data that has no neutral form (an
    AutoGen team's internals, say); it is carried across hops untouched.
    """

    model_config = ConfigDict(extra="forbid")

    messages: list[UnifiedMessage] = Field(default_factory=list)
    context: dict[str, Any] = Field(default_factory=dict)
    metadata: WorkflowMetadata = Field(default_factory=WorkflowMetadata)
    framework_state: dict[str, Any] = Field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def add_message(self, role: Role, content: str | list[Any], **fields: Any) -> UnifiedMessage:
        """Append a message and return it."""
        message = UnifiedMessage(role=role, content=content, **fields)
        self.messages.append(message)
        self.metadata.updated_at = _now()
        return message

    def update_context(self, **values: Any) -> None:
        """Set context keys; values must be JSON data."""
        for key, value in values.items():
            try:
                orjson.dumps(value)
            except TypeError as exc:
                raise TypeError(f"context[{key!r}] is not JSON data: {exc}") from None
            self.context[key] = value
        self.metadata.updated_at = _now()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict (datetimes as ISO strings)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnifiedWorkflowState:
        return cls.model_validate(data)

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict()).decode()

    @classmethod
    def from_json(cls, data: str | bytes) -> UnifiedWorkflowState:
        return cls.model_validate(orjson.loads(data))
