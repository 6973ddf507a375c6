"""The one node cache: LangGraph's ``BaseCache`` over any ``CacheBackend``
(``graph.compile(cache=...)`` with a node's ``CachePolicy``).

Values go through the serde (``SafeSerializer`` unless one is given), so reading a cached
value is as safe as reading a checkpoint. Sync and async share the async logic, as the
savers do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeVar

import orjson
from langgraph.cache.base import BaseCache, FullKey, Namespace
from langgraph.checkpoint.serde.base import SerializerProtocol

from ..errors import InvalidConfigError
from .lifecycle import Clock
from .serde import resolve_serde
from .store import BackendClient
from .store_backend import CacheBackend, CacheEntry
from .validate import check_text, show

ValueT = TypeVar("ValueT")


def namespace_key(namespace: Namespace, operation: str) -> str:
    """A cache namespace as stored: the JSON array of its labels (labels may hold dots)."""
    if not isinstance(namespace, tuple) or not all(isinstance(label, str) for label in namespace):
        raise InvalidConfigError(f"{operation}: a cache namespace must be a tuple of strings, not {show(namespace)}")
    for label in namespace:
        check_text(label, "cache namespace label", operation)
    return orjson.dumps(list(namespace)).decode()


class UnifiedCache(BackendClient[CacheBackend], BaseCache[ValueT]):
    """LangGraph's node cache on any of our backends; a TTL (seconds, per entry, as
    LangGraph passes it) makes an entry miss once it has passed."""

    def __init__(
        self,
        backend: CacheBackend,
        *,
        serde: SerializerProtocol | None = None,
        clock: Clock | None = None,
    ) -> None:
        BackendClient.__init__(self, backend, clock)
        BaseCache.__init__(self, serde=resolve_serde(serde).public)

    def _keys(self, keys: Sequence[FullKey], operation: str) -> list[tuple[str, str]]:
        checked = []
        for full_key in keys:
            if not (isinstance(full_key, tuple) and len(full_key) == 2):
                raise InvalidConfigError(f"{operation}: a cache key is (namespace, key), not {show(full_key)}")
            namespace, key = full_key
            checked.append((namespace_key(namespace, operation), check_text(key, "cache key", operation)))
        return checked

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        stored = self._keys(keys, "cache get")
        if not stored:
            return {}
        await self._ensure_setup()
        found = await self.backend.cache_get(stored, self.now())
        return {
            full_key: self.serde.loads_typed((entry.type, entry.data))
            for full_key, entry in zip(keys, found, strict=True)
            if entry is not None
        }

    async def aset(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        now = self.now()
        entries = []
        for (namespace, key), (text_namespace, text_key) in zip(
            pairs, self._keys(list(pairs), "cache set"), strict=True
        ):
            value, ttl = pairs[(namespace, key)]
            if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl < math.inf):
                raise InvalidConfigError(f"cache set: ttl must be a positive number of seconds or None, not {show(ttl)}")
            kind, data = self.serde.dumps_typed(value)
            entries.append(CacheEntry(text_namespace, text_key, kind, data, None if ttl is None else now + ttl))
        if entries:
            await self._ensure_setup()
            await self.backend.cache_set(entries, now)

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        texts = None if namespaces is None else [namespace_key(ns, "cache clear") for ns in namespaces]
        await self._ensure_setup()
        await self.backend.cache_clear(texts)

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        return self._run("cache get", self.aget(keys))

    def set(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        self._run("cache set", self.aset(pairs))

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        self._run("cache clear", self.aclear(namespaces))

