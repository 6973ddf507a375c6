"""One long-term memory, shared by every framework: the layout and the recall they share.

The memory is any LangGraph ``BaseStore`` (our ``UnifiedStore`` on memory, SQLite,
PostgreSQL or Redis, or LangGraph's own), used only through its public API (``put``,
``get``, ``search``, ``delete`` and their async twins), so a LangGraph node reaches the
same memories through ``get_store()`` that AutoGen (``adapters.autogen_memory``),
LlamaIndex (``adapters.llamaindex_memory``) and CrewAI (``adapters.crewai_memory``) see
through their own memory interfaces. No framework is imported here.

Layout (one for all frameworks):

* namespace ``("memories", <scope>, ...)``: ``memory_namespace("user-42")``; a CrewAI
  scope path ``/a/b`` under it is ``("memories", "user-42", "a", "b")``;
* key: the memory's id (a new uuid4 hex, or the CrewAI record id);
* value::

    {"id": <key>,
     "text": "The user is vegetarian.",     # what every framework recalls (and indexes)
     "framework": "autogen",                # who wrote it: autogen, llamaindex, crewai, langgraph
     "kind": "fact",                        # "fact", or "message" (a chat message kept)
     "metadata": {...},                     # the writer's metadata (JSON), given back as is
     "created_by": "planner" | None,        # agent, session or source that wrote it
     "<framework>": {...}}                  # what only the writer has a slot for (optional)

Recall: with an index on the store (``index={"dims": ..., "embed": ..., "fields":
["text"]}``) the store's semantic search ranks the memories; without one the adapter
reads the scope and ranks by word overlap with the query (cosine of word sets), so
recall works on every store. Memories a CrewAI writer marked private
(``value["crewai"]["private"]``) are left out of every other framework's recall.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from langgraph.store.base import BaseStore, Item, PutOp, SearchItem
from pydantic_core import to_jsonable_python

from ..errors import SerializationError
from ._common import is_json

__all__ = [
    "FRAMEWORKS",
    "MEMORY_ROOT",
    "Recalled",
    "SharedMemory",
    "hashed_embedding",
    "memory_namespace",
    "memory_value",
    "recalled_from",
    "text_score",
]

MEMORY_ROOT: Final = "memories"
FRAMEWORKS: Final = ("autogen", "llamaindex", "crewai", "langgraph")
INDEXED_FIELDS: Final = ["text"]
"""What a put asks an indexed store to embed: the text, not the whole value."""
PAGE: Final = 500
"""Items read per search call when the adapter scans a scope."""

_WORD = re.compile(r"\w+")


def memory_namespace(scope: str, *more: str) -> tuple[str, ...]:
    """The namespace of one memory scope (a user, a team, a project)."""
    return (MEMORY_ROOT, scope, *more)


def _json(value: Any, what: str) -> Any:
    plain = to_jsonable_python(value)
    if not is_json(plain):
        raise SerializationError(f"memory {what} must be JSON data, not {type(value).__name__}")
    return plain


def memory_value(
    text: str,
    *,
    key: str,
    framework: str,
    kind: str = "fact",
    metadata: Mapping[str, Any] | None = None,
    created_by: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A memory in the shared layout (``extra``: what only ``framework`` reads)."""
    if not isinstance(text, str):
        raise SerializationError(f"a memory's text must be a string, not {type(text).__name__}")
    value: dict[str, Any] = {
        "id": key,
        "text": text,
        "framework": framework,
        "kind": kind,
        "metadata": _json(dict(metadata or {}), "metadata"),
        "created_by": created_by,
    }
    if extra:
        value[framework] = _json(dict(extra), f"{framework} fields")
    return value


@dataclass(frozen=True)
class Recalled:
    """One memory as read back, whichever framework wrote it."""

    namespace: tuple[str, ...]
    key: str
    text: str
    framework: str
    kind: str
    metadata: dict[str, Any]
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    score: float | None = None
    value: dict[str, Any] = field(default_factory=dict, repr=False)

    def own(self, framework: str) -> dict[str, Any]:
        """What ``framework`` kept on this memory that the shared fields have no slot for."""
        found = self.value.get(framework)
        return dict(found) if isinstance(found, dict) else {}

    @property
    def private(self) -> bool:
        return bool(self.own("crewai").get("private"))


def recalled_from(item: Item, score: float | None = None) -> Recalled:
    """A stored item as a memory; an item some other code wrote (no ``text``) reads as
    its whole value."""
    value = dict(item.value)
    text = value.get("text")
    metadata = value.get("metadata")
    created_by = value.get("created_by")
    return Recalled(
        namespace=tuple(item.namespace),
        key=item.key,
        text=text if isinstance(text, str) else str(value),
        framework=str(value.get("framework") or "unknown"),
        kind=str(value.get("kind") or "fact"),
        metadata=dict(metadata) if isinstance(metadata, dict) else {},
        created_by=created_by if isinstance(created_by, str) else None,
        created_at=item.created_at,
        updated_at=item.updated_at,
        score=score if score is not None else getattr(item, "score", None),
        value=value,
    )


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def text_score(query: str, text: str) -> float:
    """Word overlap of a query and a text, 0..1 (cosine of their word sets): the ranking
    recall uses when the store has no index."""
    asked, found = _words(query), _words(text)
    if not asked or not found:
        return 0.0
    return len(asked & found) / math.sqrt(len(asked) * len(found))


def hashed_embedding(dims: int = 64) -> Callable[[Sequence[str]], list[list[float]]]:
    """A deterministic, offline embedding (hashed bag of words, unit length), for demos
    and tests: texts sharing words are close. Not a language model."""

    def embed(texts: Sequence[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            vector = [0.0] * dims
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                vector[int.from_bytes(digest[:4], "big") % dims] += 1.0 if digest[4] & 1 else -1.0
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            vectors.append([x / norm for x in vector])
        return vectors

    return embed


Where = Callable[[Recalled], bool]


class SharedMemory:
    """One scope of the shared memory, as a framework writes and recalls it.

    ``namespace`` is the scope (``memory_namespace(...)``); recall covers it and every
    namespace under it. ``framework`` and ``created_by`` tag what this memory writes.
    """

    def __init__(
        self,
        store: BaseStore,
        namespace: tuple[str, ...],
        *,
        framework: str,
        created_by: str | None = None,
    ) -> None:
        if not isinstance(namespace, tuple) or not namespace:
            raise ValueError(f"namespace must be a non-empty tuple of strings, not {namespace!r}")
        self.store = store
        self.namespace = namespace
        self.framework = framework
        self.created_by = created_by

    @property
    def indexed(self) -> bool:
        """Whether the store ranks searches by meaning (it has an embedding index)."""
        return bool(getattr(self.store, "index_config", None))

    # -- writing ---------------------------------------------------------------------------

    def _op(
        self,
        text: str,
        *,
        kind: str,
        metadata: Mapping[str, Any] | None,
        created_by: str | None,
        extra: Mapping[str, Any] | None,
        key: str | None,
        namespace: tuple[str, ...] | None,
    ) -> PutOp:
        key = key or uuid.uuid4().hex
        value = memory_value(
            text,
            key=key,
            framework=self.framework,
            kind=kind,
            metadata=metadata,
            created_by=created_by if created_by is not None else self.created_by,
            extra=extra,
        )
        return PutOp(namespace or self.namespace, key, value, index=list(INDEXED_FIELDS))

    async def aadd(
        self,
        text: str,
        *,
        kind: str = "fact",
        metadata: Mapping[str, Any] | None = None,
        created_by: str | None = None,
        extra: Mapping[str, Any] | None = None,
        key: str | None = None,
        namespace: tuple[str, ...] | None = None,
    ) -> str:
        """Store one memory; its key."""
        op = self._op(
            text, kind=kind, metadata=metadata, created_by=created_by, extra=extra, key=key,
            namespace=namespace,
        )
        await self.store.abatch([op])
        return op.key

    def add(
        self,
        text: str,
        *,
        kind: str = "fact",
        metadata: Mapping[str, Any] | None = None,
        created_by: str | None = None,
        extra: Mapping[str, Any] | None = None,
        key: str | None = None,
        namespace: tuple[str, ...] | None = None,
    ) -> str:
        op = self._op(
            text, kind=kind, metadata=metadata, created_by=created_by, extra=extra, key=key,
            namespace=namespace,
        )
        self.store.batch([op])
        return op.key

    async def aput_ops(self, ops: Sequence[PutOp]) -> None:
        """Several writes (or deletes: ``value=None``) in one batch."""
        if ops:
            await self.store.abatch(list(ops))

    def put_ops(self, ops: Sequence[PutOp]) -> None:
        if ops:
            self.store.batch(list(ops))

    def put_op(
        self,
        text: str,
        *,
        kind: str = "fact",
        metadata: Mapping[str, Any] | None = None,
        created_by: str | None = None,
        extra: Mapping[str, Any] | None = None,
        key: str | None = None,
        namespace: tuple[str, ...] | None = None,
    ) -> PutOp:
        """The write ``add`` would do, for a batch of several (``aput_ops``)."""
        return self._op(
            text, kind=kind, metadata=metadata, created_by=created_by, extra=extra, key=key,
            namespace=namespace,
        )

    # -- reading ---------------------------------------------------------------------------

    async def aitems(self, namespace: tuple[str, ...] | None = None) -> list[Recalled]:
        """Every memory of the scope (and the scopes under it), newest first."""
        prefix = namespace or self.namespace
        found: list[Recalled] = []
        while True:
            page = await self.store.asearch(prefix, limit=PAGE, offset=len(found))
            found.extend(recalled_from(item) for item in page)
            if len(page) < PAGE:
                return found

    def items(self, namespace: tuple[str, ...] | None = None) -> list[Recalled]:
        prefix = namespace or self.namespace
        found: list[Recalled] = []
        while True:
            page = self.store.search(prefix, limit=PAGE, offset=len(found))
            found.extend(recalled_from(item) for item in page)
            if len(page) < PAGE:
                return found

    async def aget(self, key: str, namespace: tuple[str, ...] | None = None) -> Recalled | None:
        item = await self.store.aget(namespace or self.namespace, key)
        return None if item is None else recalled_from(item)

    def get(self, key: str, namespace: tuple[str, ...] | None = None) -> Recalled | None:
        item = self.store.get(namespace or self.namespace, key)
        return None if item is None else recalled_from(item)

    async def arecall(
        self,
        query: str | None = None,
        *,
        limit: int = 10,
        namespace: tuple[str, ...] | None = None,
        where: Where | None = None,
        include_private: bool = False,
        min_score: float = 0.0,
    ) -> list[Recalled]:
        """The memories most relevant to ``query``, best first (without a query: the
        newest). ``where`` keeps only the memories it accepts."""
        prefix = namespace or self.namespace
        keep = self._keeper(where, include_private)
        if query and self.indexed:
            wanted = limit * 4 + 20  # room for what ``where`` drops
            while True:
                page = await self.store.asearch(prefix, query=query, limit=wanted)
                chosen = self._chosen_ranked(page, keep, limit, min_score)
                if len(chosen) >= limit or len(page) < wanted:
                    return chosen
                wanted *= 4
        return self._chosen_scanned(await self.aitems(prefix), query, keep, limit, min_score)

    def recall(
        self,
        query: str | None = None,
        *,
        limit: int = 10,
        namespace: tuple[str, ...] | None = None,
        where: Where | None = None,
        include_private: bool = False,
        min_score: float = 0.0,
    ) -> list[Recalled]:
        prefix = namespace or self.namespace
        keep = self._keeper(where, include_private)
        if query and self.indexed:
            wanted = limit * 4 + 20
            while True:
                page = self.store.search(prefix, query=query, limit=wanted)
                chosen = self._chosen_ranked(page, keep, limit, min_score)
                if len(chosen) >= limit or len(page) < wanted:
                    return chosen
                wanted *= 4
        return self._chosen_scanned(self.items(prefix), query, keep, limit, min_score)

    @staticmethod
    def _keeper(where: Where | None, include_private: bool) -> Where:
        def keep(memory: Recalled) -> bool:
            if memory.private and not include_private:
                return False
            return where is None or where(memory)

        return keep

    @staticmethod
    def _chosen_ranked(
        page: Sequence[SearchItem], keep: Where, limit: int, min_score: float
    ) -> list[Recalled]:
        chosen = []
        for item in page:
            memory = recalled_from(item)
            if keep(memory) and (memory.score is None or memory.score >= min_score):
                chosen.append(memory)
        return chosen[:limit]

    @staticmethod
    def _chosen_scanned(
        memories: Sequence[Recalled], query: str | None, keep: Where, limit: int, min_score: float
    ) -> list[Recalled]:
        kept = [m for m in memories if keep(m)]
        if not query:
            return kept[:limit]
        scored = [(text_score(query, m.text), m) for m in kept]
        ranked = sorted(
            ((s, m) for s, m in scored if s > 0 and s >= min_score),
            key=lambda pair: -pair[0],  # stable: the newest first among equal scores
        )
        return [dataclasses.replace(m, score=s) for s, m in ranked[:limit]]

    # -- deleting --------------------------------------------------------------------------

    async def adelete(self, memories: Sequence[Recalled]) -> int:
        await self.aput_ops([PutOp(m.namespace, m.key, None) for m in memories])
        return len(memories)

    def delete(self, memories: Sequence[Recalled]) -> int:
        self.put_ops([PutOp(m.namespace, m.key, None) for m in memories])
        return len(memories)

    async def aclear(self, namespace: tuple[str, ...] | None = None, where: Where | None = None) -> int:
        """Delete every memory of the scope (and the scopes under it) that ``where``
        accepts, whichever framework wrote it; other scopes are untouched. How many went."""
        found = await self.aitems(namespace)
        return await self.adelete([m for m in found if where is None or where(m)])

    def clear(self, namespace: tuple[str, ...] | None = None, where: Where | None = None) -> int:
        found = self.items(namespace)
        return self.delete([m for m in found if where is None or where(m)])

