"""Helpers the framework adapters share; no framework is imported here.

Two ideas carry every adapter:

* A framework message that the unified schema cannot reproduce exactly keeps its own
  form under ``metadata[<framework>]["raw"]``, and that form is what the framework gets
  back, so nothing is dropped on a round trip through the unified schema.
* When a framework writes a whole conversation back, the messages it merely carried
  (read from the thread, unchanged) are replaced by the stored originals, so ids and
  metadata that the framework has no slot for survive the hop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import orjson

from ..messages import LANGCHAIN_KEY
from ..state import UnifiedMessage, UnifiedWorkflowState, WorkflowMetadata

RAW_KEY = "raw"


def framework_metadata(message: UnifiedMessage, framework: str) -> dict[str, Any]:
    """What ``framework`` stored on a message, wherever a LangGraph hop has moved it.

    LangChain keeps foreign metadata in ``additional_kwargs["unified_metadata"]``, and
    reading the message back leaves it nested under ``metadata["langchain"]``.
    """
    direct = message.metadata.get(framework)
    if isinstance(direct, dict):
        return direct
    langchain = message.metadata.get(LANGCHAIN_KEY)
    if isinstance(langchain, dict):
        kwargs = langchain.get("additional_kwargs")
        if isinstance(kwargs, dict):
            nested = kwargs.get("unified_metadata")
            if isinstance(nested, dict) and isinstance(nested.get(framework), dict):
                found: dict[str, Any] = nested[framework]
                return found
    return {}


def with_framework_metadata(
    message: UnifiedMessage, framework: str, values: dict[str, Any]
) -> UnifiedMessage:
    """A copy of ``message`` whose ``metadata[framework]`` is ``values`` (dropped if empty)."""
    metadata = dict(message.metadata)
    if values:
        metadata[framework] = values
    else:
        metadata.pop(framework, None)
    nested = _nested_unified_metadata(metadata)
    if nested is not None and framework in nested:
        # A LangGraph hop left a stale copy nested; the top-level entry is now the truth.
        langchain = dict(metadata[LANGCHAIN_KEY])
        kwargs = dict(langchain["additional_kwargs"])
        remaining = {k: v for k, v in nested.items() if k != framework}
        if remaining:
            kwargs["unified_metadata"] = remaining
        else:
            kwargs.pop("unified_metadata")
        if kwargs:
            langchain["additional_kwargs"] = kwargs
        else:
            langchain.pop("additional_kwargs")
        if langchain:
            metadata[LANGCHAIN_KEY] = langchain
        else:
            metadata.pop(LANGCHAIN_KEY)
    return message.model_copy(update={"metadata": metadata})


def _nested_unified_metadata(metadata: dict[str, Any]) -> dict[str, Any] | None:
    langchain = metadata.get(LANGCHAIN_KEY)
    if not isinstance(langchain, dict):
        return None
    kwargs = langchain.get("additional_kwargs")
    if not isinstance(kwargs, dict):
        return None
    nested = kwargs.get("unified_metadata")
    return nested if isinstance(nested, dict) else None


def canonical(value: Any) -> bytes:
    """A stable byte form of JSON data, for equality checks that ignore key order."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def is_json(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def parse_arguments(raw: Any) -> dict[str, Any] | None:
    """Tool-call arguments as a dict, or None when they are not a JSON object."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def dump_arguments(arguments: dict[str, Any]) -> str:
    """Tool-call arguments as the JSON string OpenAI-style APIs carry."""
    return json.dumps(arguments)


def text_of(content: str | list[Any]) -> str:
    """The text of a message's content (LangChain/OpenAI content blocks or plain strings)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "\n".join(parts)


def reuse_unchanged(
    previous: Sequence[UnifiedMessage],
    incoming: Sequence[UnifiedMessage],
    key: Callable[[UnifiedMessage], Hashable],
) -> list[UnifiedMessage]:
    """``incoming``, with each message that only mirrors a ``previous`` one swapped for it.

    ``key`` reduces a message to what the framework can express; equal keys mean the
    framework carried the message through unchanged. Matching walks forward, so
    messages the framework inserted or deleted do not shift the rest out of place.
    """
    previous_keys = [key(m) for m in previous]
    merged: list[UnifiedMessage] = []
    cursor = 0
    for message in incoming:
        wanted = key(message)
        found = next(
            (j for j in range(cursor, len(previous)) if previous_keys[j] == wanted), None
        )
        if found is None:
            merged.append(message)
            continue
        merged.append(previous[found])
        cursor = found + 1
    return merged


def new_state(workflow_id: str) -> UnifiedWorkflowState:
    return UnifiedWorkflowState(metadata=WorkflowMetadata(workflow_id=workflow_id))


def merge_context(
    previous: dict[str, Any], written: dict[str, Any], can_hold: Callable[[str], bool]
) -> dict[str, Any]:
    """The thread's next context after a framework wrote ``written``.

    A key the framework's state could have carried but no longer does was deleted on
    purpose; a key its state has no room for (a typed model without that field) was
    never seen by the framework and is kept.
    """
    kept = {k: v for k, v in previous.items() if k not in written and not can_hold(k)}
    return {**kept, **written}


def is_context_key(name: str) -> bool:
    """Whether a field name can be a unified context key (LangGraph reserves the rest)."""
    return name != "messages" and not (
        name.startswith("__") or name.startswith("branch:") or ":" in name
    )
