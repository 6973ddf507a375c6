"""CrewAI (1.15) unified memory on the shared memory store.

``UnifiedMemoryStorage`` implements CrewAI's ``StorageBackend`` protocol
(``crewai.memory.storage.backend``), the pluggable storage of ``crewai.Memory``; the
records it saves are memories in the shared layout of ``adapters.memory`` (framework
``"crewai"``) that AutoGen, LlamaIndex and LangGraph nodes recall, and its searches find
what they wrote. Build the memory with ``crewai_memory(store, namespace, llm=...)`` or
``Memory(storage=storage, embedder=storage.embedder, ...)``.

Mapping: a record's ``id`` is the key; ``content`` the text; ``metadata`` the metadata;
``source`` created_by; its scope path ``/a/b`` the namespace ``(*namespace, "a", "b")``
(so a scope is a namespace prefix); ``categories``, ``importance``, ``private``,
``created_at`` and ``last_accessed`` sit in ``value["crewai"]``. A memory another
framework wrote reads as a record with no categories and the default importance.

CrewAI hands the storage query *vectors*, while the store ranks by query *text* (its own
index, or word overlap without one). ``storage.embedder`` is the embedding function to give
``Memory``: it embeds with ``embedder=`` (a CrewAI embedding callable), else the store's
index, else ``hashed_embedding`` (offline), and remembers which text each query vector
came from, so a search is the store's search for that text. A vector it did not make is
ranked here, by cosine against the memories' texts embedded the same way.

CrewAI calls its storage synchronously, even from inside its own event loop (``arecall``),
so a blocking call made on a thread running a loop is handed to a worker thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from langgraph.store.base import BaseStore, PutOp

from ..errors import missing_extra
from .memory import Recalled, SharedMemory, hashed_embedding, memory_value

try:
    from crewai.memory.types import MemoryRecord, ScopeInfo
except ImportError as exc:  # pragma: no cover - exercised with the extra uninstalled
    raise missing_extra("crewai", "crewai") from exc

__all__ = ["FRAMEWORK_KEY", "UnifiedMemoryStorage", "crewai_memory"]

T = TypeVar("T")
FRAMEWORK_KEY: Final = "crewai"
DEFAULT_IMPORTANCE: Final = 0.5
_REMEMBERED_QUERIES: Final = 4096

Embedder = Callable[[Sequence[str]], Sequence[Sequence[float]]]


def _naive_utc(moment: datetime) -> datetime:
    """CrewAI keeps naive UTC datetimes (``datetime.utcnow()``)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _parse_time(raw: Any, default: datetime) -> datetime:
    if isinstance(raw, str):
        try:
            return _naive_utc(datetime.fromisoformat(raw))
        except ValueError:
            return default
    return default


def _vector_key(vector: Sequence[float]) -> tuple[float, ...]:
    return tuple(round(float(x), 9) for x in vector)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0


class UnifiedMemoryStorage:
    """CrewAI memory storage over ``namespace`` of a LangGraph store (the scope root)."""

    def __init__(
        self,
        store: BaseStore,
        namespace: tuple[str, ...],
        *,
        embedder: Embedder | None = None,
    ) -> None:
        self._shared = SharedMemory(store, namespace, framework=FRAMEWORK_KEY)
        self._inner = embedder
        self._queries: OrderedDict[tuple[float, ...], str] = OrderedDict()
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def shared(self) -> SharedMemory:
        return self._shared

    # -- embedding -------------------------------------------------------------------------

    def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self._inner is not None:
            vectors: Sequence[Sequence[float]] = self._inner(list(texts))
        else:
            embeddings = getattr(self._shared.store, "embeddings", None)
            if embeddings is not None:
                vectors = embeddings.embed_documents(list(texts))
            else:
                vectors = hashed_embedding()(texts)
        return [[float(x) for x in vector] for vector in vectors]

    def embedder(self, texts: Sequence[str]) -> list[list[float]]:
        """The embedding function to give CrewAI's ``Memory`` (see the module docstring)."""
        vectors = self._embed(texts)
        for text, vector in zip(texts, vectors, strict=True):
            key = _vector_key(vector)
            self._queries[key] = text
            self._queries.move_to_end(key)
        while len(self._queries) > _REMEMBERED_QUERIES:
            self._queries.popitem(last=False)
        return vectors

    # -- scopes <-> namespaces ---------------------------------------------------------------

    def _namespace(self, scope: str | None) -> tuple[str, ...]:
        parts = tuple(p for p in (scope or "/").split("/") if p)
        return (*self._shared.namespace, *parts)

    def _scope(self, namespace: Sequence[str]) -> str:
        return "/" + "/".join(namespace[len(self._shared.namespace) :])

    # -- records <-> memories ----------------------------------------------------------------

    def _record(self, memory: Recalled) -> MemoryRecord:
        own = memory.own(FRAMEWORK_KEY)
        created = _naive_utc(memory.created_at)
        categories = own.get("categories")
        importance = own.get("importance")
        return MemoryRecord(
            id=memory.key,
            content=memory.text,
            scope=self._scope(memory.namespace),
            categories=[str(c) for c in categories] if isinstance(categories, list) else [],
            metadata=memory.metadata,
            importance=float(importance) if isinstance(importance, (int, float)) else DEFAULT_IMPORTANCE,
            created_at=_parse_time(own.get("created_at"), created),
            last_accessed=_parse_time(own.get("last_accessed"), _naive_utc(memory.updated_at)),
            source=memory.created_by,
            private=bool(own.get("private", False)),
        )

    @staticmethod
    def _own(record: MemoryRecord) -> dict[str, Any]:
        return {
            "scope": record.scope,
            "categories": list(record.categories),
            "importance": record.importance,
            "private": record.private,
            "created_at": record.created_at.isoformat(),
            "last_accessed": record.last_accessed.isoformat(),
        }

    def _op(self, record: MemoryRecord, previous: Recalled | None = None) -> PutOp:
        namespace = self._namespace(record.scope)
        if previous is None or previous.framework == FRAMEWORK_KEY:
            value = memory_value(
                record.content,
                key=record.id,
                framework=FRAMEWORK_KEY,
                metadata=record.metadata,
                created_by=record.source,
                extra=self._own(record),
            )
        else:
            # Another framework's memory, edited by CrewAI: its writer and fields stay.
            value = dict(previous.value)
            value.update(
                memory_value(
                    record.content,
                    key=record.id,
                    framework=previous.framework,
                    kind=previous.kind,
                    metadata=record.metadata,
                    created_by=record.source,
                )
            )
            value[FRAMEWORK_KEY] = self._own(record)
        return PutOp(namespace, record.id, value, index=["text"])

    # -- running the blocking API from anywhere ----------------------------------------------

    def _blocking(self, call: Callable[[], T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return call()
        # CrewAI's async methods call the sync ones on their loop: the store refuses a
        # blocking call there, so a worker thread makes it while this one waits.
        if self._worker is None:
            self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="crewai-memory")
        return self._worker.submit(call).result()

    def _filtered(
        self,
        scope_prefix: str | None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> tuple[tuple[str, ...], Callable[[Recalled], bool]]:
        def keep(memory: Recalled) -> bool:
            if categories:
                own = memory.own(FRAMEWORK_KEY).get("categories") or []
                if not any(c in own for c in categories):
                    return False
            return not metadata_filter or all(
                memory.metadata.get(k) == v for k, v in metadata_filter.items()
            )

        return self._namespace(scope_prefix), keep

    # -- StorageBackend ----------------------------------------------------------------------

    def save(self, records: list[MemoryRecord]) -> None:
        self._blocking(lambda: self._shared.put_ops([self._op(r) for r in records]))

    def search(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        return self._blocking(
            lambda: self._search(query_embedding, scope_prefix, categories, metadata_filter, limit, min_score)
        )

    def _search(
        self,
        query_embedding: list[float],
        scope_prefix: str | None,
        categories: list[str] | None,
        metadata_filter: dict[str, Any] | None,
        limit: int,
        min_score: float,
    ) -> list[tuple[MemoryRecord, float]]:
        namespace, keep = self._filtered(scope_prefix, categories, metadata_filter)
        text = self._queries.get(_vector_key(query_embedding))
        if text is not None:
            # CrewAI filters private records itself (by source): give them all.
            found = self._shared.recall(text, limit=limit, namespace=namespace, where=keep, include_private=True)
            scored = [(m, max(0.0, min(1.0, m.score or 0.0))) for m in found]
        else:
            candidates = [m for m in self._shared.items(namespace) if keep(m)]
            vectors = self._embed([m.text for m in candidates]) if candidates else []
            if vectors and len(vectors[0]) != len(query_embedding):
                raise ValueError(
                    f"the query vector has {len(query_embedding)} values, this storage's "
                    f"embedding {len(vectors[0])}: build the Memory with "
                    "embedder=storage.embedder (or give the storage the Memory's embedder)"
                )
            pairs = [(m, max(0.0, _cosine(query_embedding, v))) for m, v in zip(candidates, vectors, strict=True)]
            scored = sorted(pairs, key=lambda pair: -pair[1])[:limit]
        return [(self._record(m), s) for m, s in scored if s >= min_score]

    def delete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        namespace, keep = self._filtered(scope_prefix, categories, metadata_filter)
        ids = set(record_ids) if record_ids is not None else None
        cutoff = _naive_utc(older_than) if older_than is not None else None

        def chosen(memory: Recalled) -> bool:
            if ids is not None and memory.key not in ids:
                return False
            if cutoff is not None and not self._record(memory).created_at < cutoff:
                return False
            return keep(memory)

        return self._blocking(lambda: self._shared.clear(namespace, where=chosen))

    def update(self, record: MemoryRecord) -> None:
        def run() -> None:
            previous = self._find(record.id)
            ops = [self._op(record, previous)]
            if previous is not None and previous.namespace != ops[0].namespace:
                ops.append(PutOp(previous.namespace, previous.key, None))  # moved to another scope
            self._shared.put_ops(ops)

        self._blocking(run)

    def _find(self, record_id: str) -> Recalled | None:
        for memory in self._shared.items():
            if memory.key == record_id:
                return memory
        return None

    def get_record(self, record_id: str) -> MemoryRecord | None:
        found = self._blocking(lambda: self._find(record_id))
        return None if found is None else self._record(found)

    def _records(self, scope_prefix: str | None) -> list[MemoryRecord]:
        memories = self._blocking(lambda: self._shared.items(self._namespace(scope_prefix)))
        return [self._record(m) for m in memories]

    def list_records(
        self, scope_prefix: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        """Newest ``created_at`` first."""
        records = sorted(self._records(scope_prefix), key=lambda r: r.created_at, reverse=True)
        return records[max(offset, 0) : max(offset, 0) + max(limit, 0)]

    def get_scope_info(self, scope: str) -> ScopeInfo:
        path = "/" + "/".join(p for p in scope.split("/") if p)
        records = self._records(path)
        times = [r.created_at for r in records]
        return ScopeInfo(
            path=path,
            record_count=len(records),
            categories=sorted({c for r in records for c in r.categories}),
            oldest_record=min(times) if times else None,
            newest_record=max(times) if times else None,
            child_scopes=self._children(path, records),
        )

    @staticmethod
    def _children(parent: str, records: Sequence[MemoryRecord]) -> list[str]:
        base = parent.rstrip("/")
        depth = len([p for p in base.split("/") if p])
        children = set()
        for record in records:
            parts = [p for p in record.scope.split("/") if p]
            if len(parts) > depth:
                children.add(base + "/" + parts[depth])
        return sorted(children)

    def list_scopes(self, parent: str = "/") -> list[str]:
        return self._children(parent, self._records(parent))

    def list_categories(self, scope_prefix: str | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self._records(scope_prefix):
            for category in record.categories:
                counts[category] = counts.get(category, 0) + 1
        return counts

    def count(self, scope_prefix: str | None = None) -> int:
        return len(self._blocking(lambda: self._shared.items(self._namespace(scope_prefix))))

    def reset(self, scope_prefix: str | None = None) -> None:
        """Delete every memory of the scope and the scopes under it (None: the whole
        storage namespace), whichever framework wrote it."""
        self._blocking(lambda: self._shared.clear(self._namespace(scope_prefix)))

    async def asave(self, records: list[MemoryRecord]) -> None:
        await asyncio.to_thread(self.save, records)

    async def asearch(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        return await asyncio.to_thread(
            self.search, query_embedding, scope_prefix, categories, metadata_filter, limit, min_score
        )

    async def adelete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        return await asyncio.to_thread(
            self.delete, scope_prefix, categories, record_ids, older_than, metadata_filter
        )

    def close(self) -> None:
        """Stop the worker thread (the store is the caller's, who closes it)."""
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None


def crewai_memory(
    store: BaseStore,
    namespace: tuple[str, ...],
    *,
    embedder: Embedder | None = None,
    **memory_options: Any,
) -> Any:
    """A CrewAI ``Memory`` on ``namespace`` of ``store`` (``memory_options``: ``llm=``,
    ``root_scope=``, weights, ...), embedding with the storage's ``embedder``."""
    from crewai.memory.unified_memory import Memory

    storage = UnifiedMemoryStorage(store, namespace, embedder=embedder)
    return Memory(storage=storage, embedder=storage.embedder, **memory_options)
