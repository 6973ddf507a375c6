"""Random sequences of store operations on each backend and on LangGraph's
``InMemoryStore``, compared result by result.

Our documented differences (``core.store_rules``) are compared as such:
- an unranked search without paging is compared as a set of (namespace, key, value);
  a paged one must be exactly the slice of the full matching set in our order (newest
  ``updated_at`` first, then namespace text, then key), the times coming from a model of
  the test clock (a put keeps ``created_at`` of an existing item);
- a range operator on a value that is not a number matches nothing here, where
  ``InMemoryStore`` raises: when it raises, the expected matches are its own comparison
  run item by item, an item it raised on counting as no match;
- ``InMemoryStore`` keeps listing a namespace whose items were all deleted (or that a
  ``get`` merely looked up); ours lists only namespaces holding an item, so empty ones are
  pruned from the reference before it lists.

Labels, keys and value keys are chosen to catch pushed-down queries that splice text or
patterns: SQL LIKE wildcards, glob characters, Redis hash tags, quotes, JSON-path syntax,
and JSON text that equals another value's encoding (``'{"n":1}'``, ``'1'``, ``'true'``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.base import GetOp, Item, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore, _compare_values

from ..support import unique
from .conftest import BACKENDS, START, FakeClock, Place, new_place

LABELS = ["a", "ab", "_", "%", "*", "{t}", "x:y", "it's"]
KEYS = ["k", "kk", "k%", "_", "{k}", "*", "é'\""]
VALUE_KEYS = ["n", "s", "a.b", "$.x", "a') OR 1=1 --", 'x" OR "1"="1', "a\\'b"]
INNER_KEYS = ["n", "s"]

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([-1, 0, 1, 2, 2**40]),
    st.sampled_from([0.5, 1.0, -1.5, 2.5]),
    st.sampled_from(["", "x", "1", "2.5", "true", "null", '{"n":1}', "[1]", "it's", 'q"', "é", "%"]),
)
NESTED = st.dictionaries(st.sampled_from(INNER_KEYS), SCALARS, max_size=2)
VALUES = st.dictionaries(
    st.sampled_from(VALUE_KEYS),
    st.one_of(SCALARS, SCALARS, NESTED, st.lists(SCALARS, max_size=2)),
    max_size=3,
)
NAMESPACES = st.lists(st.sampled_from(LABELS), min_size=1, max_size=3).map(tuple)
NUMBERS = st.one_of(st.sampled_from([-1, 0, 1, 2, 2.5, 2**40]), st.sampled_from(["1", "2.5"]))
RANDOM_CONDITIONS = st.one_of(
    SCALARS,
    NESTED,
    st.lists(SCALARS, max_size=2),
    st.dictionaries(st.sampled_from(["$eq", "$ne"]), SCALARS, min_size=1, max_size=1),
    st.dictionaries(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), NUMBERS, min_size=1, max_size=2),
)
TICKS = st.sampled_from([0, 0, 1])
PAGING = st.one_of(st.just(None), st.tuples(st.integers(0, 3), st.integers(0, 3)))
RANGE = st.sampled_from(["$gt", "$gte", "$lt", "$lte"])


def _near(draw: st.DrawFn, stored: Any) -> Any:
    """A condition on a key that some put stored ``stored`` under: often a match, often
    a near miss (its JSON text, its str, another type, a range around it)."""
    choice = draw(st.integers(0, 7))
    if choice == 0:
        return stored
    if choice == 1:
        return orjson.dumps(stored).decode()
    if choice == 2:
        return str(stored)
    if choice == 3:
        return {draw(st.sampled_from(["$eq", "$ne"])): stored}
    if choice == 4 and isinstance(stored, dict) and stored:
        inner = draw(st.sampled_from(sorted(stored)))
        return {inner: _near(draw, stored[inner])}
    if choice == 5 and isinstance(stored, (int, float)):
        return {draw(RANGE): stored + draw(st.sampled_from([-1, 0, 0.5]))}
    if choice == 6 and isinstance(stored, str):
        return {draw(RANGE): stored}
    return draw(RANDOM_CONDITIONS)


@st.composite
def scenarios(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """A list of operations whose puts draw from a few values, and whose filters are
    often built from those values (so they match, or nearly)."""
    values = draw(st.lists(VALUES, min_size=1, max_size=4))
    stored = [(k, v) for value in values for k, v in value.items()]
    namespaces = draw(st.lists(NAMESPACES, min_size=1, max_size=4))
    some_ns = st.sampled_from(namespaces)
    some_value = st.sampled_from(values)
    some_key = st.sampled_from(KEYS)

    def a_filter() -> dict[str, Any] | None:
        kind = draw(st.integers(0, 3))
        if kind == 0:
            return None
        if kind == 1 or not stored:
            return draw(st.dictionaries(st.sampled_from(VALUE_KEYS), RANDOM_CONDITIONS, min_size=1, max_size=2))
        filter: dict[str, Any] = {}
        for _ in range(draw(st.integers(1, 2))):
            key, value = draw(st.sampled_from(stored))
            filter[key] = _near(draw, value)
        return filter

    def a_prefix() -> tuple[str, ...]:
        namespace = draw(some_ns)
        return namespace[: draw(st.integers(0, len(namespace)))] + tuple(
            draw(st.lists(st.sampled_from(LABELS), max_size=1))
        )

    ops: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 20))):
        kind = draw(st.sampled_from(["put", "put", "put", "delete", "get", "search", "search", "list", "batch"]))
        tick = draw(TICKS)
        if kind == "put":
            ops.append((kind, tick, draw(some_ns), draw(some_key), draw(some_value)))
        elif kind in ("delete", "get"):
            ops.append((kind, tick, draw(some_ns), draw(some_key)))
        elif kind == "search":
            ops.append((kind, tick, a_prefix(), a_filter(), draw(PAGING)))
        elif kind == "list":
            wild = st.lists(st.sampled_from([*LABELS, "*"]), min_size=1, max_size=2).map(tuple)
            ops.append((
                kind,
                tick,
                draw(st.one_of(st.just(a_prefix()), wild)),
                draw(st.one_of(st.none(), wild, some_ns.map(lambda ns: ns[-1:]))),
                draw(st.one_of(st.none(), st.integers(1, 4))),
                draw(st.sampled_from([(100, 0), (2, 0), (2, 1), (1, 3)])),
            ))
        else:
            ops.append((kind, tick, draw(some_ns), draw(some_key), draw(some_value), draw(VALUES)))
    return ops


EVERYTHING = 1000


def canonical(value: dict[str, Any]) -> bytes:
    """A value's exact JSON (1, 1.0 and true differ), keys sorted."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _safe_match(value: dict[str, Any], filter: dict[str, Any]) -> bool:
    """InMemoryStore's own comparison of one item; an item it raises on is no match."""
    try:
        return all(_compare_values(value.get(key), wanted) for key, wanted in filter.items())
    except (ValueError, TypeError):
        return False


@dataclass
class Times:
    created: float
    updated: float


class Differential:
    """One example: our store and a fresh InMemoryStore under one fresh root label."""

    def __init__(self, ours: Any, clock: FakeClock) -> None:
        self.ours = ours
        self.clock = clock
        self.mem = InMemoryStore()
        self.root = unique("r")
        self.times: dict[tuple[tuple[str, ...], str], Times] = {}

    def ns(self, labels: tuple[str, ...]) -> tuple[str, ...]:
        return (self.root, *labels)

    def _prune(self) -> None:
        for namespace in [ns for ns, items in self.mem._data.items() if not items]:
            del self.mem._data[namespace]

    def _written(self, namespace: tuple[str, ...], key: str, value: dict[str, Any] | None) -> None:
        now = self.clock()
        if value is None:
            self.times.pop((namespace, key), None)
            return
        old = self.times.get((namespace, key))
        self.times[(namespace, key)] = Times(now if old is None else old.created, now)

    def check_times(self, item: Item, what: str) -> None:
        for stamp in (item.created_at, item.updated_at):
            assert isinstance(stamp, datetime) and stamp.tzinfo is not None, (what, stamp)
        assert item.created_at <= item.updated_at, what
        want = self.times[(tuple(item.namespace), item.key)]
        assert item.created_at.timestamp() == pytest.approx(want.created, abs=1e-3), (what, "created_at")
        assert item.updated_at.timestamp() == pytest.approx(want.updated, abs=1e-3), (what, "updated_at")

    def run(self, op: tuple[Any, ...]) -> None:
        kind, tick = op[0], op[1]
        self.clock.advance(tick)
        getattr(self, f"do_{kind}")(*op[2:])

    def do_put(self, labels: tuple[str, ...], key: str, value: dict[str, Any]) -> None:
        namespace = self.ns(labels)
        self.ours.put(namespace, key, value)
        self.mem.put(namespace, key, value)
        self._written(namespace, key, value)

    def do_delete(self, labels: tuple[str, ...], key: str) -> None:
        namespace = self.ns(labels)
        self.ours.delete(namespace, key)
        self.mem.delete(namespace, key)
        self._written(namespace, key, None)

    def do_get(self, labels: tuple[str, ...], key: str) -> None:
        namespace = self.ns(labels)
        self._compare_get(self.ours.get(namespace, key), self.mem.get(namespace, key), f"get {namespace} {key!r}")

    def _compare_get(self, got: Item | None, want: Item | None, what: str) -> None:
        if want is None:
            assert got is None, (what, "expected None", got)
            return
        assert got is not None, (what, "expected", want)
        assert (tuple(got.namespace), got.key, canonical(got.value)) == (
            tuple(want.namespace), want.key, canonical(want.value)
        ), what
        self.check_times(got, what)

    def _expected(self, prefix: tuple[str, ...], filter: dict[str, Any] | None) -> list[Any]:
        try:
            return self.mem.search(prefix, filter=filter, limit=EVERYTHING)
        except (ValueError, TypeError):
            assert filter is not None
            every = self.mem.search(prefix, limit=EVERYTHING)
            return [item for item in every if _safe_match(item.value, filter)]

    def _order(self, item: Any) -> tuple[float, str, str]:
        return (-self.times[(tuple(item.namespace), item.key)].updated, ".".join(item.namespace), item.key)

    def do_search(
        self, labels: tuple[str, ...], filter: dict[str, Any] | None, paging: tuple[int, int] | None
    ) -> None:
        prefix = self.ns(labels)
        what = f"search {prefix} filter={filter!r} paging={paging}"
        want = self._expected(prefix, filter)
        if paging is None:
            got = self.ours.search(prefix, filter=filter, limit=EVERYTHING)
        else:
            limit, offset = paging
            got = self.ours.search(prefix, filter=filter, limit=limit, offset=offset)
        rows = [(tuple(i.namespace), i.key, canonical(i.value)) for i in got]
        for item in got:
            assert item.score is None, what
            self.check_times(item, what)
        ordered = sorted(want, key=self._order)
        if paging is None:
            assert len(rows) == len(set(rows)), (what, "duplicates", rows)
            assert set(rows) == {(tuple(i.namespace), i.key, canonical(i.value)) for i in want}, what
        else:
            ordered = ordered[offset : offset + limit]
        assert rows == [(tuple(i.namespace), i.key, canonical(i.value)) for i in ordered], what

    def do_list(
        self,
        prefix: tuple[str, ...],
        suffix: tuple[str, ...] | None,
        max_depth: int | None,
        paging: tuple[int, int],
    ) -> None:
        limit, offset = paging
        options: dict[str, Any] = {"prefix": self.ns(prefix), "suffix": suffix, "max_depth": max_depth}
        self._prune()
        want = self.mem.list_namespaces(**options, limit=limit, offset=offset)
        got = self.ours.list_namespaces(**options, limit=limit, offset=offset)
        assert [tuple(ns) for ns in got] == want, f"list_namespaces {options} limit={limit} offset={offset}"

    def do_batch(self, labels: tuple[str, ...], key: str, first: dict[str, Any], last: dict[str, Any]) -> None:
        """Reads in a batch see the store as it was before it; the last put of a key wins."""
        namespace = self.ns(labels)
        ops = [
            PutOp(namespace, key, first),
            GetOp(namespace, key),
            SearchOp((self.root,), limit=EVERYTHING),
            PutOp(namespace, key, last),
        ]
        got = self.ours.batch(ops)
        want = self.mem.batch(ops)
        what = f"batch on {namespace} {key!r}"
        self._compare_get(got[1], want[1], what)
        assert {(tuple(i.namespace), i.key, canonical(i.value)) for i in got[2]} == {
            (tuple(i.namespace), i.key, canonical(i.value)) for i in want[2]
        }, what
        for item in got[2]:
            self.check_times(item, what)
        self._written(namespace, key, last)
        self.do_get(labels, key)


@pytest.fixture(scope="module", params=BACKENDS)
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, FakeClock]]:
    """One store per backend for every example (each under its own root label)."""
    place: Place = new_place(str(request.param), tmp_path_factory.mktemp("differential"))
    clock = FakeClock()
    store = place.store(clock=clock)
    try:
        yield store, clock
    finally:
        store.close()
        place.drop()


_examples = itertools.count()


@settings(
    max_examples=int(os.environ.get("LUS_STORE_EXAMPLES", "100")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(ops=scenarios())
def test_random_operations_agree_with_langgraph_reference(shared: tuple[Any, FakeClock], ops: list[Any]) -> None:
    store, clock = shared
    clock.now = START + 1000 * next(_examples)
    differential = Differential(store, clock)
    for op in ops:
        differential.run(op)
    differential.do_search((), None, None)
    differential.do_list((), None, None, (100, 0))


def test_shared_fixture_is_not_cross_example(shared: tuple[Any, FakeClock], tmp_path: Path) -> None:
    """Two roots on one store do not see each other (what every example relies on)."""
    store, clock = shared
    one, two = Differential(store, clock), Differential(store, clock)
    one.do_put(("a",), "k", {"n": 1})
    assert store.search((two.root,), limit=EVERYTHING) == []
    assert store.list_namespaces(prefix=(two.root,)) == []
