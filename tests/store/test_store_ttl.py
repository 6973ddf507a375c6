"""Store TTLs on each backend, on an injected clock: LangGraph's ``TTLConfig`` (minutes),
per-put ``ttl=``, refresh on read, and the sweep. An expired item is gone to every read
and listing at once, swept or not; the expiry boundary itself counts as expired."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.store.base import BaseStore

from langgraph_unified_store.errors import InvalidConfigError

from .conftest import DIMS, FakeClock, Place, fake_embed

MINUTE = 60.0


def _visible(store: Any, namespace: tuple[str, ...], key: str) -> dict[str, bool]:
    """Whether the item shows to get, search and list_namespaces (none refreshing)."""
    return {
        "get": store.get(namespace, key, refresh_ttl=False) is not None,
        "search": any(i.key == key for i in store.search(namespace, limit=100, refresh_ttl=False)),
        "list_namespaces": namespace in store.list_namespaces(prefix=namespace),
    }


ALL = {"get": True, "search": True, "list_namespaces": True}
NONE = {"get": False, "search": False, "list_namespaces": False}


def test_supports_ttl(place: Place) -> None:
    with place.store() as store:
        assert isinstance(store, BaseStore)
        assert store.supports_ttl is True


def test_default_ttl_with_refresh_on_read(place: Place, clock: FakeClock) -> None:
    with place.store(ttl={"default_ttl": 1, "refresh_on_read": True}, clock=clock) as store:
        store.put(("t", "read"), "a", {"v": 1})
        store.put(("t", "kept"), "b", {"v": 2})
        clock.advance(30)
        assert store.get(("t", "read"), "a") is not None  # refreshes: a now expires at 90
        assert store.get(("t", "kept"), "b", refresh_ttl=False) is not None  # b still at 60
        clock.advance(29.5)  # 59.5
        assert _visible(store, ("t", "kept"), "b") == ALL
        clock.advance(0.5)  # 60: b's expiry, exactly
        assert _visible(store, ("t", "kept"), "b") == NONE
        assert _visible(store, ("t", "read"), "a") == ALL
        assert store.list_namespaces(prefix=("t",)) == [("t", "read")]
        clock.advance(30)  # 90: a's refreshed expiry
        assert _visible(store, ("t", "read"), "a") == NONE
        assert store.search(("t",), limit=100) == []
        assert store.list_namespaces(prefix=("t",)) == []
        assert store.sweep_ttl() == 2
        assert store.sweep_ttl() == 0


def test_search_refreshes_what_it_returns(place: Place, clock: FakeClock) -> None:
    with place.store(ttl={"default_ttl": 1}, clock=clock) as store:  # refresh_on_read: True by default
        store.put(("s",), "hit", {"kind": "x"})
        store.put(("s",), "miss", {"kind": "y"})
        clock.advance(50)
        assert [i.key for i in store.search(("s",), filter={"kind": "x"})] == ["hit"]
        assert [i.key for i in store.search(("s",), filter={"kind": "y"}, refresh_ttl=False)] == ["miss"]
        clock.advance(20)  # 70: miss expired at 60; hit was moved to 110
        assert [i.key for i in store.search(("s",))] == ["hit"]
        assert store.get(("s",), "miss") is None


def test_refresh_on_read_off(place: Place, clock: FakeClock) -> None:
    with place.store(ttl={"default_ttl": 1, "refresh_on_read": False}, clock=clock) as store:
        store.put(("r",), "plain", {})
        store.put(("r",), "asked", {})
        clock.advance(40)
        assert store.get(("r",), "plain") is not None  # no refresh by default
        assert store.get(("r",), "asked", refresh_ttl=True) is not None  # asked: moved to 100
        clock.advance(25)  # 65
        assert store.get(("r",), "plain") is None
        assert store.get(("r",), "asked") is not None
        assert store.sweep_ttl() == 1


def test_per_put_ttl_and_no_ttl(place: Place, clock: FakeClock) -> None:
    with place.store(ttl={"default_ttl": 1, "refresh_on_read": False}, clock=clock) as store:
        store.put(("p",), "default", {})
        store.put(("p",), "long", {}, ttl=5)
        store.put(("p",), "short", {}, ttl=0.5)
        store.put(("p",), "forever", {}, ttl=None)  # LangGraph: None means no expiry
        clock.advance(30)
        assert store.get(("p",), "short") is None
        clock.advance(30)
        assert {i.key for i in store.search(("p",))} == {"long", "forever"}
        clock.advance(4 * MINUTE)
        assert {i.key for i in store.search(("p",))} == {"forever"}
        assert store.sweep_ttl() == 3
        clock.advance(10**6)
        assert store.get(("p",), "forever") is not None


def test_no_ttl_config(place: Place, clock: FakeClock) -> None:
    with place.store(clock=clock) as store:
        store.put(("n",), "plain", {})
        store.put(("n",), "timed", {}, ttl=1)
        clock.advance(61)
        assert store.get(("n",), "plain") is not None
        assert store.get(("n",), "timed") is None
        assert store.sweep_ttl() == 1


def test_a_put_restarts_the_ttl_and_an_expired_item_starts_afresh(place: Place, clock: FakeClock) -> None:
    with place.store(ttl={"default_ttl": 1, "refresh_on_read": False}, clock=clock) as store:
        store.put(("c",), "k", {"v": 1})
        created = store.get(("c",), "k").created_at
        clock.advance(50)
        store.put(("c",), "k", {"v": 2})  # expires at 110 now; created_at kept
        clock.advance(50)
        item = store.get(("c",), "k")
        assert item is not None and item.value == {"v": 2}
        assert item.created_at == created and item.updated_at > created
        clock.advance(20)  # 120: expired, not swept
        store.put(("c",), "k", {"v": 3})
        item = store.get(("c",), "k")
        assert item is not None and item.created_at == item.updated_at > created
        assert store.sweep_ttl() == 0


async def test_async_ttl(place: Place, clock: FakeClock) -> None:
    async with place.store(ttl={"default_ttl": 1}, clock=clock) as store:
        await store.aput(("a",), "k", {})
        await store.aput(("a",), "j", {})
        clock.advance(40)
        assert await store.aget(("a",), "k") is not None  # refreshed to 100
        clock.advance(30)
        assert await store.aget(("a",), "j") is None
        assert [i.key for i in await store.asearch(("a",))] == ["k"]
        assert await store.alist_namespaces() == [("a",)]
        assert await store.asweep_ttl() == 1
        clock.advance(60)
        assert await store.alist_namespaces() == []
        assert await store.asweep_ttl() == 1


@pytest.mark.parametrize("ttl", [-1, 0, float("inf"), float("nan"), "5", True])
def test_bad_ttls_write_nothing(place: Place, clock: FakeClock, ttl: Any) -> None:
    with place.store(clock=clock) as store:
        with pytest.raises(InvalidConfigError, match="ttl"):
            store.put(("b",), "k", {"v": 1}, ttl=ttl)
        assert store.get(("b",), "k") is None
        assert store.search(("b",)) == []


@pytest.mark.parametrize(
    "config",
    [
        {"default_ttl": -1},
        {"default_ttl": float("inf")},
        {"default_ttl": float("nan")},
        {"default_ttl": 1, "refresh_on_read": "yes"},
        {"sweep_interval_minutes": -5},
        "60",
    ],
)
def test_bad_ttl_configs(place: Place, config: Any) -> None:
    with pytest.raises(InvalidConfigError, match="ttl"):
        place.store(ttl=config)


@pytest.mark.parametrize(
    "search",
    [
        {"filter": {"n": 1}},  # not pushed down: the core filters
        {"filter": {"kind": "x"}, "limit": 1},  # pushed down and paged by the backend
        {"filter": {"n": {"$gte": 0}}, "limit": 1},  # filtered and paged by the core
        {"query": "one", "limit": 1},  # ranked by the core
    ],
    ids=["core-filter", "backend-page", "core-page", "ranked"],
)
def test_search_refreshes_only_what_it_returns(place: Place, clock: FakeClock, search: dict[str, Any]) -> None:
    index = {"dims": DIMS, "embed": fake_embed, "fields": ["text"]}
    with place.store(ttl={"default_ttl": 1}, index=index, clock=clock) as store:
        store.put(("q",), "a", {"kind": "x", "n": 1, "text": "one"})
        clock.advance(1)
        store.put(("q",), "b", {"kind": "x", "n": 2, "text": "two"})
        clock.advance(30)
        returned = [i.key for i in store.search(("q",), **search)]
        assert len(returned) == 1
        clock.advance(31)  # 62 after a, 61 after b: only a search's refresh keeps one
        kept = [i.key for i in store.search(("q",), refresh_ttl=False)]
        assert kept == returned
