"""SQLite's search pushdown (issue 15): equality and the core's number-range hints run in
SQL (``backends.sqlite.store.page_query``), with every filter key a bound parameter.

- A property test holds random items and random filters (ranges over ints, floats near
  2**53, numeric strings, booleans, nested objects, missing keys and null) to LangGraph's
  ``InMemoryStore``, limit and offset included, on both plans (a small prefix read by
  primary key, a large one walked down ``memory_items_by_update``).
- Filter keys that would change a JSON path or a statement if they were spliced in
  (quotes, ``$.x``, ``a.b``, ``[0]``, ``--``) are plain field names.
- Rows planted with raw SQL (not JSON, 1e400, nesting past SQLite's limit, a number or
  a blob where JSON text belongs) give a correct answer or a clear error, never a raw
  sqlite3 one.
- The plans themselves (EXPLAIN QUERY PLAN): a large prefix walks the index without
  sorting, a small one reads its primary-key range.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.memory import InMemoryStore, _compare_values

from langgraph_unified_store.backends.sqlite import store as sqlite_store
from langgraph_unified_store.backends.sqlite.store import SQLiteStore, page_query
from langgraph_unified_store.core.store_backend import ItemSearch
from langgraph_unified_store.core.store_rules import compile_filter
from langgraph_unified_store.errors import CorruptDataError, InvalidConfigError

from .conftest import START

INJECTIONS = ["'", '")', "$.x", "a.b", "[0]", "--", "a') OR 1=1 --", '$."a"']
FIELDS = ["a", "b", "a.b", "$.x", '")']
INNER = ["a", "c", "[0]"]
NAMESPACES = [("n", "a"), ("n", "b"), ("n", "b", "c"), ("m",)]
PREFIXES = [(), ("n",), ("n", "b"), ("m",), ("x",)]

NEAR_2_53 = [2**53 - 1, 2**53, 2**53 + 1, -(2**53) - 1, 2.0**53, 9007199254740993.0]
NUMBERS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, -1, 0.5, 1e-320, -0.0, 1e308, 2**63 - 1, 2**64 - 1, *NEAR_2_53]),
)
STRINGS = st.sampled_from(["0.5", "1e3", " 7 ", "-2", "9007199254740993", "nan", "x", "", "it's", 'q"', "\\", "é"])
LEAVES = st.one_of(NUMBERS, NUMBERS, st.booleans(), st.none(), STRINGS, st.lists(st.sampled_from([0, 1, "x"]), max_size=2))
NESTED = st.recursive(LEAVES, lambda inner: st.dictionaries(st.sampled_from(INNER), inner, max_size=3), max_leaves=5)
VALUES = st.dictionaries(st.sampled_from(FIELDS), NESTED, min_size=1, max_size=4)
OPERANDS = st.one_of(NUMBERS, st.sampled_from(["0.5", "x", "7", True, None]))
RANGE_OPERATORS = ["$gt", "$gte", "$lt", "$lte"]
OPERATORS = st.dictionaries(st.sampled_from([*RANGE_OPERATORS, "$eq", "$ne"]), OPERANDS, min_size=1, max_size=3)
CONDITIONS = st.recursive(
    st.one_of(LEAVES, OPERATORS, OPERATORS),
    lambda inner: st.dictionaries(st.sampled_from(INNER), inner, min_size=1, max_size=2),
    max_leaves=4,
)


def _near(draw: st.DrawFn, stored: Any) -> Any:
    """A condition on a field some item holds ``stored`` at: the value itself, a range
    around it (just inside, at, just outside), a range on a string, boolean or null, or
    a path into a nested object."""
    choice = draw(st.integers(0, 5))
    if choice == 0 or (choice == 5 and isinstance(stored, dict)):
        return stored
    if choice == 1 and isinstance(stored, dict) and stored:
        inner = draw(st.sampled_from(sorted(stored)))
        return {inner: _near(draw, stored[inner])}
    number = _number(stored)
    if choice in (1, 2) and number is not None:
        step = draw(st.sampled_from([0, 0, 1, -1, 0.5, 1e-9, -1e-9]))
        operand = number + step * max(1.0, abs(number)) if step else stored
        ops = draw(st.lists(st.sampled_from(RANGE_OPERATORS), min_size=1, max_size=2, unique=True))
        return {op: operand for op in ops}
    if choice == 3:
        return {draw(st.sampled_from(RANGE_OPERATORS)): draw(OPERANDS)}
    return draw(CONDITIONS)


def _number(stored: Any) -> float | None:
    """What ``float()`` reads in a stored number, numeric string or boolean (None: nothing
    finite)."""
    if isinstance(stored, (dict, list)) or stored is None:
        return None
    try:
        number = float(stored)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number == number and abs(number) != float("inf") else None


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[tuple[tuple[tuple[str, ...], str], dict[str, Any]]], list[Any]]:
    """Items (unique keys; every drawn value stored at least once) and searches whose
    filters mostly target what the items hold, under prefixes that hold them."""
    values = draw(st.lists(VALUES, min_size=1, max_size=6))
    some_namespace = st.sampled_from(NAMESPACES)
    placed = [(draw(some_namespace), n, value) for n, value in enumerate(values)]
    placed += draw(
        st.lists(st.tuples(some_namespace, st.integers(0, 60), st.sampled_from(values)), max_size=40)
    )
    items = {(ns, f"k{n:02d}"): value for ns, n, value in placed}
    stored = [(k, v) for value in values for k, v in value.items()]
    searches = []
    for _ in range(draw(st.integers(1, 4))):
        filter: dict[str, Any] = {}
        for _ in range(draw(st.sampled_from([1, 1, 2, 3]))):
            if stored and draw(st.integers(0, 4)):
                key, value = draw(st.sampled_from(stored))
                filter[key] = _near(draw, value)
            else:
                filter[draw(st.sampled_from(FIELDS))] = draw(CONDITIONS)
        namespace = draw(st.sampled_from(sorted(ns for ns, _ in items)))
        prefix = draw(st.sampled_from([(), (), namespace[:1], namespace[:1], namespace, ("x",)]))
        limit = draw(st.sampled_from([1, 2, 3, 5, 10, 10, 0]))
        searches.append((prefix, filter, limit, draw(st.sampled_from([0, 0, 1, 2, 4]))))
    return sorted(items.items(), key=lambda kv: (".".join(kv[0][0]), kv[0][1])), searches


def canonical(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def rows(items: list[Any]) -> list[tuple[tuple[str, ...], str, bytes]]:
    return [(tuple(i.namespace), i.key, canonical(i.value)) for i in items]


def expected(mem: InMemoryStore, prefix: tuple[str, ...], filter: dict[str, Any], limit: int, offset: int) -> list[Any]:
    """InMemoryStore's answer; where it raises (a range on a value float() cannot read),
    its own comparison item by item, an item it raised on counting as no match (our
    documented difference, core.store_rules)."""
    try:
        return mem.search(prefix, filter=filter, limit=limit, offset=offset)
    except (TypeError, ValueError, OverflowError):
        pass

    def matches(value: dict[str, Any]) -> bool:
        try:
            return all(_compare_values(value.get(k), w) for k, w in filter.items())
        except (TypeError, ValueError, OverflowError):
            return False

    every = [i for i in mem.search(prefix, limit=10_000) if matches(i.value)]
    return every[offset : offset + limit]


def fresh_store(folder: str, name: str = "store.sqlite") -> SQLiteStore:
    return SQLiteStore(Path(folder) / name, clock=lambda: START)


@settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=scenarios(), walk=st.booleans())
def test_pushed_down_filters_agree_with_in_memory_store(scenario: tuple[list[Any], list[Any]], walk: bool) -> None:
    """Every item is put at one time, in (namespace text, key) order: then our order
    (newest first, then namespace text, then key) is InMemoryStore's insertion order and
    a paged search must equal its page exactly."""
    ordered, searches = scenario
    mem = InMemoryStore()
    with tempfile.TemporaryDirectory() as folder, fresh_store(folder) as store, mock.patch.object(
        sqlite_store, "SMALL_PREFIX_ITEMS", 0 if walk else 10_000
    ):
        for (namespace, key), value in ordered:
            mem.put(namespace, key, value)
        store.batch(_puts(ordered))
        for prefix, filter, limit, offset in searches:
            try:
                compile_filter(filter)
            except InvalidConfigError:
                continue  # a filter our rules refuse (test_store_bad_input's)
            got = store.search(prefix, filter=filter, limit=limit, offset=offset)
            want = expected(mem, prefix, filter, limit, offset)
            assert rows(got) == rows(want), (prefix, filter, limit, offset)


@st.composite
def one_field_ranges(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Items holding leaves of every kind at one path (or nothing there), and a range
    filter on that path around what they hold."""
    path = draw(st.sampled_from([("r",), ("a.b",), ("m", "r"), ("m", "[0]", "r")]))
    leaves = draw(st.lists(st.one_of(LEAVES, st.just("missing")), min_size=1, max_size=20))
    items = []
    for leaf in leaves:
        value: Any = {} if leaf == "missing" else {path[-1]: leaf}
        for label in reversed(path[:-1]):
            value = {label: value, "other": 1}
        items.append(value)
    numbers = [n for n in map(_number, leaves) if n is not None] or [0.0]
    ops = draw(st.lists(st.sampled_from(RANGE_OPERATORS), min_size=1, max_size=2, unique=True))
    condition: Any = {}
    for op in ops:
        base = draw(st.sampled_from(numbers))
        step = draw(st.sampled_from([0, 1, -1, 1e-9, -1e-12]))
        condition[op] = base + step * max(1.0, abs(base)) if step else draw(st.sampled_from([base, str(base)]))
    for label in reversed(path[1:]):
        condition = {label: condition}
    return items, {path[0]: condition}


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=one_field_ranges(), walk=st.booleans(), limit=st.sampled_from([1, 3, 50]), offset=st.sampled_from([0, 2]))
def test_a_range_on_one_field_agrees_with_in_memory_store(
    case: tuple[list[dict[str, Any]], dict[str, Any]], walk: bool, limit: int, offset: int
) -> None:
    items, filter = case
    ordered = [((("ns",), f"k{n:02d}"), value) for n, value in enumerate(items)]
    mem = InMemoryStore()
    with tempfile.TemporaryDirectory() as folder, fresh_store(folder) as store, mock.patch.object(
        sqlite_store, "SMALL_PREFIX_ITEMS", 0 if walk else 10_000
    ):
        for (namespace, key), value in ordered:
            mem.put(namespace, key, value)
        store.batch(_puts(ordered))
        got = store.search(("ns",), filter=filter, limit=limit, offset=offset)
        assert rows(got) == rows(expected(mem, ("ns",), filter, limit, offset)), filter


def _puts(ordered: list[Any]) -> list[Any]:
    from langgraph.store.base import PutOp

    return [PutOp(namespace, key, value) for (namespace, key), value in ordered]


@pytest.mark.parametrize("walk", [False, True])
@pytest.mark.parametrize("field", INJECTIONS)
def test_injection_payloads_are_plain_field_names(tmp_path: Path, field: str, walk: bool) -> None:
    """A key that would close a quote, end the statement or change a JSON path is matched
    as the field of that exact name, for equality, ranges and nested paths alike."""
    value = {field: "yes", "a": {"b": 1}, "a.b": 5, "x": 1, "[0]": 2, "$": {"x": 3}}
    decoys = [{"a": "yes", "x": "yes"}, {"a": {"b": "yes"}}, {"$": {"x": "yes"}}]
    mem = InMemoryStore()
    with SQLiteStore(tmp_path / "s.sqlite", clock=lambda: START) as store, mock.patch.object(
        sqlite_store, "SMALL_PREFIX_ITEMS", 0 if walk else 10_000
    ):
        for n, stored in enumerate([value, *decoys]):
            store.put(("ns",), f"k{n}", stored)
            mem.put(("ns",), f"k{n}", stored)
        for filter in (
            {field: "yes"},
            {field: {"$eq": "yes"}},
            {field: {"$gt": 0}},
            {"a.b": {"$gte": 5}},
            {"a": {"b": {"$lt": 2}}},
            {"[0]": 2},
            {"$": {"x": {"$gt": 2}}},
            {"$.x": 3},
            {field: "yes", "x": 1},
        ):
            got = store.search(("ns",), filter=filter, limit=10)
            assert rows(got) == rows(expected(mem, ("ns",), filter, 10, 0)), filter


def test_a_nul_in_a_filter_key_is_refused(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        store.put(("ns",), "k", {"a": 1})
        with pytest.raises(InvalidConfigError, match="NUL"):
            store.search(("ns",), filter={"a\x00": {"$gt": 0}})


def test_a_lone_surrogate_in_a_filter_value_is_refused(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        store.put(("ns",), "k", {"a": "x"})
        with pytest.raises(InvalidConfigError, match="surrogate"):
            store.search(("ns",), filter={"a": "\ud800"})


def test_many_keys_and_deep_paths_keep_a_bounded_statement(tmp_path: Path) -> None:
    """A thousand equality keys and more stay under SQLite's expression depth (1000); range
    hints past the pushed bounds are left to the core, which still decides."""
    value = {f"f{i}": "v" for i in range(1200)}
    deep: dict[str, Any] = {"n": 5}
    wanted: dict[str, Any] = {"n": {"$gt": 4}}
    for _ in range(40):
        deep, wanted = {"d": deep}, {"d": wanted}
    value["deep"] = deep
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        store.put(("ns",), "k", value)
        store.put(("ns",), "other", {"f1": "v"})
        filter = {f"f{i}": "v" for i in range(1200)}
        assert [i.key for i in store.search(("ns",), filter=filter)] == ["k"]
        assert [i.key for i in store.search(("ns",), filter={"deep": wanted})] == ["k"]
        ranges = {f"f{i}": {"$gt": 0} for i in range(100)}
        assert store.search(("ns",), filter=ranges) == []


PLANTED = {
    "not_json": "not json {",
    "infinite": '{"score": 1e400, "kind": "fact"}',
    "huge_int": '{"score": 123456789012345678901234567890, "kind": "fact"}',
    "too_deep_for_sqlite": '{"kind": "fact", "a": ' + "[" * 2100 + "]" * 2100 + "}",
    "deep": '{"kind": "fact", "score": 0.9, "a": ' + "[" * 1500 + "]" * 1500 + "}",
    "escaped": '{"kind": "f\\u0061ct", "score": 0.9}',
}


def _plant(path: Path, key: str, value: Any) -> None:
    db = sqlite3.connect(path)
    try:
        with db:
            db.execute(
                "INSERT INTO memory_items (namespace, key, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                ("ns", key, value, START + 1, START + 1),
            )
    finally:
        db.close()


@pytest.mark.parametrize("walk", [False, True])
@pytest.mark.parametrize(
    "planted", [*PLANTED.values(), 42, 0.5, b'{"kind": "fact"}'], ids=[*PLANTED, "int", "real", "blob"]
)
def test_planted_rows_give_an_answer_or_our_error(tmp_path: Path, planted: Any, walk: bool) -> None:
    path = tmp_path / "s.sqlite"
    with SQLiteStore(path, clock=lambda: START) as store:
        store.put(("ns",), "good", {"kind": "fact", "score": 0.75})
    _plant(path, "planted", planted)
    with SQLiteStore(path, clock=lambda: START) as store, mock.patch.object(
        sqlite_store, "SMALL_PREFIX_ITEMS", 0 if walk else 10_000
    ):
        for filter in (None, {"kind": "fact"}, {"score": {"$gt": 0.5}}, {"a": {"b": {"$lt": 1}}}):
            try:
                found = store.search(("ns",), filter=filter, limit=10)
            except sqlite3.Error as exc:  # pragma: no cover - what this test exists to catch
                pytest.fail(f"raw {type(exc).__name__} for {filter}: {exc}")
            except CorruptDataError:
                continue
            except orjson.JSONDecodeError:
                # the core decoding a returned value Python cannot read (core.store_rules
                # decode_value raises orjson's error as it is): not SQLite's
                continue
            keys = {i.key for i in found}
            assert "good" in keys or filter == {"a": {"b": {"$lt": 1}}}, (filter, keys)
            if planted == PLANTED["escaped"] and filter == {"kind": "fact"}:
                assert keys == {"good", "planted"}  # an escape still equals "fact"


def test_unreadable_json_names_the_item(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with SQLiteStore(path) as store:
        store.put(("ns",), "good", {"kind": "fact"})
    _plant(path, "bad", '{"kind": "fact"')
    with SQLiteStore(path) as store, pytest.raises(CorruptDataError, match=r"\('ns',\) / 'bad'"):
        store.search(("ns",), filter={"kind": "fact"})


# -- the plans -------------------------------------------------------------------------------


def _plan(db: sqlite3.Connection, search: ItemSearch) -> list[str]:
    statement, params = page_query(db, search)
    return [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + statement, params)]


@pytest.fixture(scope="module")
def big_store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 items in 20 namespaces under ("memories",), and 100 under ("small",)."""
    path = tmp_path_factory.mktemp("plans") / "plans.sqlite"
    now = [START]

    def clock() -> float:
        now[0] += 1
        return now[0]

    with SQLiteStore(path, clock=clock) as store:
        for n in range(1500):
            store.put(("memories", f"g{n % 20}"), f"k{n}", {"kind": "fact", "user": f"u{n % 7}", "score": n / 1500})
        for n in range(100):
            store.put(("small",), f"k{n}", {"kind": "fact", "score": 0.5})
    return path


@pytest.mark.parametrize(
    "filter", [{"kind": "fact", "user": "u3"}, {"score": {"$gt": 0.5}}, {"m": {"n": {"$lt": 1}}}, None]
)
@pytest.mark.parametrize("prefix", [("memories",), ()])
def test_a_large_prefix_walks_the_update_index_without_sorting(
    big_store_file: Path, prefix: tuple[str, ...], filter: dict[str, Any] | None
) -> None:
    db = sqlite3.connect(big_store_file)
    try:
        search = ItemSearch(prefix=prefix, filter=compile_filter(filter), offset=0, limit=10, now=START)
        plan = _plan(db, search)
    finally:
        db.close()
    assert plan[0] == "SCAN u USING COVERING INDEX memory_items_by_update", plan
    assert plan[1] == "SEARCH m USING PRIMARY KEY (namespace=? AND key=?)", plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_a_small_prefix_reads_its_primary_key_range(big_store_file: Path) -> None:
    db = sqlite3.connect(big_store_file)
    try:
        search = ItemSearch(prefix=("small",), filter=compile_filter({"kind": "fact"}), offset=0, limit=10, now=START)
        plan = _plan(db, search)
    finally:
        db.close()
    assert any("SEARCH m USING PRIMARY KEY (namespace>? AND namespace<?)" in step for step in plan), plan
    assert not any("memory_items_by_update" in step for step in plan), plan


def test_both_plans_page_alike(big_store_file: Path) -> None:
    """The walk and the primary-key read return the same pages (the core's order)."""
    with SQLiteStore(big_store_file) as store:
        for filter in ({"kind": "fact", "user": "u3"}, {"score": {"$gt": 0.4, "$lte": 0.6}}, None):
            pages = []
            for threshold in (0, 10**9):
                with mock.patch.object(sqlite_store, "SMALL_PREFIX_ITEMS", threshold):
                    pages.append(
                        [(tuple(i.namespace), i.key) for i in store.search(("memories",), filter=filter, limit=7, offset=45)]
                    )
            assert pages[0] == pages[1] and len(pages[0]) == 7, filter
