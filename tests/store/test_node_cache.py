"""The node cache of each backend: under a graph compiled with ``cache=`` (a node with a
``CachePolicy`` runs once per input until its TTL passes on the cache's clock, or the
cache is cleared), and directly, against LangGraph's ``InMemoryCache``."""

from __future__ import annotations

from collections import Counter
from typing import Any, TypedDict

import pytest
from langgraph.cache.base import BaseCache
from langgraph.cache.memory import InMemoryCache
from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy

from langgraph_unified_store.errors import InvalidConfigError

from .conftest import ON_A_LOCATION, FakeClock, Place

TTL = 60


class State(TypedDict, total=False):
    x: int
    double: int
    triple: int


def _graph(cache: Any, calls: Counter[str]) -> Any:
    def double(state: State) -> dict[str, Any]:
        calls["double"] += 1
        return {"double": state["x"] * 2}

    def triple(state: State) -> dict[str, Any]:
        calls["triple"] += 1
        return {"triple": state["x"] * 3}

    builder = StateGraph(State)
    builder.add_node("double", double, cache_policy=CachePolicy(ttl=TTL))
    builder.add_node("triple", triple, cache_policy=CachePolicy(ttl=TTL))
    builder.add_edge(START, "double")
    builder.add_edge(START, "triple")
    builder.add_edge("double", END)
    builder.add_edge("triple", END)
    return builder.compile(cache=cache)


def test_graph_runs_a_cached_node_once(place: Place, clock: FakeClock) -> None:
    calls: Counter[str] = Counter()
    with place.cache(clock=clock) as cache:
        assert isinstance(cache, BaseCache)
        graph = _graph(cache, calls)
        assert graph.invoke({"x": 1}) == {"x": 1, "double": 2, "triple": 3}
        assert graph.invoke({"x": 1}) == {"x": 1, "double": 2, "triple": 3}
        assert calls == {"double": 1, "triple": 1}
        graph.invoke({"x": 2})  # another input: another key
        assert calls == {"double": 2, "triple": 2}
        clock.advance(TTL - 1)
        graph.invoke({"x": 1})
        assert calls == {"double": 2, "triple": 2}
        clock.advance(1)  # the TTL has passed
        assert graph.invoke({"x": 1}) == {"x": 1, "double": 2, "triple": 3}
        assert calls == {"double": 3, "triple": 3}
        graph.clear_cache(["double"])  # clear(namespaces): that node's only
        graph.invoke({"x": 1})
        assert calls == {"double": 4, "triple": 3}
        cache.clear()
        graph.invoke({"x": 1})
        graph.invoke({"x": 2})
        assert calls == {"double": 6, "triple": 5}


async def test_async_graph_runs_a_cached_node_once(place: Place, clock: FakeClock) -> None:
    calls: Counter[str] = Counter()
    async with place.cache(clock=clock) as cache:
        graph = _graph(cache, calls)
        assert await graph.ainvoke({"x": 3}) == {"x": 3, "double": 6, "triple": 9}
        assert await graph.ainvoke({"x": 3}) == {"x": 3, "double": 6, "triple": 9}
        assert calls == {"double": 1, "triple": 1}
        clock.advance(TTL)
        await graph.ainvoke({"x": 3})
        assert calls == {"double": 2, "triple": 2}
        await graph.aclear_cache(["triple"])
        await graph.ainvoke({"x": 3})
        assert calls == {"double": 2, "triple": 3}
        await cache.aclear()
        await graph.ainvoke({"x": 3})
        assert calls == {"double": 3, "triple": 4}


VALUES: dict[tuple[tuple[str, ...], str], Any] = {
    (("x",), "k"): {"a": [1, 2.5, "three", None, True]},
    (("x",), "other"): "text",
    (("x", "1"), "k"): [1, {"nested": {"deep": b"bytes"}}],
    (("x.1",), "k"): 7,  # a label with a dot is not the namespace ("x", "1")
    (("y",), "k"): {"é": "ünïcødé", "quote": "it's \"quoted\""},
    (("__pregel_ns_writes", "id", "node"), "k"): [["channel", 1]],  # serde: tuples come back as lists
    ((), "root"): 1.5,
}


def test_cache_api_matches_the_reference(place: Place, clock: FakeClock) -> None:
    reference: InMemoryCache[Any] = InMemoryCache()
    with place.cache(clock=clock) as cache:
        pairs = {key: (value, None) for key, value in VALUES.items()}
        cache.set(pairs)
        reference.set(pairs)
        keys = [*VALUES, (("x",), "missing"), (("z",), "k")]
        assert cache.get(keys) == reference.get(keys) == VALUES
        for cleared in ([("x",)], [("x.1",), ()], [("none",)], []):
            cache.clear(cleared)
            reference.clear(cleared)
            assert cache.get(keys) == reference.get(keys), cleared
        cache.clear()
        assert cache.get(keys) == {}


def test_cache_ttl_on_the_clock(place: Place, clock: FakeClock) -> None:
    with place.cache(clock=clock) as cache:
        cache.set({(("t",), "short"): ("s", 10), (("t",), "long"): ("l", 100), (("t",), "never"): ("n", None)})
        clock.advance(9.5)
        assert cache.get([(("t",), "short")]) == {(("t",), "short"): "s"}
        clock.advance(0.5)
        assert cache.get([(("t",), "short"), (("t",), "long"), (("t",), "never")]) == {
            (("t",), "long"): "l",
            (("t",), "never"): "n",
        }
        cache.set({(("t",), "short"): ("again", 100)})  # a new set replaces and restarts: 110
        clock.advance(95)  # 105: long expired at 100
        assert cache.get([(("t",), "short"), (("t",), "long"), (("t",), "never")]) == {
            (("t",), "short"): "again",
            (("t",), "never"): "n",
        }


async def test_async_cache_api(place: Place, clock: FakeClock) -> None:
    async with place.cache(clock=clock) as cache:
        await cache.aset({key: (value, 30) for key, value in VALUES.items()})
        assert await cache.aget(list(VALUES)) == VALUES
        await cache.aclear([("y",)])
        assert (("y",), "k") not in await cache.aget(list(VALUES))
        clock.advance(30)
        assert await cache.aget(list(VALUES)) == {}


@pytest.mark.parametrize("backend_name", ON_A_LOCATION)
def test_two_caches_on_one_place_share_entries(place: Place, clock: FakeClock) -> None:
    with place.cache(clock=clock) as first, place.cache(clock=clock) as second:
        first.set({(("s",), "k"): ({"v": 1}, None)})
        assert second.get([(("s",), "k")]) == {(("s",), "k"): {"v": 1}}
        second.clear([("s",)])
        assert first.get([(("s",), "k")]) == {}


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ({(("n",), 1): ("v", None)}, "cache key"),
        ({(("n", 2), "k"): ("v", None)}, "namespace"),
        ({(("n",), "k\x00"): ("v", None)}, "NUL"),
        ({(("n",), "k"): ("v", -1)}, "ttl"),
        ({(("n",), "k"): ("v", float("inf"))}, "ttl"),
    ],
)
def test_bad_cache_input_writes_nothing(place: Place, clock: FakeClock, pairs: Any, message: str) -> None:
    with place.cache(clock=clock) as cache:
        good = {(("n",), "good"): ("v", None)}
        with pytest.raises(InvalidConfigError, match=message):
            cache.set({**good, **pairs})
        assert cache.get([(("n",), "good")]) == {}
