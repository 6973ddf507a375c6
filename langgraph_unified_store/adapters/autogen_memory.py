"""AutoGen (autogen-core 0.7) long-term memory on the shared memory store.

``UnifiedAutoGenMemory`` is an ``autogen_core.memory.Memory``: give it to an agent
(``AssistantAgent(..., memory=[...])``) and what it ``add``s is stored in the shared
layout of ``adapters.memory`` (framework ``"autogen"``), where LlamaIndex, CrewAI and
LangGraph nodes recall it; ``query`` and ``update_context`` recall what any of them wrote.

Content: text (``text/plain``, ``text/markdown``) is the memory's text; a JSON dict is
stored as is under ``value["autogen"]["content"]``, its text being the sorted JSON. Bytes
and images have no text another framework could read and are refused, as AutoGen's
ChromaDB memory refuses them. The mime type is kept in ``value["autogen"]["mime_type"]``.
Query results carry the writer's metadata plus ``metadata["unified_memory"]``: framework,
kind, created_by, key, namespace and score (dropped again if the content is re-added).
"""

from __future__ import annotations

import json
from typing import Any, Final

from ..errors import missing_extra
from .memory import Recalled, SharedMemory

try:
    from autogen_core import CancellationToken, Image
    from autogen_core.memory import (
        Memory,
        MemoryContent,
        MemoryMimeType,
        MemoryQueryResult,
        UpdateContextResult,
    )
    from autogen_core.model_context import ChatCompletionContext
    from autogen_core.models import SystemMessage
except ImportError as exc:  # pragma: no cover - exercised with the extra uninstalled
    raise missing_extra("autogen", "autogen-core") from exc

from langgraph.store.base import BaseStore

__all__ = ["FRAMEWORK_KEY", "PROVENANCE_KEY", "UnifiedAutoGenMemory"]

FRAMEWORK_KEY: Final = "autogen"
PROVENANCE_KEY: Final = "unified_memory"
"""Where query results say which framework wrote a memory (and its key and score)."""
_TEXT_TYPES: Final = (MemoryMimeType.TEXT.value, MemoryMimeType.MARKDOWN.value)


def _mime(content: MemoryContent) -> str:
    kind = content.mime_type
    return kind.value if isinstance(kind, MemoryMimeType) else str(kind)


def _text_and_extra(content: MemoryContent) -> tuple[str, dict[str, Any]]:
    mime = _mime(content)
    body = content.content
    if isinstance(body, str):
        return body, {"mime_type": mime}
    if isinstance(body, dict):
        try:
            text = json.dumps(body, sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"JSON memory content must be JSON data: {exc}") from exc
        return text, {"mime_type": mime, "content": body}
    kind = "an image" if isinstance(body, Image) else type(body).__name__
    raise ValueError(
        f"memory content is {kind}: the shared memory holds text every framework can read "
        "(str, or a dict for application/json)"
    )


def _query_text(query: str | MemoryContent) -> str:
    if isinstance(query, str):
        return query
    return _text_and_extra(query)[0]


def memory_content(memory: Recalled) -> MemoryContent:
    """A recalled memory, whoever wrote it, as AutoGen memory content."""
    own = memory.own(FRAMEWORK_KEY) if memory.framework == FRAMEWORK_KEY else {}
    body: str | dict[str, Any] = own["content"] if isinstance(own.get("content"), dict) else memory.text
    mime = own.get("mime_type")
    if not isinstance(mime, str):
        mime = MemoryMimeType.JSON.value if isinstance(body, dict) else MemoryMimeType.TEXT.value
    metadata = dict(memory.metadata)
    metadata[PROVENANCE_KEY] = {
        "framework": memory.framework,
        "kind": memory.kind,
        "created_by": memory.created_by,
        "key": memory.key,
        "namespace": list(memory.namespace),
        "score": memory.score,
    }
    return MemoryContent(content=body, mime_type=mime, metadata=metadata)


class UnifiedAutoGenMemory(Memory):
    """An AutoGen memory over one scope of the shared memory store.

    ``k``: how many memories ``query`` and ``update_context`` return; ``score_threshold``:
    the least score they keep (semantic score with an index, word overlap without).
    """

    component_type = "memory"

    def __init__(
        self,
        store: BaseStore,
        namespace: tuple[str, ...],
        *,
        name: str | None = None,
        created_by: str | None = None,
        k: int = 5,
        score_threshold: float = 0.0,
    ) -> None:
        self._shared = SharedMemory(store, namespace, framework=FRAMEWORK_KEY, created_by=created_by)
        self._name = name or "unified_memory"
        self.k = k
        self.score_threshold = score_threshold

    @property
    def name(self) -> str:
        return self._name

    @property
    def shared(self) -> SharedMemory:
        return self._shared

    async def add(self, content: MemoryContent, cancellation_token: CancellationToken | None = None) -> None:
        text, extra = _text_and_extra(content)
        metadata = {k: v for k, v in (content.metadata or {}).items() if k != PROVENANCE_KEY}
        await self._shared.aadd(text, metadata=metadata, extra=extra)

    async def query(
        self,
        query: str | MemoryContent = "",
        cancellation_token: CancellationToken | None = None,
        **kwargs: Any,
    ) -> MemoryQueryResult:
        """The memories most relevant to ``query`` (``k=`` overrides how many); an
        empty query gives the newest."""
        limit = int(kwargs.get("k", self.k))
        found = await self._shared.arecall(
            _query_text(query) or None, limit=limit, min_score=self.score_threshold
        )
        return MemoryQueryResult(results=[memory_content(m) for m in found])

    async def update_context(self, model_context: ChatCompletionContext) -> UpdateContextResult:
        """Add the memories relevant to the context's last message as one SystemMessage
        (as AutoGen's ListMemory and ChromaDB memory do)."""
        messages = await model_context.get_messages()
        query = ""
        if messages:
            last = messages[-1].content
            query = last if isinstance(last, str) else str(last)
        result = await self.query(query)
        if result.results:
            lines = [f"{i}. {item.content!s}" for i, item in enumerate(result.results, 1)]
            await model_context.add_message(
                SystemMessage(content="\nRelevant memory content:\n" + "\n".join(lines) + "\n")
            )
        return UpdateContextResult(memories=result)

    async def clear(self) -> None:
        """Delete every memory of this scope (whichever framework wrote it); other
        scopes are untouched."""
        await self._shared.aclear()

    async def close(self) -> None:
        """Nothing to release: the store is the caller's, who closes it."""
