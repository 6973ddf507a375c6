"""LlamaIndex (llama-index-core 0.14) long-term memory on the shared memory store.

``UnifiedMemoryBlock`` is a ``BaseMemoryBlock[str]`` for
``Memory.from_defaults(memory_blocks=[UnifiedMemoryBlock(store=..., namespace=...)])``:

* ``aget`` (``_aget``) recalls the memories of its scope most relevant to the recent
  messages, whichever framework wrote them, as text (one ``- memory`` line each);
* ``aput`` (``_aput``), which ``Memory`` calls with the messages it flushes from its
  short-term queue (and an application may call itself), stores each message with text
  as a memory in the shared layout of ``adapters.memory``: framework ``"llamaindex"``,
  kind ``"message"``, metadata = the message's JSON ``additional_kwargs``, created_by =
  the Memory's session id, ``value["llamaindex"]["role"]`` = its role.
"""

from __future__ import annotations

from typing import Any, Final

from langgraph.store.base import BaseStore
from pydantic import Field, PrivateAttr

from ..errors import missing_extra
from ._common import is_json
from .memory import SharedMemory

try:
    from llama_index.core.base.llms.types import ChatMessage, TextBlock
    from llama_index.core.memory.memory import BaseMemoryBlock
except ImportError as exc:  # pragma: no cover - exercised with the extra uninstalled
    raise missing_extra("llamaindex", "llama-index-core") from exc

__all__ = ["FRAMEWORK_KEY", "UnifiedMemoryBlock"]

FRAMEWORK_KEY: Final = "llamaindex"
_SESSION_KEY: Final = "session_id"


def _text(messages: list[ChatMessage]) -> str:
    parts = [b.text for m in messages for b in m.blocks if isinstance(b, TextBlock) and b.text]
    return " ".join(parts)


class UnifiedMemoryBlock(BaseMemoryBlock[str]):
    """A LlamaIndex memory block over one scope of the shared memory store."""

    name: str = Field(default="UnifiedMemory", description="The name of the memory block.")
    store: Any = Field(exclude=True, description="The LangGraph BaseStore holding the memories.")
    namespace: tuple[str, ...] = Field(description="The scope: memory_namespace(...).")
    similarity_top_k: int = Field(default=5, description="How many memories aget returns.")
    retrieval_context_window: int = Field(
        default=3, description="How many of the latest messages make the recall query."
    )
    min_score: float = Field(default=0.0, description="The least score a recalled memory needs.")
    created_by: str | None = Field(default=None, description="Who writes, when no session id.")

    _shared: SharedMemory = PrivateAttr()

    def model_post_init(self, __context: Any) -> None:
        if not isinstance(self.store, BaseStore):
            raise TypeError(f"store must be a LangGraph BaseStore, not {type(self.store).__name__}")
        self._shared = SharedMemory(
            self.store, self.namespace, framework=FRAMEWORK_KEY, created_by=self.created_by
        )

    @property
    def shared(self) -> SharedMemory:
        return self._shared

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        recent = list(messages or [])[-max(self.retrieval_context_window, 1) :]
        query = _text(recent)
        found = await self._shared.arecall(
            query or None, limit=self.similarity_top_k, min_score=self.min_score
        )
        return "\n".join(f"- {m.text}" for m in found)

    async def _aput(self, messages: list[ChatMessage]) -> None:
        ops = []
        for message in messages:
            text = _text([message])
            if not text:
                continue
            kwargs = dict(message.additional_kwargs)
            session = kwargs.pop(_SESSION_KEY, None)
            metadata = {k: v for k, v in kwargs.items() if is_json(v)}
            ops.append(
                self._shared.put_op(
                    text,
                    kind="message",
                    metadata=metadata,
                    created_by=session if isinstance(session, str) else None,
                    extra={"role": message.role.value},
                )
            )
        await self._shared.aput_ops(ops)

    async def aclear(self) -> int:
        """Delete every memory of this scope (whichever framework wrote it)."""
        return await self._shared.aclear()
