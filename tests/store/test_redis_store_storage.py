"""RedisStore and RedisCache against the server: round trips through both APIs, what is
left in the raw keys (nothing of a deleted or swept item), TTLs on an injected clock,
hostile namespaces, keys and filters (results checked against MemoryStore, the
reference), one atomic script per batch on a Redis Cluster, and a graph's node cache."""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypedDict

import pytest
import redis
import redis.asyncio as aioredis
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import Item, PutOp
from langgraph.types import CachePolicy
from redis.crc import key_slot

from langgraph_unified_store import BackendUnavailableError, create_cache, create_store
from langgraph_unified_store.backends.memory_store import MemoryStore
from langgraph_unified_store.backends.redis.store import RedisCache, RedisStore
from langgraph_unified_store.backends.redis.store_keys import (
    cache_field,
    cache_keys,
    item_field,
    store_keys,
)
from langgraph_unified_store.core.cache import namespace_key

from ..support import REDIS_URL, unique

pytestmark = pytest.mark.redis

START_TIME = 1_700_000_000.0
PAYLOADS = [
    "a') OR 1=1 --",
    "*",
    "[",
    "(",
    "-",
    "+",
    "\\",
    "a*b?[c]",
    "{memory}",
    "%s%d",
    "\x01",
    "\n\r\t",
    "ünïcødé 日本語 🙂 \u202e\ufeff",
    "x" * 5000,
]


def _prefix() -> str:
    return unique("lus_store")


def _drop(prefix: str, url: str = REDIS_URL) -> None:
    client = redis.Redis.from_url(url)
    try:
        for key in (*store_keys(prefix), *cache_keys(prefix)):
            client.unlink(key)
    finally:
        client.close()


@pytest.fixture
async def clocked() -> AsyncIterator[tuple[RedisStore, list[float]]]:
    now = [START_TIME]
    store = RedisStore(
        REDIS_URL,
        prefix=_prefix(),
        clock=lambda: now[0],
        ttl={"default_ttl": 1, "refresh_on_read": True},
    )
    await store.asetup()
    try:
        yield store, now
    finally:
        await store.backend.drop_all()
        await store.aclose()


@pytest.fixture
async def rstore() -> AsyncIterator[RedisStore]:
    store = RedisStore(REDIS_URL, prefix=_prefix())
    await store.asetup()
    try:
        yield store
    finally:
        await store.backend.drop_all()
        await store.aclose()


@pytest.fixture
def raw() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        client.close()


def _traces(client: redis.Redis, prefix: str, field: bytes) -> dict[str, Any]:
    """Everything the five store keys hold of one item's field."""
    items, names, expiry, vectors, recent = store_keys(prefix)
    return {
        "items": client.hget(items, field),
        "names": client.zscore(names, field),
        "expiry": client.zscore(expiry, field),
        "vectors": client.hget(vectors, field),
        "recent": client.zscore(recent, field),
    }


def _shown(items: list[Any]) -> list[tuple[Any, ...]]:
    return [(i.namespace, i.key, i.value, i.created_at, i.updated_at) for i in items]


# -- round trips ---------------------------------------------------------------------------


async def test_async_round_trip(rstore: RedisStore) -> None:
    await rstore.aput(("users", "u1"), "prefs", {"theme": "dark", "n": 1, "deep": {"x": [1, 2]}})
    await rstore.aput(("users", "u2"), "prefs", {"theme": "light"})
    got = await rstore.aget(("users", "u1"), "prefs")
    assert isinstance(got, Item) and got.value == {"theme": "dark", "n": 1, "deep": {"x": [1, 2]}}
    first_created = got.created_at
    await rstore.aput(("users", "u1"), "prefs", {"theme": "blue"})
    again = await rstore.aget(("users", "u1"), "prefs")
    assert again is not None and again.value == {"theme": "blue"}
    assert again.created_at == first_created and again.updated_at >= got.updated_at
    found = await rstore.asearch(("users",))
    assert {(i.namespace, i.key) for i in found} == {(("users", "u1"), "prefs"), (("users", "u2"), "prefs")}
    assert [i.value for i in await rstore.asearch(("users",), filter={"theme": "light"})] == [{"theme": "light"}]
    assert await rstore.alist_namespaces() == [("users", "u1"), ("users", "u2")]
    assert await rstore.alist_namespaces(max_depth=1) == [("users",)]
    await rstore.adelete(("users", "u1"), "prefs")
    assert await rstore.aget(("users", "u1"), "prefs") is None
    assert await rstore.alist_namespaces() == [("users", "u2")]


def test_blocking_round_trip(raw: redis.Redis) -> None:
    prefix = _prefix()
    try:
        with RedisStore.from_conn_string(REDIS_URL, prefix=prefix) as store:
            store.put(("docs",), "a", {"text": "hello"})
            store.put(("docs", "sub"), "b", {"text": "world"})
            item = store.get(("docs",), "a")
            assert item is not None and item.value == {"text": "hello"}
            assert [i.key for i in store.search(("docs",), filter={"text": "world"})] == ["b"]
            assert store.list_namespaces(prefix=("docs",)) == [("docs",), ("docs", "sub")]
            store.delete(("docs",), "a")
            assert store.get(("docs",), "a") is None
            assert raw.hlen(store_keys(prefix)[0]) == 1
    finally:
        _drop(prefix)


def test_blocking_api_on_a_users_async_client() -> None:
    prefix = _prefix()
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        with RedisStore(client, prefix=prefix) as store:
            store.put(("c",), "k", {"v": "1"})
            item = store.get(("c",), "k")
            assert item is not None and item.value == {"v": "1"}
    finally:
        _drop(prefix)


async def test_search_orders_newest_first_then_namespace_and_key_and_pages() -> None:
    now = [START_TIME]
    store = RedisStore(REDIS_URL, prefix=_prefix(), clock=lambda: now[0])
    try:
        expected = []
        for step in range(3):
            for ns in (("n", "b"), ("n",), ("n", "a")):
                for key in ("k2", "k1"):
                    await store.aput(ns, f"{key}-{step}", {"step": str(step)})
                    expected.append((-now[0], ".".join(ns), f"{key}-{step}"))
            now[0] += 1
        # Two puts per step share a time: namespace text, then key, breaks the tie.
        expected.sort()
        listed = await store.asearch(("n",), limit=100)
        assert [(".".join(i.namespace), i.key) for i in listed] == [(ns, k) for _, ns, k in expected]
        page = await store.asearch(("n",), offset=4, limit=5)
        assert [(".".join(i.namespace), i.key) for i in page] == [(ns, k) for _, ns, k in expected][4:9]
        filtered = await store.asearch(("n",), filter={"step": "1"}, offset=1, limit=2)
        assert [i.value for i in filtered] == [{"step": "1"}] * 2
    finally:
        await store.backend.drop_all()
        await store.aclose()


async def test_vectors_round_trip_and_replace() -> None:
    def embed(texts: list[str]) -> list[list[float]]:
        return [[float(len(t)), 1.0, 0.5] for t in texts]

    store = RedisStore(
        REDIS_URL, prefix=_prefix(), index={"dims": 3, "embed": embed, "fields": ["text"]}
    )
    try:
        await store.aput(("v",), "long", {"text": "a much longer text"})
        await store.aput(("v",), "short", {"text": "ab"})
        stored = await store.backend.get_items([(("v",), "short")], START_TIME, False)
        assert stored[0] is not None and stored[0].vectors == {"text": [2.0, 1.0, 0.5]}
        ranked = await store.asearch(("v",), query="xy")
        assert [i.key for i in ranked] == ["short", "long"] and ranked[0].score is not None
        await store.aput(("v",), "short", {"text": "abcd"}, index=False)
        replaced = await store.backend.get_items([(("v",), "short")], START_TIME, False)
        assert replaced[0] is not None and replaced[0].vectors is None
    finally:
        await store.backend.drop_all()
        await store.aclose()


async def test_many_items_walk_in_chunks(clocked: tuple[RedisStore, list[float]], raw: redis.Redis) -> None:
    """More items than one script chunk (256) or one sweep call (500) handles."""
    store, now = clocked
    await store.abatch(
        [PutOp(("big", str(n % 3)), f"{n:04d}", {"n": str(n % 7)}, ttl=1) for n in range(1100)]
        + [PutOp(("big", "live"), "only", {"n": "0"}, ttl=100)]
    )
    assert len(await store.asearch(("big",), limit=2000)) == 1101
    page = await store.asearch(("big",), filter={"n": "3"}, offset=150, limit=20)
    # One time for all: ordered by namespace text, then key.
    ordered = sorted((str(n % 3), f"{n:04d}") for n in range(1100) if n % 7 == 3)
    assert [(i.namespace[1], i.key) for i in page] == ordered[150:170]
    now[0] += 61
    assert await store.alist_namespaces() == [("big", "live")]
    assert await store.asweep_ttl() == 1100
    assert raw.hlen(store_keys(store.backend.prefix)[0]) == 1
    assert raw.zcard(store_keys(store.backend.prefix)[1]) == 1


async def test_unreachable_server_and_factory() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", prefix=_prefix(), socket_timeout=0.2)
    with pytest.raises(BackendUnavailableError):
        await store.aget(("a",), "k")
    await store.aclose()
    prefix = _prefix()
    made = create_store(REDIS_URL, prefix=prefix)
    cache = create_cache(REDIS_URL, prefix=prefix)
    try:
        assert isinstance(made, RedisStore) and isinstance(cache, RedisCache)
        await made.aput(("f",), "k", {"v": "1"})
        await cache.aset({(("f",), "k"): ("cached", None)})
        assert (await made.aget(("f",), "k")).value == {"v": "1"}
        assert await cache.aget([(("f",), "k")]) == {(("f",), "k"): "cached"}
        await cache.aclear()
        assert (await made.aget(("f",), "k")) is not None  # the cache's keys only
    finally:
        await made.backend.drop_all()
        await made.aclose()
        await cache.aclose()


# -- raw keys ------------------------------------------------------------------------------


async def test_delete_leaves_nothing_in_any_key(clocked: tuple[RedisStore, list[float]], raw: redis.Redis) -> None:
    store, _ = clocked
    prefix = store.backend.prefix
    await store.aput(("a", "b"), "k", {"v": 1})
    field = item_field(("a", "b"), "k")
    traces = _traces(raw, prefix, field)
    assert traces["items"] is not None and traces["names"] == 0 and traces["expiry"] is not None
    assert traces["recent"] == -START_TIME
    await store.adelete(("a", "b"), "k")
    assert _traces(raw, prefix, field) == {
        "items": None, "names": None, "expiry": None, "vectors": None, "recent": None
    }
    assert all(raw.exists(key) == 0 for key in store_keys(prefix))


async def test_sweep_removes_every_trace_of_expired_items(
    clocked: tuple[RedisStore, list[float]], raw: redis.Redis
) -> None:
    store, now = clocked
    prefix = store.backend.prefix
    await store.aput(("s",), "old", {"v": 1})
    await store.aput(("s",), "pinned", {"v": 2}, ttl=10_000)
    now[0] += 30
    await store.aput(("s",), "young", {"v": 3})
    now[0] += 31  # "old" expired at +60, "young" at +90
    assert await store.asweep_ttl() == 1
    assert _traces(raw, prefix, item_field(("s",), "old")) == {
        "items": None, "names": None, "expiry": None, "vectors": None, "recent": None
    }
    assert {i.key for i in await store.asearch(("s",))} == {"pinned", "young"}
    assert raw.zcard(store_keys(prefix)[2]) == 2
    now[0] += 1000
    assert await store.asweep_ttl() == 1
    assert raw.hkeys(store_keys(prefix)[0]) == [item_field(("s",), "pinned")]
    assert raw.zrange(store_keys(prefix)[1], 0, -1) == [item_field(("s",), "pinned")]


# -- TTL -----------------------------------------------------------------------------------


async def test_ttl_on_an_injected_clock(clocked: tuple[RedisStore, list[float]]) -> None:
    store, now = clocked
    await store.aput(("t",), "k", {"v": 1})
    await store.aput(("t",), "other", {"v": 2})
    await store.aput(("t",), "long", {"v": 3}, ttl=10)
    now[0] += 59.9
    assert await store.aget(("t",), "k") is not None  # refreshes "k" to now + 60
    now[0] = START_TIME + 60  # "other" expires at +60: at or before now is gone
    assert await store.aget(("t",), "other") is None
    assert await store.aget(("t",), "k", refresh_ttl=False) is not None
    assert {i.key for i in await store.asearch(("t",))} == {"k", "long"}
    assert await store.alist_namespaces() == [("t",)]
    now[0] += 59.95  # the search at +60 moved "k" to +120, so it still lives
    assert await store.aget(("t",), "k", refresh_ttl=False) is not None
    assert [i.key for i in await store.asearch(("t",), refresh_ttl=True)] == ["k", "long"]
    now[0] += 59.99  # the search moved "k" again; no read since
    assert [i.key for i in await store.asearch(("t",), refresh_ttl=False)] == ["k", "long"]
    now[0] += 0.1
    assert [i.key for i in await store.asearch(("t",))] == ["long"]
    # A put over an expired item starts it afresh (created_at is the put's).
    await store.aput(("t",), "other", {"v": 4})
    again = await store.aget(("t",), "other")
    assert again is not None and again.created_at.timestamp() == pytest.approx(now[0])
    now[0] += 600 * 60
    assert await store.alist_namespaces() == []
    assert await store.asweep_ttl() == 3


# -- hostile text --------------------------------------------------------------------------


async def test_hostile_namespaces_keys_and_filters_match_the_reference(rstore: RedisStore) -> None:
    now = [START_TIME]
    redis_store = RedisStore(REDIS_URL, prefix=rstore.backend.prefix, clock=lambda: now[0])
    reference = MemoryStore(clock=lambda: now[0])
    try:
        for position, text in enumerate(PAYLOADS):
            label = text.replace(".", "_")
            for store in (redis_store, reference):
                await store.aput((label,), text, {"f": text, "g": str(position)})
                await store.aput(("root", label), text, {text: "hit", "g": str(position)})
                await store.aput(("root", label + "x"), "k", {"f": text})
            now[0] += position % 2  # pairs of payloads share a time: the ties are ordered too
        for text in PAYLOADS:
            label = text.replace(".", "_")
            for prefix, args in (
                ((label,), {}),
                (("root", label), {}),
                (("root",), {"filter": {"f": text}}),
                ((), {"filter": {text: "hit"}}),
                ((), {"filter": {"f": text, "g": "0"}}),
                ((), {"filter": {"f": {"$eq": text}}, "limit": 3}),
                (("root",), {"filter": {"f": {"$ne": text}}, "limit": 50}),
                (("root",), {"filter": {"f": text}, "limit": 1, "offset": 1}),
            ):
                want = _shown(await reference.asearch(prefix, **args))
                assert _shown(await redis_store.asearch(prefix, **args)) == want, (prefix, args)
            got = await redis_store.aget(("root", label), text)
            assert got is not None and got.value == {text: "hit", "g": str(PAYLOADS.index(text))}
        assert await redis_store.alist_namespaces(limit=1000) == await reference.alist_namespaces(limit=1000)
        assert await redis_store.asearch((), filter={"f": "a') OR 1=1 --' OR '1'='1"}) == []
        assert await redis_store.asearch(("*",), filter={"f": "*"}) != []
        assert await redis_store.asearch(("r",)) == []  # a label's text prefix is no namespace prefix
    finally:
        await redis_store.aclose()
        await reference.aclose()


# -- the cluster ---------------------------------------------------------------------------


async def test_cluster_batch_is_one_script_and_reads_back(cluster_url: str) -> None:
    prefix = _prefix()
    store = RedisStore(cluster_url, cluster=True, prefix=prefix)
    try:
        await store.asetup()
        assert len({key_slot(k.encode()) for k in store_keys(prefix)}) == 1
        assert len({key_slot(k.encode()) for k in cache_keys(prefix)}) == 1
        sent: list[int] = []
        connection = store.backend._connection
        execute = connection.execute

        async def counting(operation: str, calls: Any) -> list[Any]:
            sent.append(len(calls))
            return await execute(operation, calls)

        connection.execute = counting  # type: ignore[method-assign]
        namespaces = [(f"tenant-{n}", label) for n in range(20) for label in ("a", "{b}", "*")]
        await store.abatch([PutOp(ns, f"key-{i}", {"i": str(i)}) for i, ns in enumerate(namespaces)])
        assert sent == [1]
        connection.execute = execute  # type: ignore[method-assign]
        for i, ns in enumerate(namespaces):
            item = await store.aget(ns, f"key-{i}")
            assert item is not None and item.value == {"i": str(i)}
        assert len(await store.asearch((), limit=1000)) == len(namespaces)
        assert len(await store.alist_namespaces(limit=1000)) == len(namespaces)
        await store.abatch([PutOp(ns, f"key-{i}", None) for i, ns in enumerate(namespaces)])
        assert await store.asearch((), limit=1000) == []
        client = aioredis.RedisCluster.from_url(cluster_url)
        try:
            assert [await client.exists(key) for key in store_keys(prefix)] == [0, 0, 0, 0, 0]
        finally:
            await client.aclose()
    finally:
        await store.backend.drop_all()
        await store.aclose()


async def test_cluster_cache(cluster_url: str) -> None:
    cache = RedisCache(cluster_url, cluster=True, prefix=_prefix())
    try:
        await cache.aset({(("n",), "k"): ({"v": 1}, None), (("m",), "k"): ([1, 2], 60)})
        assert await cache.aget([(("n",), "k"), (("m",), "k")]) == {(("n",), "k"): {"v": 1}, (("m",), "k"): [1, 2]}
        await cache.aclear([("n",)])
        assert await cache.aget([(("n",), "k"), (("m",), "k")]) == {(("m",), "k"): [1, 2]}
    finally:
        await cache.backend.drop_all()
        await cache.aclose()


# -- the node cache ------------------------------------------------------------------------


async def test_cache_entries_expire_and_clear_exactly(raw: redis.Redis) -> None:
    now = [START_TIME]
    prefix = _prefix()
    cache = RedisCache(REDIS_URL, prefix=prefix, clock=lambda: now[0])
    try:
        namespaces = [("a",), ("a", "b"), ("ab",), ("a.b",), ("*",), ("[",), ("a') OR 1=1 --",)]
        await cache.aset({(ns, key): (f"{ns}/{key}", None) for ns in namespaces for key in ("k", "*", "")})
        await cache.aset({(("t",), "short"): ("s", 5)})
        everything = [(ns, key) for ns in namespaces for key in ("k", "*", "")]
        assert len(await cache.aget(everything)) == len(everything)
        await cache.aclear([("a",), ("*",)])
        left = await cache.aget(everything)
        assert set(left) == {(ns, k) for ns, k in everything if ns not in (("a",), ("*",))}
        assert await cache.aget([(("t",), "short")]) == {(("t",), "short"): "s"}
        now[0] += 5
        assert await cache.aget([(("t",), "short")]) == {}
        entries, _, expiry = cache_keys(prefix)
        assert raw.hget(entries, cache_field(namespace_key(("t",), "test"), "short")) is None
        assert raw.zcard(expiry) == 0
        await cache.aclear()
        assert await cache.aget(everything) == {}
        assert all(raw.exists(key) == 0 for key in cache_keys(prefix))
    finally:
        await cache.aclose()
        _drop(prefix)


class Doubled(TypedDict):
    x: int
    out: int


def _counting_graph(cache: RedisCache, calls: list[int]) -> Any:
    def double(state: Doubled) -> dict[str, int]:
        calls.append(state["x"])
        return {"out": state["x"] * 2}

    builder = StateGraph(Doubled)
    builder.add_node("double", double, cache_policy=CachePolicy(ttl=60))
    builder.add_edge(START, "double")
    builder.add_edge("double", END)
    return builder.compile(cache=cache)


def test_graph_node_cache_blocking() -> None:
    prefix = _prefix()
    calls: list[int] = []
    try:
        with RedisCache(REDIS_URL, prefix=prefix) as cache:
            graph = _counting_graph(cache, calls)
            assert graph.invoke({"x": 2})["out"] == 4
            assert graph.invoke({"x": 2})["out"] == 4
            assert calls == [2]
            assert graph.invoke({"x": 3})["out"] == 6
            assert calls == [2, 3]
            cache.clear()
            graph.invoke({"x": 2})
            assert calls == [2, 3, 2]
    finally:
        _drop(prefix)


async def test_graph_node_cache_async() -> None:
    prefix = _prefix()
    calls: list[int] = []
    cache = RedisCache.from_conn_string(REDIS_URL, prefix=prefix)
    try:
        graph = _counting_graph(cache, calls)
        first = await graph.ainvoke({"x": 5})
        second = await graph.ainvoke({"x": 5})
        assert first == second and operator.eq(calls, [5])
    finally:
        await cache.backend.drop_all()
        await cache.aclose()
