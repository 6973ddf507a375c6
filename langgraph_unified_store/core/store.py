"""The one long-term memory store: LangGraph's ``BaseStore`` over any ``StoreBackend``.

``abatch`` holds the logic; ``batch`` hands the same coroutine to the runner of the
backend's ``BlockingMode`` (``core.sync``), so sync and async share one implementation,
as the savers do. The rules (namespaces, values, filters, listing, ranking) are
``core.store_rules``; embedding is the user's function, called before anything is written.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Generic, Literal, Self, TypeVar, cast

from langgraph.store.base import (
    NOT_PROVIDED,
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    NotProvided,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
)

from ..errors import InvalidConfigError, SaverClosedError, UnifiedStoreError
from .health import StoreHealth
from .lifecycle import BackgroundSweeper, Clock, check_clock
from .store_backend import CacheBackend, ItemKey, ItemSearch, StoreBackend, StoredItem
from .store_rules import (
    check_namespace,
    compile_filter,
    cosine_scores,
    decode_value,
    encode_value,
    listed_namespaces,
    unranked_order,
)
from .sync import ensure_no_running_loop, runner_for
from .validate import check_text, show

T = TypeVar("T")
B = TypeVar("B", StoreBackend, CacheBackend)

MIN_SEARCH_PAGE = 32
MAX_SEARCH_PAGE = 4096
"""Rows per read while a search filters in the core: the first read asks for the page
(or 32 rows), each further one for four times as many, up to this."""
MAX_KNOWN_NAMESPACES: Final = 65536
"""Namespaces a store remembers having accepted (then it forgets them all and starts over)."""
MAX_CACHED_TIMES: Final = 65536
"""Datetimes ``_time`` keeps (then it forgets them all and starts over)."""


class EmbeddingError(UnifiedStoreError):
    """The index's embedding function failed or returned vectors of the wrong size;
    nothing was written."""


class BackendClient(StoreHealth, Generic[B]):
    """What the store and the cache share: one backend, set up once, driven from sync
    code by the runner its ``BlockingMode`` chose, closed once (and ``with`` blocks)."""

    backend: B

    def __init__(self, backend: B, clock: Clock | None) -> None:
        self.backend = backend
        self.clock = check_clock(clock)
        self._runner = runner_for(backend.blocking, f"{type(self).__name__}-io", self._closed_error)
        self._ready: asyncio.Future[None] | None = None
        self._is_set_up = False
        self._closed = False
        self._sweeper: BackgroundSweeper | None = None

    def _closed_error(self) -> SaverClosedError:
        return SaverClosedError(repr(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={type(self.backend).__name__})"

    def now(self) -> float:
        return float(self.clock())

    async def asetup(self) -> None:
        await self.backend.setup()
        self._is_set_up = True

    def setup(self) -> None:
        self._run("setup", self.asetup())

    async def _ensure_setup(self) -> None:
        if self._closed:
            raise self._closed_error()
        if not self._is_set_up:
            await self.asetup()

    def _run(self, method: str, coro: Coroutine[Any, Any, T]) -> T:
        try:
            ensure_no_running_loop(method)
            if self._closed:
                raise SaverClosedError(repr(self), method)
        except Exception:
            coro.close()
            raise
        return self._runner.run(coro)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.stop()
        await self.backend.aclose()
        await self._runner.aclose_connections(self.backend.aclose, 10.0)
        await self._runner.astop()

    def close(self) -> None:
        if self._closed:
            return
        self._runner.check_close_thread()
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.stop()
        try:
            self._runner.close_connections(self.backend.aclose(), 10.0)
        finally:
            self._runner.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        await self.asetup()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class OpenedOnConnection:
    """What the store and cache classes whose first argument is the connection share
    (every backend's but Memory's): ``from_conn_string``, as on the savers."""

    @classmethod
    def from_conn_string(cls, conn: Any, **options: Any) -> Self:
        """A store or cache on ``conn`` (the class's first argument: a SQLite path, a
        PostgreSQL connection string or asyncpg.Pool, a Redis URL or client) with the
        class's options; enter it with ``with`` or ``async with`` to close it afterwards."""
        make: Callable[..., Self] = cls
        return make(conn, **options)


@dataclass(slots=True)
class _Plan:
    """A batch, checked: its ops, its puts (the last per key) with their values encoded,
    the (path, text) pairs each put indexes, and the queries its searches embed."""

    ops: list[Op]
    puts: list[PutOp]
    encoded: list[bytes | None]
    put_texts: list[list[tuple[str, str]]]
    search_queries: list[str]

    def texts(self) -> list[str]:
        return [text for pairs in self.put_texts for _, text in pairs]

    def queries(self) -> list[str]:
        return list(dict.fromkeys(self.search_queries))


def _minutes(name: str, value: Any) -> float | None:
    """A TTL in minutes (LangGraph's unit for the store) as seconds."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise InvalidConfigError(f"{name} must be a positive, finite number of minutes, not {show(value)}")
    return float(value) * 60.0


_DATETIMES: dict[float, datetime] = {}


def _time(seconds: float) -> datetime:
    """Epoch seconds as an aware datetime, memoised: datetimes are immutable, and reads
    return the same few stamps again and again (building one costs more than the rest of
    a get)."""
    found = _DATETIMES.get(seconds)
    if found is None:
        if len(_DATETIMES) >= MAX_CACHED_TIMES:
            _DATETIMES.clear()
        found = _DATETIMES[seconds] = datetime.fromtimestamp(seconds, UTC)
    return found


class UnifiedStore(BackendClient[StoreBackend], BaseStore):
    """LangGraph's long-term memory store on any of our backends.

    ``index={"dims": ..., "embed": ..., "fields": [...]}`` turns on semantic search
    (exact cosine similarity, ranked here as ``InMemoryStore`` ranks, over every match or
    over the candidates a backend's vector library picked: ``rank_candidates``). ``ttl={"default_ttl":
    minutes, "refresh_on_read": bool, "sweep_interval_minutes": n}`` expires items; an
    expired item is gone to every read at once, and ``sweep_ttl()`` (or the sweeper)
    removes it. The rules are ``core.store_rules``.
    """

    supports_ttl = True

    def __init__(
        self,
        backend: StoreBackend,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        BackendClient.__init__(self, backend, clock)
        self._namespaces_ok: set[Any] = set()
        """Namespaces ``check_namespace`` accepted for an item: a verdict that cannot change."""
        self.ttl_config = self._check_ttl_config(ttl)
        self.index_config = index
        self.embeddings = None
        self._index_fields: list[tuple[str, str | list[str]]] = []
        self._dims = 0
        if index is not None:
            dims = index.get("dims")
            if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
                raise InvalidConfigError(f"index: dims must be a positive integer, not {show(dims)}")
            self._dims = dims
            self.embeddings = ensure_embeddings(index.get("embed"))
            self._index_fields = [
                (path, path if path == "$" else tokenize_path(path))
                for path in (index.get("fields") or ["$"])
            ]
        interval = (self.ttl_config or {}).get("sweep_interval_minutes")
        if interval:
            self.start_ttl_sweeper(float(interval) * 60.0)

    @staticmethod
    def _check_ttl_config(ttl: TTLConfig | None) -> TTLConfig | None:
        if ttl is None:
            return None
        if not isinstance(ttl, dict):
            raise InvalidConfigError(f"ttl must be a TTLConfig dict, not {show(ttl)}")
        _minutes("ttl: default_ttl", ttl.get("default_ttl"))
        _minutes("ttl: sweep_interval_minutes", ttl.get("sweep_interval_minutes"))
        refresh = ttl.get("refresh_on_read", True)
        if not isinstance(refresh, bool):
            raise InvalidConfigError(f"ttl: refresh_on_read must be True or False, not {show(refresh)}")
        return ttl

    # -- the batch -------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        plan = self._plan(ops)
        texts, queries = plan.texts(), plan.queries()
        documents = self._embedded(lambda: self.embeddings.embed_documents(texts), texts, "put")  # type: ignore[union-attr]
        asked = self._embedded(lambda: [self.embeddings.embed_query(q) for q in queries], queries, "search")  # type: ignore[union-attr]
        return self._run("batch", self._apply(plan, documents, dict(zip(queries, asked, strict=True))))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Reads see the store as it was before the batch; the batch's puts (the last per
        key) are then written in one atomic call, after every embedding succeeded."""
        plan = self._plan(ops)
        texts, queries = plan.texts(), plan.queries()
        documents = await self._aembedded(texts, "put")
        asked = await self._aembedded(queries, "search")
        return await self._apply(plan, documents, dict(zip(queries, asked, strict=True)))

    def _plan(self, ops: Iterable[Op]) -> _Plan:
        checked: list[Op] = []
        puts: dict[ItemKey, tuple[PutOp, bytes | None]] = {}
        for op in ops:
            encoded = self._checked(op)
            checked.append(op)
            if isinstance(op, PutOp):
                puts[(op.namespace, op.key)] = (op, encoded)
        ranked = self.embeddings is not None
        return _Plan(
            checked,
            [op for op, _ in puts.values()],
            [encoded for _, encoded in puts.values()],
            [self._texts(op) for op, _ in puts.values()],
            [op.query for op in checked if ranked and isinstance(op, SearchOp) and op.query is not None],
        )

    def _embedded(self, embed: Any, texts: Sequence[str], operation: str) -> list[list[float]]:
        if not texts:
            return []
        try:
            vectors = embed()
        except Exception as exc:
            raise self._embedding_failed(exc, operation) from exc
        return self._checked_vectors(vectors, len(texts), operation)

    async def _aembedded(self, texts: Sequence[str], operation: str) -> list[list[float]]:
        if not texts:
            return []
        assert self.embeddings is not None
        try:
            if operation == "put":
                vectors = await self.embeddings.aembed_documents(list(texts))
            else:
                vectors = [await self.embeddings.aembed_query(q) for q in texts]
        except Exception as exc:
            raise self._embedding_failed(exc, operation) from exc
        return self._checked_vectors(vectors, len(texts), operation)

    @staticmethod
    def _embedding_failed(exc: Exception, operation: str) -> EmbeddingError:
        return EmbeddingError(
            f"{operation}: the index's embedding function raised {type(exc).__name__}: {exc}; "
            "nothing was written"
        )

    async def _apply(
        self, plan: _Plan, documents: list[list[float]], queries: dict[str, list[float]]
    ) -> list[Result]:
        await self._ensure_setup()
        now = self.now()
        checked = plan.ops
        results: list[Result] = [None] * len(checked)
        gets = [(i, op) for i, op in enumerate(checked) if isinstance(op, GetOp)]
        for refresh in (False, True):
            chosen = [(i, op) for i, op in gets if bool(op.refresh_ttl) is refresh]
            if chosen:
                found = await self.backend.get_items([(op.namespace, op.key) for _, op in chosen], now, refresh)
                for (i, _), stored in zip(chosen, found, strict=True):
                    results[i] = None if stored is None else _item(stored)
        for i, op in enumerate(checked):
            if isinstance(op, SearchOp):
                results[i] = await self._search(op, now, queries)
            elif isinstance(op, ListNamespacesOp):
                namespaces = await self.backend.item_namespaces((), now)
                results[i] = listed_namespaces(
                    namespaces, op.match_conditions or (), op.max_depth, op.offset, op.limit
                )
        if plan.puts:
            await self._write(plan, documents, now)
        return results

    def _checked(self, op: Op) -> bytes | None:
        """Refuse a bad op (InvalidConfigError naming what is wrong); a put's value, encoded."""
        if isinstance(op, GetOp):
            self._check_get(op.namespace, op.key)
        elif isinstance(op, PutOp):
            return self._check_put(op.namespace, op.key, op.value, op.index, op.ttl)
        elif isinstance(op, SearchOp):
            check_namespace(op.namespace_prefix, "search", prefix=True)
            compile_filter(op.filter)
            for name, value in (("limit", op.limit), ("offset", op.offset)):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise InvalidConfigError(f"search: {name} must be a non-negative integer, not {show(value)}")
            if op.query is not None and not isinstance(op.query, str):
                raise InvalidConfigError(f"search: query must be a string, not {show(op.query)}")
        elif isinstance(op, ListNamespacesOp):
            for name, value in (("limit", op.limit), ("offset", op.offset)):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise InvalidConfigError(
                        f"list_namespaces: {name} must be a non-negative integer, not {show(value)}"
                    )
            if op.max_depth is not None and (
                isinstance(op.max_depth, bool) or not isinstance(op.max_depth, int) or op.max_depth < 1
            ):
                raise InvalidConfigError(
                    f"list_namespaces: max_depth must be a positive integer, not {show(op.max_depth)}"
                )
        else:
            raise InvalidConfigError(f"batch: unknown operation {show(op)}")
        return None

    def _check_namespace(self, namespace: Any, operation: str) -> None:
        """``check_namespace`` for an item's namespace, remembering the ones it accepted."""
        known = self._namespaces_ok
        try:
            if namespace in known:
                return
        except TypeError:  # unhashable: check_namespace names what is wrong
            pass
        check_namespace(namespace, operation)
        if len(known) >= MAX_KNOWN_NAMESPACES:
            known.clear()
        known.add(namespace)

    def _check_get(self, namespace: Any, key: Any) -> None:
        self._check_namespace(namespace, "get")
        check_text(key, "key", "get")

    def _check_put(self, namespace: Any, key: Any, value: Any, index: Any, ttl: Any) -> bytes | None:
        """A put's (or a delete's, ``value`` None) checks; its value encoded."""
        self._check_namespace(namespace, "put")
        check_text(key, "key", "put")
        encoded = None if value is None else encode_value(value, namespace, key)
        if ttl is not None:
            _minutes("put: ttl", ttl)
        if index not in (None, False) and not (isinstance(index, list) and all(isinstance(p, str) for p in index)):
            raise InvalidConfigError(f"put: index must be False, None or a list of paths, not {show(index)}")
        return encoded

    # -- one operation ---------------------------------------------------------------------
    # BaseStore's get, put and delete (and their async twins) wrap one op in a batch; ours run
    # the same checks and backend calls without one. BaseStore first checks the labels its
    # own way: until ``_check_namespace`` has accepted a namespace (it refuses all BaseStore
    # refuses, and more), calls on it go BaseStore's way, so every refusal is as it was.

    def _one_op(self, namespace: Any, key: Any, put: bool = False) -> bool:
        """Whether a get, delete or (``put``) put may skip BaseStore's batch: a put that
        embeds goes the batch's way, which embeds with the sync or async embedder."""
        if type(key) is not str or (put and (self.embeddings is not None or not self.supports_ttl)):
            return False  # BaseStore makes a key str(key), and refuses a ttl without supports_ttl
        try:
            return namespace in self._namespaces_ok
        except TypeError:
            return False

    def _refresh(self, refresh_ttl: bool | None) -> bool:
        """A read's refresh_ttl as BaseStore settles it."""
        if refresh_ttl is not None:
            return bool(refresh_ttl)
        return True if self.ttl_config is None else bool(self.ttl_config.get("refresh_on_read", True))

    def _ttl(self, ttl: float | NotProvided | None) -> float | None:
        """A put's ttl (minutes) as BaseStore settles it: the default when not given."""
        if ttl is NOT_PROVIDED:
            return self.ttl_config.get("default_ttl") if self.ttl_config else None
        return cast("float | None", ttl)

    async def _get_one(self, namespace: tuple[str, ...], key: str, refresh: bool) -> Item | None:
        if not self._is_set_up or self._closed:
            await self._ensure_setup()
        now = self.now()
        (stored,) = await self.backend.get_items([(namespace, key)], now, refresh)
        return None if stored is None else _item(stored)

    async def _put_one(self, namespace: tuple[str, ...], key: str, encoded: bytes | None, ttl: float | None) -> None:
        if not self._is_set_up or self._closed:
            await self._ensure_setup()
        now = self.now()
        if encoded is None:
            await self.backend.write_items([], [(namespace, key)], now)
        else:
            await self.backend.write_items([_new_item(namespace, key, encoded, ttl, now, None)], [], now)

    async def aget(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None) -> Item | None:
        if not self._one_op(namespace, key):
            return await super().aget(namespace, key, refresh_ttl=refresh_ttl)
        self._check_get(namespace, key)
        return await self._get_one(namespace, key, self._refresh(refresh_ttl))

    def get(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None) -> Item | None:
        if not self._one_op(namespace, key):
            return super().get(namespace, key, refresh_ttl=refresh_ttl)
        self._check_get(namespace, key)
        return self._run("batch", self._get_one(namespace, key, self._refresh(refresh_ttl)))

    async def aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        if not self._one_op(namespace, key, put=True):
            return await super().aput(namespace, key, value, index, ttl=ttl)
        minutes = self._ttl(ttl)
        encoded = self._check_put(namespace, key, value, index, minutes)
        await self._put_one(namespace, key, encoded, minutes)

    def put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        if not self._one_op(namespace, key, put=True):
            return super().put(namespace, key, value, index, ttl=ttl)
        minutes = self._ttl(ttl)
        encoded = self._check_put(namespace, key, value, index, minutes)
        self._run("batch", self._put_one(namespace, key, encoded, minutes))

    async def adelete(self, namespace: tuple[str, ...], key: str) -> None:
        if not self._one_op(namespace, key):
            return await super().adelete(namespace, key)
        self._check_put(namespace, key, None, None, None)
        await self._put_one(namespace, key, None, None)

    def delete(self, namespace: tuple[str, ...], key: str) -> None:
        if not self._one_op(namespace, key):
            return super().delete(namespace, key)
        self._check_put(namespace, key, None, None, None)
        self._run("batch", self._put_one(namespace, key, None, None))

    # -- writing ---------------------------------------------------------------------------

    async def _write(self, plan: _Plan, documents: list[list[float]], now: float) -> None:
        deletes = [(op.namespace, op.key) for op, encoded in zip(plan.puts, plan.encoded, strict=True) if encoded is None]
        items = []
        position = 0
        for op, encoded, pairs in zip(plan.puts, plan.encoded, plan.put_texts, strict=True):
            vectors = {path: documents[position + n] for n, (path, _) in enumerate(pairs)}
            position += len(pairs)
            if encoded is not None:
                items.append(_new_item(op.namespace, op.key, encoded, op.ttl, now, vectors))
        await self.backend.write_items(items, deletes, now)

    def _texts(self, op: PutOp) -> list[tuple[str, str]]:
        """(path, text) pairs a put indexes."""
        if self.embeddings is None or op.index is False or op.value is None:
            return []
        fields = self._index_fields if op.index is None else [(p, tokenize_path(p)) for p in op.index]
        found: list[tuple[str, str]] = []
        for path, tokens in fields:
            texts = get_text_at_path(op.value, tokens)
            if len(texts) == 1:
                found.append((path, texts[0]))
            else:
                found.extend((f"{path}.{i}", text) for i, text in enumerate(texts))
        return found

    def _checked_vectors(self, vectors: Any, count: int, operation: str) -> list[list[float]]:
        if not isinstance(vectors, (list, tuple)) or len(vectors) != count:
            raise EmbeddingError(
                f"{operation}: the embedding function returned {show(vectors)} for {count} text(s); "
                "nothing was written"
            )
        checked = []
        for vector in vectors:
            if not isinstance(vector, (list, tuple)) or len(vector) != self._dims or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in vector
            ):
                size = len(vector) if isinstance(vector, (list, tuple)) else show(vector)
                raise EmbeddingError(
                    f"{operation}: the embedding function returned a vector of {size} values, not "
                    f"{self._dims} finite numbers (the index's dims); nothing was written"
                )
            checked.append([float(x) for x in vector])
        return checked

    # -- searching -------------------------------------------------------------------------

    async def _search(self, op: SearchOp, now: float, queries: dict[str, list[float]]) -> list[SearchItem]:
        """With ``refresh_ttl``, only the items returned are refreshed: the backend does it
        when its page is the answer (exact), else the core does once it has filtered,
        ranked and paged."""
        compiled = compile_filter(op.filter)
        ranked = op.query is not None and self.embeddings is not None
        exact = (compiled.exact or self.backend.applies_whole_filter) and not ranked
        refresh = bool(op.refresh_ttl)
        search = ItemSearch(
            prefix=op.namespace_prefix,
            filter=compiled,
            offset=op.offset if exact else 0,
            limit=op.limit if exact else None,
            now=now,
            refresh=refresh and exact,
            with_vectors=ranked,
        )
        if exact:
            return [_search_item(s, None) for s in await self.backend.search_items(search)]
        if ranked:
            assert op.query is not None
            query = queries[op.query]
            found = None
            if compiled.exact:
                search.offset, search.limit = op.offset, op.limit
                found = await self.backend.rank_candidates(search, query)
                search.offset, search.limit = 0, None
            if found is None:
                found = await self.backend.search_items(search)
            matching = [s for s in found if compiled.matches(decode_value(s.value, (s.namespace, s.key)))]
            matching.sort(key=lambda s: unranked_order(s.updated_at, s.namespace, s.key))
            results = _ranked(op, query, matching)
        else:
            matching = await self._matching_rows(search, op.offset + op.limit)
            results = [_search_item(s, None) for s in matching[op.offset : op.offset + op.limit]]
        if refresh:
            timed = {(s.namespace, s.key) for s in matching if s.ttl is not None}
            keys = [(r.namespace, r.key) for r in results if (r.namespace, r.key) in timed]
            if keys:
                await self.backend.get_items(keys, now, True)
        return results

    async def _matching_rows(self, search: ItemSearch, wanted: int) -> list[StoredItem]:
        """The first ``wanted`` rows (in search order) that match the whole filter, read in
        growing pages: the backend's rows are a superset, usually a small one."""
        matching: list[StoredItem] = []
        search.offset, search.limit = 0, max(wanted, MIN_SEARCH_PAGE)
        while True:
            rows = await self.backend.search_items(search)
            matching.extend(s for s in rows if search.filter.matches(decode_value(s.value, (s.namespace, s.key))))
            if len(matching) >= wanted or len(rows) < search.limit:
                return matching
            search.offset += len(rows)
            search.limit = min(search.limit * 4, MAX_SEARCH_PAGE)

    # -- the TTL sweep ---------------------------------------------------------------------

    async def asweep_ttl(self) -> int:
        """Delete expired items (reads already miss them); how many went."""
        await self._ensure_setup()
        return await self.backend.sweep_items(self.now())

    def sweep_ttl(self) -> int:
        return self._run("sweep_ttl", self.asweep_ttl())

    def start_ttl_sweeper(self, interval: float) -> None:
        """Sweep every ``interval`` seconds on a daemon thread until the store closes."""
        if self._sweeper is None:
            self._sweeper = BackgroundSweeper(self.sweep_ttl, interval, type(self).__name__)
            self._sweeper.start()


def _new_item(
    namespace: tuple[str, ...],
    key: str,
    encoded: bytes,
    ttl: float | None,
    now: float,
    vectors: dict[str, list[float]] | None,
) -> StoredItem:
    """A put as written (``ttl`` in minutes; BaseStore has applied the default ttl, so
    None is "never")."""
    seconds = None if ttl is None else _minutes("put: ttl", ttl)
    return StoredItem(namespace, key, encoded, now, now, seconds, None if seconds is None else now + seconds, vectors or None)


_ITEM_SLOTS_KNOWN: Final = getattr(Item, "__slots__", None) == ("value", "key", "namespace", "created_at", "updated_at")
"""Whether ``Item`` is the five slots ``_item`` fills (else it calls ``Item(...)``)."""
_bare = object.__new__


def _item(stored: StoredItem) -> Item:
    """What ``Item(...)`` builds, filled slot by slot: its ``__init__`` converts strings to
    the datetimes and tuples that we already hold, and costs a third of a get."""
    namespace = stored.namespace if type(stored.namespace) is tuple else tuple(stored.namespace)
    if not _ITEM_SLOTS_KNOWN:
        return Item(
            value=decode_value(stored.value, (stored.namespace, stored.key)),
            key=stored.key,
            namespace=namespace,
            created_at=_time(stored.created_at),
            updated_at=_time(stored.updated_at),
        )
    item: Item = _bare(Item)
    item.value = decode_value(stored.value, (stored.namespace, stored.key))
    item.key = stored.key
    item.namespace = namespace
    item.created_at = _time(stored.created_at)
    item.updated_at = _time(stored.updated_at)
    return item


def _search_item(stored: StoredItem, score: float | None) -> SearchItem:
    return SearchItem(
        namespace=stored.namespace,
        key=stored.key,
        value=decode_value(stored.value, (stored.namespace, stored.key)),
        created_at=_time(stored.created_at),
        updated_at=_time(stored.updated_at),
        score=score,
    )


def _ranked(op: SearchOp, query: list[float], candidates: Sequence[StoredItem]) -> list[SearchItem]:
    """Max-pooled cosine over each item's vectors, best first; items without vectors
    fill the page after the scored ones, as InMemoryStore does."""
    flat: list[StoredItem] = []
    vectors: list[list[float]] = []
    scoreless: list[StoredItem] = []
    for stored in candidates:
        if stored.vectors:
            for vector in stored.vectors.values():
                flat.append(stored)
                vectors.append(vector)
        else:
            scoreless.append(stored)
    scored = sorted(zip(cosine_scores(query, vectors), flat, strict=True), key=lambda p: p[0], reverse=True)
    seen: set[ItemKey] = set()
    kept: list[tuple[float | None, StoredItem]] = []
    for score, stored in scored:
        key = (stored.namespace, stored.key)
        if key in seen:
            continue
        position = len(seen)
        seen.add(key)
        if position >= op.offset + op.limit:
            break
        if position >= op.offset:
            kept.append((score, stored))
    if scoreless and len(kept) < op.limit:
        kept.extend((None, s) for s in scoreless[: op.limit - len(kept)])
    return [_search_item(stored, score) for score, stored in kept]
