"""Opening the store and the cache of each backend: ``create_store`` / ``create_cache``
from a URL, ``from_conn_string``, ``with`` and ``async with`` (closing once, refusing use
after), data shared by two stores on one place, and a LangGraph node reading and
writing through ``get_store()`` in a graph compiled with ``store=``."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest
from langgraph.cache.base import BaseCache
from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore

from langgraph_unified_store import factory
from langgraph_unified_store.errors import SaverClosedError
from langgraph_unified_store.registry import backend_named

from .conftest import DIMS, ON_A_LOCATION, FakeClock, Place, fake_embed


def test_create_store_and_cache_from_the_url(place: Place, clock: FakeClock) -> None:
    entry = backend_named(place.backend)
    store = factory.create_store(place.url(), clock=clock, **place.location_options())
    place.opened.append(store)
    cache = factory.create_cache(place.url(), clock=clock, **place.location_options())
    place.opened.append(cache)
    with store, cache:
        assert type(store) is entry.store_class()
        assert type(cache) is entry.cache_class()
        assert isinstance(store, BaseStore) and isinstance(cache, BaseCache)
        store.put(("f",), "k", {"v": 1})
        assert store.get(("f",), "k").value == {"v": 1}  # type: ignore[union-attr]
        cache.set({(("f",), "k"): ("cached", None)})
        assert cache.get([(("f",), "k")]) == {(("f",), "k"): "cached"}


def test_create_store_passes_the_index(place: Place, clock: FakeClock) -> None:
    index = {"dims": DIMS, "embed": fake_embed, "fields": ["text"]}
    with factory.create_store(place.url(), index=index, clock=clock, **place.location_options()) as store:
        place.opened.append(store)
        store.put(("i",), "a", {"text": "alpha"})
        store.put(("i",), "b", {"text": "beta"})
        found = store.search(("i",), query="alpha")
        assert found[0].key == "a" and found[0].score == pytest.approx(1.0)


@pytest.mark.parametrize("backend_name", ON_A_LOCATION)
def test_from_conn_string(place: Place, clock: FakeClock) -> None:
    entry = backend_named(place.backend)
    for cls in (entry.store_class(), entry.cache_class()):
        with cls.from_conn_string(place.conn(), clock=clock, **place.location_options()) as made:  # type: ignore[attr-defined]
            place.opened.append(made)
            assert isinstance(made, cls)
            if isinstance(made, BaseStore):
                made.put(("c",), "k", {"v": 2})
                assert made.get(("c",), "k").value == {"v": 2}  # type: ignore[union-attr]
            else:
                made.set({(("c",), "k"): (2, None)})
                assert made.get([(("c",), "k")]) == {(("c",), "k"): 2}


@pytest.mark.parametrize("backend_name", ON_A_LOCATION)
def test_two_stores_on_one_place_share_items(place: Place, clock: FakeClock) -> None:
    with place.store(clock=clock) as first:
        first.put(("s", "1"), "k", {"v": 1})
    with place.store(clock=clock) as second:
        assert second.get(("s", "1"), "k").value == {"v": 1}  # type: ignore[union-attr]
        assert second.list_namespaces() == [("s", "1")]


def test_with_closes_once_and_refuses_after(place: Place) -> None:
    store = place.store()
    with store:
        store.put(("w",), "k", {})
    store.close()  # a second close is nothing
    with pytest.raises(SaverClosedError):
        store.get(("w",), "k")
    cache = place.cache()
    with cache:
        cache.set({(("w",), "k"): (1, None)})
    with pytest.raises(SaverClosedError):
        cache.get([(("w",), "k")])


async def test_async_with_closes_once_and_refuses_after(place: Place) -> None:
    store = place.store()
    async with store:
        await store.aput(("w",), "k", {"v": 1})
        assert (await store.aget(("w",), "k")).value == {"v": 1}  # type: ignore[union-attr]
    await store.aclose()
    with pytest.raises(SaverClosedError):
        await store.aget(("w",), "k")
    cache = place.cache()
    async with cache:
        await cache.aset({(("w",), "k"): (1, None)})
        assert await cache.aget([(("w",), "k")]) == {(("w",), "k"): 1}
    with pytest.raises(SaverClosedError):
        await cache.aget([(("w",), "k")])


def test_explicit_setup_then_use(place: Place) -> None:
    with place.store() as store:
        store.setup()
        store.setup()  # again: nothing
        store.put(("x",), "k", {})
        assert store.list_namespaces() == [("x",)]


class Visit(TypedDict, total=False):
    user: str
    visits: int
    first_visits: int


def _visit_graph(store: Any, *, asynchronous: bool) -> Any:
    def remember(state: Visit) -> dict[str, Any]:
        memory = get_store()
        namespace = ("users", state["user"])
        seen = memory.get(namespace, "visits")
        visits = (seen.value["n"] if seen else 0) + 1
        memory.put(namespace, "visits", {"n": visits, "user": state["user"]})
        return {"visits": visits, "first_visits": len(memory.search(("users",), filter={"n": 1}))}

    async def aremember(state: Visit) -> dict[str, Any]:
        memory = get_store()
        namespace = ("users", state["user"])
        seen = await memory.aget(namespace, "visits")
        visits = (seen.value["n"] if seen else 0) + 1
        await memory.aput(namespace, "visits", {"n": visits, "user": state["user"]})
        return {"visits": visits, "first_visits": len(await memory.asearch(("users",), filter={"n": 1}))}

    builder = StateGraph(Visit)
    builder.add_node("remember", aremember if asynchronous else remember)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", END)
    return builder.compile(store=store)


def test_graph_node_uses_get_store(place: Place, clock: FakeClock) -> None:
    with place.store(clock=clock) as store:
        graph = _visit_graph(store, asynchronous=False)
        # A node's reads see its own writes: first_visits counts the users at one visit.
        assert graph.invoke({"user": "ann"}) == {"user": "ann", "visits": 1, "first_visits": 1}
        assert graph.invoke({"user": "ann"}) == {"user": "ann", "visits": 2, "first_visits": 0}
        assert graph.invoke({"user": "bob"}) == {"user": "bob", "visits": 1, "first_visits": 1}
        assert store.get(("users", "ann"), "visits").value == {"n": 2, "user": "ann"}  # type: ignore[union-attr]
        assert store.list_namespaces(prefix=("users",)) == [("users", "ann"), ("users", "bob")]


async def test_async_graph_node_uses_get_store(place: Place, clock: FakeClock) -> None:
    async with place.store(clock=clock) as store:
        graph = _visit_graph(store, asynchronous=True)
        assert await graph.ainvoke({"user": "cy"}) == {"user": "cy", "visits": 1, "first_visits": 1}
        assert await graph.ainvoke({"user": "cy"}) == {"user": "cy", "visits": 2, "first_visits": 0}
        assert (await store.aget(("users", "cy"), "visits")).value == {"n": 2, "user": "cy"}  # type: ignore[union-attr]
