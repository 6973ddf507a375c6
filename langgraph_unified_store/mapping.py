"""LangGraph checkpoint <-> UnifiedWorkflowState.

A LangGraph state is ``{"messages": [...], **context}``: the ``messages`` channel
maps to unified messages and every other JSON-valued state channel to a context key.
Framework-specific data rides in a private channel, ``__unified__``, that no graph
declares. LangGraph copies a checkpoint's ``channel_versions`` forward, and blobs are
stored per (channel, version), so that channel (and any context key the graph does
not declare) still reads back after the graph has run more steps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, get_args

import orjson
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.base import Checkpoint, CheckpointTuple
from langgraph.checkpoint.base.id import uuid6

from .errors import CorruptDataError, InvalidConfigError, UnifiedStoreError
from .messages import langchain_messages, unified_messages
from .state import Framework, UnifiedWorkflowState, WorkflowMetadata

MESSAGES_CHANNEL = "messages"
UNIFIED_CHANNEL = "__unified__"
FRAMEWORK_METADATA_KEY = "unified_framework"
CHECKPOINT_FORMAT_VERSION = 4


def _is_state_channel(name: str) -> bool:
    # LangGraph's own bookkeeping channels: __start__, __pregel_*, branch:to:node, ...
    return not (name.startswith("__") or name.startswith("branch:") or ":" in name)


def _is_json(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def _parse_ts(ts: str | None) -> datetime:
    if not ts:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(ts)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _context_of(values: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in values.items()
        if name != MESSAGES_CHANNEL and _is_state_channel(name) and _is_json(value)
    }


def state_from_checkpoint(tup: CheckpointTuple) -> UnifiedWorkflowState:
    """Read one checkpoint as unified state; stored data of the wrong shape (messages
    that are not messages, a ``__unified__`` channel that is not ours) is a
    CorruptDataError naming the thread and checkpoint."""
    try:
        return _state_from_checkpoint(tup)
    except UnifiedStoreError:
        raise
    except Exception as exc:
        configurable = tup.config.get("configurable", {})
        raise CorruptDataError(
            f"thread {configurable.get('thread_id')!r}, namespace "
            f"{configurable.get('checkpoint_ns', '')!r}, checkpoint "
            f"{configurable.get('checkpoint_id')!r}: stored state cannot be read as unified "
            f"state ({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc


def _state_from_checkpoint(tup: CheckpointTuple) -> UnifiedWorkflowState:
    values = tup.checkpoint["channel_values"]
    unified = values.get(UNIFIED_CHANNEL) or {}
    if not isinstance(unified, dict):
        raise TypeError(f"channel {UNIFIED_CHANNEL!r} holds a {type(unified).__name__}, not a dict")
    raw_messages = values.get(MESSAGES_CHANNEL) or []
    metadata: dict[str, Any] = dict(tup.metadata or {})
    framework: Framework = metadata.get(FRAMEWORK_METADATA_KEY) or "langgraph"
    if framework not in get_args(Framework):
        framework = "unified"
    parent = tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None
    ts = _parse_ts(tup.checkpoint.get("ts"))
    created = unified.get("created_at")
    return UnifiedWorkflowState(
        messages=unified_messages(_messages_of(raw_messages)),
        context=_context_of(values),
        metadata=WorkflowMetadata(
            workflow_id=tup.config["configurable"]["thread_id"],
            framework=framework,
            step=int(metadata.get("step", 0) or 0),
            created_at=_parse_ts(created) if created else ts,
            updated_at=ts,
            checkpoint_id=tup.checkpoint["id"],
            parent_checkpoint_id=parent,
        ),
        framework_state=dict(unified.get("framework_state") or {}),
    )


def _messages_of(raw: Any) -> list[Any]:
    """The stored messages channel as a list of messages (LangChain or their dict form)."""
    if not isinstance(raw, list):
        raise TypeError(f"channel {MESSAGES_CHANNEL!r} holds a {type(raw).__name__}, not a list")
    for index, message in enumerate(raw):
        if not isinstance(message, (BaseMessage, dict)):
            raise TypeError(
                f"channel {MESSAGES_CHANNEL!r}[{index}] is a {type(message).__name__}, not a message"
            )
    return raw


def checkpoint_from_state(
    state: UnifiedWorkflowState,
    parent: CheckpointTuple | None,
    framework: Framework,
    next_version: Callable[[Any, None], str],
) -> tuple[Checkpoint, dict[str, Any], dict[str, str]]:
    """A new checkpoint that carries ``state`` on top of ``parent`` (the thread's latest).

    Channels the state does not describe (non-JSON values, LangGraph bookkeeping) are
    kept from the parent untouched; only channels whose value changed get a new version.
    """
    for key in state.context:
        if key == MESSAGES_CHANNEL or not _is_state_channel(key):
            raise InvalidConfigError(
                f"save_state: context key {key!r} is reserved (messages, '__*', 'branch:*' "
                "and names with ':' belong to LangGraph)"
            )
    previous = parent.checkpoint if parent is not None else None
    values: dict[str, Any] = dict(previous["channel_values"]) if previous else {}
    versions: dict[str, Any] = dict(previous["channel_versions"]) if previous else {}
    updated: dict[str, Any] = {}

    def assign(channel: str, value: Any) -> None:
        if channel in values and values[channel] == value:
            return
        updated[channel] = value
        values[channel] = value
        versions[channel] = next_version(versions.get(channel), None)

    assign(MESSAGES_CHANNEL, langchain_messages(state.messages))
    for name in set(_context_of(values)) - set(state.context):
        values.pop(name, None)
        versions.pop(name, None)
    for name, value in state.context.items():
        assign(name, value)
    previous_unified = values.get(UNIFIED_CHANNEL) or {}
    assign(
        UNIFIED_CHANNEL,
        {
            "framework_state": state.framework_state,
            "created_at": previous_unified.get("created_at")
            or state.metadata.created_at.isoformat(),
        },
    )
    step = int((parent.metadata or {}).get("step", -1)) + 1 if parent is not None else 0
    checkpoint: Checkpoint = {
        "v": previous["v"] if previous else CHECKPOINT_FORMAT_VERSION,
        "id": str(uuid6(clock_seq=step)),
        "ts": datetime.now(UTC).isoformat(),
        "channel_values": values,
        "channel_versions": versions,
        "versions_seen": {k: dict(v) for k, v in previous["versions_seen"].items()}
        if previous
        else {},
        "updated_channels": sorted(updated),
    }
    metadata: dict[str, Any] = {
        "source": "update",
        "step": step,
        "parents": {},
        FRAMEWORK_METADATA_KEY: framework,
    }
    new_versions = {channel: versions[channel] for channel in updated}
    return checkpoint, metadata, new_versions
