"""MemoryStore's fast paths held to what they replace.

- Searches walk the items newest first and stop at the page; a model that sorts every
  live item (``unranked_order``) must give the same pages, with a clock that stands still,
  steps forward and goes back (the order then goes stale and is rebuilt).
- ``get``/``put``/``delete`` (sync and async) skip BaseStore's batch once a namespace is
  known; they must refuse exactly what, and as, the batch path refuses, and return what
  it returns.
- Nothing returned aliases what is stored: not the dict given to ``put``, not a value
  returned by ``get`` or ``search``, not the values a filtered search keeps decoded.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.base import BaseStore, GetOp, PutOp, SearchOp

from langgraph_unified_store.backends.memory_store import MemoryStore
from langgraph_unified_store.core.store import _item
from langgraph_unified_store.core.store_backend import StoredItem
from langgraph_unified_store.core.store_rules import compile_filter, unranked_order

from .conftest import START, FakeClock

NAMESPACES = [("a",), ("a", "b"), ("a", "c"), ("b",)]
KEYS = ["k1", "k2", "k3", "k4"]
VALUES = st.fixed_dictionaries({"n": st.integers(0, 3), "s": st.sampled_from(["x", "y"])})
STEPS = st.sampled_from([0.0, 0.0, 1.0, 2.5, -1.0, -3.0])
FILTERS = st.sampled_from([None, {"s": "x"}, {"n": {"$gte": 2}}, {"s": "y", "n": 1}, {"n": {"$ne": 0}}])
PREFIXES = st.sampled_from([(), ("a",), ("a", "b"), ("b",), ("c",)])


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    ops: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(["put", "put", "put", "delete", "batch", "search", "search"]))
        step = draw(STEPS)
        if kind == "put":
            ops.append((kind, step, draw(st.sampled_from(NAMESPACES)), draw(st.sampled_from(KEYS)), draw(VALUES)))
        elif kind == "delete":
            ops.append((kind, step, draw(st.sampled_from(NAMESPACES)), draw(st.sampled_from(KEYS))))
        elif kind == "batch":
            puts = draw(
                st.lists(st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(KEYS), VALUES), min_size=1, max_size=4)
            )
            ops.append((kind, step, puts))
        else:
            ops.append((kind, step, draw(PREFIXES), draw(FILTERS), draw(st.integers(0, 5)), draw(st.integers(0, 3))))
    return ops


def _expected(model: dict[Any, tuple[dict[str, Any], float]], prefix: tuple[str, ...], filter: Any,
              limit: int, offset: int) -> list[tuple[tuple[str, ...], str]]:
    compiled = compile_filter(filter)
    keys = [
        key for key, (value, _) in model.items() if key[0][: len(prefix)] == prefix and compiled.matches(value)
    ]
    keys.sort(key=lambda k: unranked_order(model[k][1], k[0], k[1]))
    return keys[offset : offset + limit]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_pages_match_a_full_sort_whatever_the_clock_does(ops: list[tuple[Any, ...]]) -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    model: dict[Any, tuple[dict[str, Any], float]] = {}
    for op in ops:
        kind, step = op[0], op[1]
        clock.advance(step)
        if kind == "put":
            _, _, namespace, key, value = op
            store.put(namespace, key, value)
            model[(namespace, key)] = (value, clock())
        elif kind == "delete":
            _, _, namespace, key = op
            store.delete(namespace, key)
            model.pop((namespace, key), None)
        elif kind == "batch":
            store.batch([PutOp(namespace, key, value) for namespace, key, value in op[2]])
            for namespace, key, value in op[2]:
                model[(namespace, key)] = (value, clock())
        else:
            _, _, prefix, filter, limit, offset = op
            got = store.search(prefix, filter=filter, limit=limit, offset=offset)
            assert [(i.namespace, i.key) for i in got] == _expected(model, prefix, filter, limit, offset)
            for item in got:
                assert item.value == model[(item.namespace, item.key)][0]
                assert item.updated_at.timestamp() == model[(item.namespace, item.key)][1]


def test_a_put_keeps_created_at_and_moves_the_item_first() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    store.put(("a",), "old", {"v": 1})
    clock.advance(1)
    store.put(("a",), "new", {"v": 2})
    clock.advance(1)
    store.put(("a",), "old", {"v": 3})
    got = store.search(("a",), limit=1)
    assert [i.key for i in got] == ["old"]
    assert got[0].created_at.timestamp() == START and got[0].updated_at.timestamp() == START + 2


def test_nothing_returned_aliases_what_is_stored() -> None:
    store = MemoryStore()
    given_value: dict[str, Any] = {"s": "x", "tags": ["a"], "inner": {"n": 1}}
    store.put(("a",), "k", given_value)
    given_value["tags"].append("changed")
    given_value["inner"]["n"] = 2
    given_value["s"] = "y"
    for item in [store.get(("a",), "k"), *store.search(("a",), filter={"s": "x"})]:
        assert item is not None
        assert item.value == {"s": "x", "tags": ["a"], "inner": {"n": 1}}
        item.value["tags"].append("mutated")
        item.value["inner"]["n"] = 3
        item.value.clear()
    again = asyncio.run(store.aget(("a",), "k"))
    assert again is not None and again.value == {"s": "x", "tags": ["a"], "inner": {"n": 1}}
    assert [i.value for i in store.search(("a",), filter={"s": "x"})] == [again.value]


def test_an_item_is_built_as_item_builds_it() -> None:
    from langgraph.store.base import Item

    stored = StoredItem(("a", "b"), "k", b'{"n":1}', START, START + 1)
    built = _item(stored)
    assert type(built) is Item
    assert built == Item(value={"n": 1}, key="k", namespace=("a", "b"), created_at=built.created_at,
                         updated_at=built.updated_at)
    assert built.created_at.timestamp() == START and built.updated_at.timestamp() == START + 1
    assert built.created_at.tzinfo is not None
    assert built.dict()["namespace"] == ["a", "b"]


BAD_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("get", (("a",), "k\x00"), {}),
    ("get", (("a.b",), "k"), {}),
    ("get", (("",), "k"), {}),
    ("get", ((), "k"), {}),
    ("get", (["a"], "k"), {}),
    ("get", (("langgraph",), "k"), {}),
    ("get", (("a", 1), "k"), {}),
    ("put", (("a",), "k", {"x": float("nan")}), {}),
    ("put", (("a",), "k", ["not", "a", "dict"]), {}),
    ("put", (("a",), "k", {"x": object()}), {}),
    ("put", (("a",), "k\ud800", {"x": 1}), {}),
    ("put", (("a",), "k", {"x": 1}), {"ttl": -1}),
    ("put", (("a",), "k", {"x": 1}), {"index": "text"}),
    ("put", (("langgraph",), "k", {"x": 1}), {}),
    ("put", ((), "k", {"x": 1}), {}),
    ("delete", (("a",), "k\x00"), {}),
    ("delete", (("a.b",), "k"), {}),
    ("delete", ((), "k"), {}),
]


def _outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except Exception as exc:
        return (type(exc), str(exc))


@pytest.mark.parametrize(("method", "args", "kwargs"), BAD_CALLS)
def test_the_fast_paths_refuse_as_the_batch_path_does(method: str, args: tuple[Any, ...], kwargs: Any) -> None:
    store = MemoryStore()
    store.put(("a",), "known", {"x": 1})  # ("a",) is now known: its calls take the fast path
    fast = _outcome(lambda: getattr(store, method)(*args, **kwargs))
    batch = _outcome(lambda: getattr(BaseStore, method)(store, *args, **kwargs))
    assert fast == batch and fast[0] != "ok"
    afast = _outcome(lambda: asyncio.run(getattr(store, f"a{method}")(*args, **kwargs)))
    abatch = _outcome(lambda: asyncio.run(getattr(BaseStore, f"a{method}")(store, *args, **kwargs)))
    assert afast == abatch == fast


def test_the_fast_paths_return_what_the_batch_returns() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock, ttl={"default_ttl": 1.0})
    store.put(("a",), "k", {"x": 1})
    assert store.get(("a",), "k") == store.batch([GetOp(("a",), "k")])[0]
    assert asyncio.run(store.aget(("a",), "k")) == store.get(("a",), "k")
    clock.advance(30)
    store.get(("a",), "k")  # refreshes the default ttl (refresh_on_read)
    clock.advance(45)
    assert store.get(("a",), "k", refresh_ttl=False) is not None
    clock.advance(20)
    assert store.get(("a",), "k") is None
    store.put(("a",), 7, {"x": 2})  # type: ignore[arg-type]  # BaseStore makes it "7"
    assert asyncio.run(store.aget(("a",), 7)) == store.get(("a",), "7")  # type: ignore[arg-type]
    asyncio.run(store.adelete(("a",), "7"))
    assert store.batch([GetOp(("a",), "7"), SearchOp(("a",))]) == [None, []]


def test_the_fast_paths_refuse_in_a_running_loop_and_after_close() -> None:
    from langgraph_unified_store.errors import SaverClosedError, SyncCallInEventLoopError

    store = MemoryStore()
    store.put(("a",), "k", {"x": 1})

    async def inside() -> None:
        with pytest.raises(SyncCallInEventLoopError):
            store.get(("a",), "k")
        with pytest.raises(SyncCallInEventLoopError):
            store.put(("a",), "k", {"x": 2})

    asyncio.run(inside())
    store.close()
    for call in (lambda: store.get(("a",), "k"), lambda: store.put(("a",), "k", {"x": 2})):
        with pytest.raises(SaverClosedError):
            call()
    with pytest.raises(SaverClosedError):
        asyncio.run(store.aget(("a",), "k"))
