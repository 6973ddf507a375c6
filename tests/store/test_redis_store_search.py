"""RedisStore's searches with the filter pushed down (store_search.lua): random items and
filters give exactly what LangGraph's InMemoryStore matches, in our order and pages, on
both of the script's walks (the recent index, and the names index it falls back to);
values the script cannot read never make it fail; deletes, expiry and the sweep keep the
recent index exactly the names index's fields; a store written before the recent index
existed is upgraded by setup."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.base import PutOp
from langgraph.store.memory import InMemoryStore, _compare_values

from langgraph_unified_store.backends.redis.store import RedisStore
from langgraph_unified_store.backends.redis.store_keys import item_field, store_keys
from langgraph_unified_store.core.store_backend import ItemSearch
from langgraph_unified_store.core.store_rules import (
    CompiledFilter,
    NumberRange,
    compile_filter,
    namespace_text,
    unranked_order,
)
from langgraph_unified_store.errors import CorruptDataError

from ..support import REDIS_URL, unique
from .conftest import START, FakeClock, Place, new_place

pytestmark = pytest.mark.redis

NAMESPACES = [("a",), ("a", "b"), ("a", "b", "c"), ("ab",), ("b",), ("b", "x")]
PREFIXES = [(), (), (), ("a",), ("a",), ("a", "b"), ("ab",), ("b",), ("c",), ("a", "b", "c")]
KEYS = ["k0", "k1", "k2", "K", "k.1", "é"]

small_numbers = st.sampled_from([-2, -1, 0, 0.5, 1, 1.5, 2, 3, -0.0, 0.1 + 0.2, 0.3, 2**53, 2**53 + 1])
numbers = st.one_of(
    small_numbers,
    small_numbers,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e-320, 1e308, -1e308]),
)
numeric_texts = st.sampled_from(["0.5", "3", "-2", "1e3", " 7 ", "nan", "inf", "x", ""])
leaves = st.one_of(
    small_numbers, small_numbers, small_numbers, numbers, st.booleans(), st.none(), numeric_texts,
    st.sampled_from(["fact", "u7", 'a"b', "c\\d", "\n", "é"]),
)
fields = st.sampled_from(["n", "m", "kind"])
values = st.dictionaries(
    fields,
    st.one_of(leaves, leaves, leaves, st.dictionaries(fields, leaves, max_size=2), st.lists(numbers, max_size=2)),
    max_size=3,
)
operands = st.one_of(small_numbers, small_numbers, numbers, numeric_texts, st.booleans(), st.none())
operators = st.dictionaries(
    st.sampled_from(["$gt", "$gte", "$lt", "$lte", "$eq", "$ne"]), operands, min_size=1, max_size=2
)
conditions = st.one_of(
    st.sampled_from(["fact", "u7", "0.5", "3", 'a"b', "c\\d", "\n", "é"]),
    small_numbers,
    st.booleans(),
    operators,
    operators,
    st.dictionaries(fields, st.one_of(operators, small_numbers, st.sampled_from(["fact"])), min_size=1, max_size=2),
)
some_filters = st.dictionaries(fields, conditions, min_size=1, max_size=2)
filters = st.one_of(st.none(), some_filters, some_filters, some_filters)
puts = st.lists(
    st.tuples(
        st.sampled_from(NAMESPACES),
        st.sampled_from(KEYS),
        values,
        st.integers(min_value=0, max_value=3),  # seconds after START: ties are common
        st.sampled_from([None, None, 1.0]),  # ttl in minutes
    ),
    min_size=4,
    max_size=30,
)
def _leaves(value: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every (path of object keys, leaf) of a value, as a filter can name them."""
    if isinstance(value, dict):
        return [found for key, inner in value.items() for found in _leaves(inner, (*path, key))]
    return [] if isinstance(value, list) or not path else [(path, value)]


def _around(path: tuple[str, ...], leaf: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Filters on one stored leaf that match it, or just miss: equality, and operators
    with operands at, near, or spelled as text of the leaf."""
    if isinstance(leaf, (int, float)) and not isinstance(leaf, bool):
        near = st.sampled_from([0, 0, -1, -0.5, 0.5, 1]).map(lambda d: leaf + d)
        operand = st.one_of(near, near, st.just(str(leaf)), operands)
    else:
        operand = st.one_of(st.just(leaf), st.sampled_from([0, 0.5, 1, "0.5", -1]), operands)
    condition = st.one_of(
        st.just(leaf),
        st.dictionaries(st.sampled_from(["$gt", "$gte", "$lt", "$lte", "$eq", "$ne"]), operand, min_size=1, max_size=2),
    )

    def nest(wanted: Any) -> dict[str, Any]:
        for label in reversed(path):
            wanted = {label: wanted}
        return dict(wanted)

    return condition.map(nest)


def _searches(puts: list[Any]) -> st.SearchStrategy[list[Any]]:
    """Searches with random filters, and many built around a stored value under one of
    its namespace's prefixes (random ones seldom match anything)."""
    spots = [(ns, *found) for ns, _, value, _, _ in puts for found in _leaves(value)]
    page = st.tuples(st.integers(min_value=0, max_value=4), st.integers(min_value=1, max_value=12))
    random_ones = st.tuples(st.sampled_from(PREFIXES), filters, page)
    if spots:
        around = st.sampled_from(spots).flatmap(
            lambda spot: st.tuples(
                st.integers(min_value=0, max_value=len(spot[0])).map(lambda n: spot[0][:n]),
                _around(spot[1], spot[2]),
                page,
            )
        )
        random_ones = st.one_of(random_ones, around, around, around)
    return st.lists(random_ones.map(lambda s: (s[0], s[1], *s[2])), min_size=1, max_size=5)


def _reference_match(value: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    """InMemoryStore's own comparison, with our documented difference: where it raises
    (``float()`` of a value that is no number), the item does not match."""
    if not filter:
        return True
    try:
        return all(_compare_values(value.get(key), wanted) for key, wanted in filter.items())
    except (TypeError, ValueError, OverflowError):
        return False


def _expected(
    stored: dict[tuple[tuple[str, ...], str], tuple[dict[str, Any], float]],
    reference: InMemoryStore,
    prefix: tuple[str, ...],
    filter: dict[str, Any] | None,
    offset: int,
    limit: int,
) -> list[tuple[tuple[str, ...], str, dict[str, Any]]]:
    matched = {
        (ns, key)
        for (ns, key), (value, _) in stored.items()
        if ns[: len(prefix)] == prefix and _reference_match(value, filter)
    }
    try:
        official = reference.search(prefix, filter=filter, limit=10_000)
    except (TypeError, ValueError, OverflowError):
        pass  # it raised on a value float() cannot read: the per-item reference decides
    else:
        assert {(i.namespace, i.key) for i in official} == matched
    ordered = sorted(matched, key=lambda nk: unranked_order(stored[nk][1], nk[0], nk[1]))
    return [(ns, key, stored[(ns, key)][0]) for ns, key in ordered][offset : offset + limit]


def _kept_by_hint(hint: NumberRange, value: dict[str, Any]) -> bool:
    """NumberRange's rule: a string or a boolean at the path, or a number in bounds."""
    found: Any = value
    for label in hint.path:
        found = found.get(label) if isinstance(found, dict) else None
    if isinstance(found, (str, bool)):
        return True
    if not isinstance(found, (int, float)):
        return False
    number = float(found)
    return (hint.low is None or number >= hint.low) and (hint.high is None or number <= hint.high)


def _pushed_down(
    stored: dict[tuple[tuple[str, ...], str], tuple[dict[str, Any], float]],
    prefix: tuple[str, ...],
    compiled: CompiledFilter,
) -> list[tuple[tuple[str, ...], str]]:
    """The rows the script owes for values it can read: exactly those under the prefix
    with every pushed-down string equal and inside every range hint, in search order."""
    kept = [
        (ns, key)
        for (ns, key), (value, _) in stored.items()
        if ns[: len(prefix)] == prefix
        and all(value.get(k) == want for k, want in compiled.equals.items())
        and all(_kept_by_hint(hint, value) for hint in compiled.ranges)
    ]
    return sorted(kept, key=lambda nk: unranked_order(stored[nk][1], nk[0], nk[1]))


def _found(store: RedisStore, prefix: tuple[str, ...], filter: Any, offset: int, limit: int) -> list[Any]:
    return [(i.namespace, i.key, i.value) for i in store.search(prefix, filter=filter, offset=offset, limit=limit)]


def _index_is_exact(client: redis.Redis, prefix: str) -> None:
    """The recent index holds exactly the names index's fields, each scored by minus
    the updated_at of its frame."""
    items, names, _, _, recent = store_keys(prefix)
    in_names = set(client.zrange(names, 0, -1))
    scored = dict(client.zrange(recent, 0, -1, withscores=True))
    assert set(scored) == in_names == set(client.hkeys(items))
    for field, score in scored.items():
        frame = client.hget(items, field)
        assert frame is not None and -float(frame.split(b"\n")[2]) == score


@pytest.fixture
def redis_place(tmp_path: Any) -> Iterator[Place]:
    made = new_place("redis", tmp_path)
    try:
        yield made
    finally:
        made.drop()


@pytest.fixture
def raw() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        client.close()


# -- the property --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(puts=puts, deletes=st.lists(st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(KEYS)), max_size=4),
       data=st.data(), later=st.sampled_from([0, 0, 61]))
def test_searches_give_in_memory_stores_matches_on_both_walks(
    redis_place: Place, raw: redis.Redis, puts: list[Any], deletes: list[Any], data: st.DataObject, later: int
) -> None:
    prefix = str(redis_place.location)
    for key in store_keys(prefix):
        raw.unlink(key)
    clock = FakeClock()
    store = RedisStore(REDIS_URL, prefix=prefix, clock=clock, ttl={"refresh_on_read": False})
    reference = InMemoryStore()
    stored: dict[tuple[tuple[str, ...], str], tuple[dict[str, Any], float]] = {}
    expires: dict[tuple[tuple[str, ...], str], float] = {}
    try:
        for ns, key, value, at, ttl in sorted(puts, key=lambda p: p[3]):
            clock.now = START + at
            store.put(ns, key, value, ttl=ttl)
            reference.put(ns, key, value)
            stored[(ns, key)] = (value, clock.now)
            expires.pop((ns, key), None)
            if ttl is not None:
                expires[(ns, key)] = clock.now + ttl * 60
        for ns, key in deletes:
            store.delete(ns, key)
            reference.delete(ns, key)
            stored.pop((ns, key), None)
        clock.now = START + 3 + later
        for gone in [nk for nk, at in expires.items() if nk in stored and at <= clock.now]:
            del stored[gone]
            reference.delete(*gone)

        def check(label: str) -> None:
            for search_prefix, filter, offset, limit in searches:
                want = _expected(stored, reference, search_prefix, filter, offset, limit)
                got = _found(store, search_prefix, filter, offset, limit)
                assert got == want, (label, search_prefix, filter, offset, limit)
                compiled = compile_filter(filter)
                search = ItemSearch(search_prefix, compiled, offset, limit, clock.now)
                rows = store._run("search", store.backend.search_items(search))
                pushed = _pushed_down(stored, search_prefix, compiled)[offset : offset + limit]
                assert [(r.namespace, r.key) for r in rows] == pushed, (label, search_prefix, filter)

        searches = data.draw(_searches(puts))
        check("recent walk")
        raw.unlink(store_keys(prefix)[4])  # as an earlier release left it: no recent index
        check("names walk")
        upgraded = RedisStore(REDIS_URL, prefix=prefix, clock=clock)
        upgraded.setup()
        upgraded.close()
        _index_is_exact(raw, prefix)
        check("after the upgrade")
        store.sweep_ttl()
        _index_is_exact(raw, prefix)
        check("after the sweep")
    finally:
        store.close()
        for key in store_keys(prefix):
            raw.unlink(key)


KINDS_OF_VALUE: dict[str, Any] = {
    "true": True,
    "false": False,
    "text": "x",
    "numeric_text": "0.7",
    "inside": 0.7,
    "big": 2**63 - 1,
    "below": 0.2,
    "null": None,
    "array": [1],
    "object": {"n": 1},
}
KEPT_BY_A_RANGE = {"true", "false", "text", "numeric_text"}
"""What a range hint keeps whatever its bounds: strings and booleans (``float()`` may read them)."""


@pytest.mark.parametrize("walk", ["recent", "names"])
async def test_range_hints_keep_strings_booleans_and_numbers_in_bounds(raw: redis.Redis, walk: str) -> None:
    store = RedisStore(REDIS_URL, prefix=unique("lus_store_test"))
    try:
        await store.abatch(
            [PutOp(("r",), name, {"n": value, "m": {"n": value}}) for name, value in KINDS_OF_VALUE.items()]
            + [PutOp(("r",), "missing", {"m": {}}), PutOp(("r",), "flat", {"m": 1})]
        )
        if walk == "names":
            raw.unlink(store_keys(store.backend.prefix)[4])

        async def keys(filter: dict[str, Any]) -> set[str]:
            rows = await store.backend.search_items(ItemSearch(("r",), compile_filter(filter), 0, 100, START * 2))
            return {row.key for row in rows}

        assert await keys({"n": {"$gt": 0.5}}) == KEPT_BY_A_RANGE | {"inside", "big"}
        assert await keys({"m": {"n": {"$gt": 0.5, "$lt": 1}}}) == KEPT_BY_A_RANGE | {"inside"}
        assert await keys({"n": 0.2}) == KEPT_BY_A_RANGE | {"below"}
        assert await keys({"n": {"$lte": 2**63}}) == set(KEPT_BY_A_RANGE) | {"inside", "below", "big"}
        assert await keys({"n": {"$ne": 3}}) == {*KINDS_OF_VALUE, "missing", "flat"}  # no hint
    finally:
        await store.backend.drop_all()
        await store.aclose()


# -- values the script cannot read ---------------------------------------------------------


def _plant(client: redis.Redis, prefix: str, ns: tuple[str, ...], key: str, updated: float, value: bytes,
           *, recent: bool = True, expires: float | None = None) -> bytes:
    """An item frame written by raw commands, as store_write.lua writes one."""
    items, names, expiry, _, recent_key = store_keys(prefix)
    field = item_field(ns, key)
    until = b"" if expires is None else repr(expires).encode()
    client.hset(items, field, b"1\n%r\n%r\n\n%s\n" % (updated, updated, until) + value)
    client.zadd(names, {field: 0})
    if expires is not None:
        client.zadd(expiry, {field: expires})
    if recent:
        client.zadd(recent_key, {field: -updated})
    return field


DEEP = b'{"m": {"m": 1}, "kind": "fact", "n":' + b"[" * 1500 + b"]" * 1500 + b"}"
PLANTED = {
    "not_json": b'{"n": 1, "kind": "fact", "m": {"m": 1}',
    "deep": DEEP,
    "huge": b'{"n": 1e400, "kind": "fact"}',
    "minus_huge": b'{"n": -1e400}',
    "nan": b'{"n": NaN, "kind": "fact"}',
    "deep_path": b'{"m":' + b'{"m":' * 1200 + b"1" + b"}" * 1200 + b"}",
    "array": b"[1, 2]",
    "number": b"5",
    "null": b"null",
    "string": b'"fact"',
    "words": b'["kind", "fact", "n", "m"]',
    "escaped_string": b'"\\"kind\\": \\"fact\\", \\"n\\": 1, \\"m\\""',
    "null_inside": b'{"m": null, "n": {"n": null}}',
    "escaped": b'{"kind": "f\\u0061ct", "n": 0.75}',
}
"""Values no put writes: ``not_json`` and ``deep`` (past cjson's depth) hold every
string the filters below name, so the script keeps them for Python to judge."""


@pytest.mark.parametrize(
    "filter",
    [
        {"kind": "fact"},
        {"n": {"$gt": 0.5}},
        {"n": {"$lt": 0.5}},
        {"n": 1},
        {"m": {"m": {"$gte": 0}}},
        {"n": {"n": {"$gt": 0}}, "kind": "fact"},
        {"kind": "fact", "n": {"$lte": 1e300}},
    ],
)
@pytest.mark.parametrize("walk", ["recent", "names"])
async def test_planted_values_never_fail_the_script(raw: redis.Redis, filter: dict[str, Any], walk: str) -> None:
    """Every planted value comes back from the script or is dropped, never an error from
    Redis; those cjson cannot read (not JSON, too deep) always come back, for Python."""
    store = RedisStore(REDIS_URL, prefix=unique("lus_store_test"))
    prefix = store.backend.prefix
    try:
        await store.asetup()
        await store.aput(("p",), "good", {"n": 0.75, "kind": "fact", "m": {"m": 2}})
        for position, (key, value) in enumerate(PLANTED.items()):
            _plant(raw, prefix, ("p",), key, START + position, value, recent=walk == "recent")
        compiled = compile_filter(filter)
        rows = await store.backend.search_items(ItemSearch(("p",), compiled, 0, 100, START + 100))
        keys = [row.key for row in rows]
        assert "not_json" in keys and "deep" in keys
        if compiled.matches({"n": 0.75, "kind": "fact", "m": {"m": 2}}):
            assert "good" in keys
        # The whole API: Python reads the rows, and may refuse the unreadable ones.
        try:
            await store.asearch(("p",), filter=filter, limit=5)
        except redis.exceptions.RedisError as exc:  # pragma: no cover - the failure asserted
            pytest.fail(f"a raw Redis error escaped: {exc!r}")
        except (ValueError, CorruptDataError):
            pass  # orjson's, or the core's, of a planted value that is no JSON object
    finally:
        await store.backend.drop_all()
        await store.aclose()


async def test_planted_values_kept_or_dropped_by_the_rules(raw: redis.Redis) -> None:
    """What the script keeps of values no put writes: what cjson cannot read, unless it
    lacks a string every match holds; a number cjson reads as infinite compares as one,
    NaN is kept; a value with a backslash is decoded before it is judged (an escaped
    string matches; a JSON string, no object, is kept for Python to refuse)."""
    store = RedisStore(REDIS_URL, prefix=unique("lus_store_test"))
    prefix = store.backend.prefix
    try:
        await store.asetup()
        for position, (key, value) in enumerate(PLANTED.items()):
            _plant(raw, prefix, ("p",), key, START + position, value)

        async def keys(filter: dict[str, Any]) -> set[str]:
            rows = await store.backend.search_items(ItemSearch(("p",), compile_filter(filter), 0, 100, START))
            return {row.key for row in rows}

        unreadable = {"not_json", "deep"}  # cjson cannot read them: kept
        assert await keys({"n": {"$gt": 0.5}}) == unreadable | {"huge", "nan", "escaped", "escaped_string"}
        assert await keys({"n": {"$lt": 0.5}}) == unreadable | {"minus_huge", "nan", "escaped_string"}
        assert await keys({"kind": "fact"}) == unreadable | {"huge", "nan", "escaped", "escaped_string"}
        assert await keys({"m": {"m": {"$gt": 0}}}) == unreadable | {"deep_path", "escaped_string"}
        # Labels and strings are data: a pattern or code in them is just text.
        assert await keys({"kind": "fa%"}) == {"escaped_string"}
        assert await keys({"n') or 1 --": {"$gt": 0}}) == {"escaped_string"}
    finally:
        await store.backend.drop_all()
        await store.aclose()


# -- the recent index's upkeep -------------------------------------------------------------


async def test_deletes_expiry_and_sweep_keep_the_recent_index_exact(raw: redis.Redis) -> None:
    clock = FakeClock()
    store = RedisStore(REDIS_URL, prefix=unique("lus_store_test"), clock=clock)
    prefix = store.backend.prefix
    try:
        await store.abatch(
            [PutOp(("t", str(n % 4)), f"k{n:03d}", {"n": n, "kind": "fact"}, ttl=1 if n % 3 else None)
             for n in range(600)]
        )
        _index_is_exact(raw, prefix)
        await store.abatch([PutOp(("t", "0"), f"k{n:03d}", None) for n in range(0, 600, 4)])
        _index_is_exact(raw, prefix)
        clock.advance(30)
        await store.aput(("t", "1"), "k001", {"n": 1, "kind": "fact"})  # newest now
        _index_is_exact(raw, prefix)
        found = await store.asearch(("t",), filter={"n": {"$gte": 0}}, limit=3, refresh_ttl=False)
        assert len(found) == 3 and found[0].key == "k001"
        clock.advance(31)  # every item with a ttl but k001 has expired, none swept yet
        live = sorted(n for n in range(600) if n % 4 and not n % 3)
        found = await store.asearch(("t",), filter={"kind": "fact"}, limit=1000)
        assert sorted(int(i.key[1:]) for i in found) == sorted([*live, 1])
        page = await store.asearch(("t",), filter={"n": {"$gt": 100}}, offset=5, limit=7)
        want = sorted((n for n in live if n > 100), key=lambda n: (str(n % 4), f"k{n:03d}"))
        assert [i.key for i in page] == [f"k{n:03d}" for n in want][5:12]
        assert await store.asweep_ttl() == 600 - 150 - len(live) - 1
        _index_is_exact(raw, prefix)
        assert raw.zcard(store_keys(prefix)[4]) == len(live) + 1
    finally:
        await store.backend.drop_all()
        await store.aclose()


async def test_setup_builds_the_index_of_a_store_the_earlier_release_wrote(raw: redis.Redis) -> None:
    """Keys as the earlier release left them (items, names, expiry; no recent index), more
    than one reindex step: setup builds the index once, searches agree before and after,
    and a stale index entry (a field no longer stored) is pruned."""
    prefix = unique("lus_store_test")
    items, names, _, _, recent = store_keys(prefix)
    try:
        for n in range(1203):
            ns = ("old", str(n % 5))
            _plant(raw, prefix, ns, f"k{n:04d}", START + n // 7, orjson.dumps({"n": n, "kind": "fact"}),
                   recent=False, expires=START + 1 if n == 1 else None)
        raw.hset(items, item_field(("elsewhere",), "bad"), b"2\nnot a frame this release knows")
        raw.zadd(names, {item_field(("elsewhere",), "bad"): 0})
        old = RedisStore(REDIS_URL, prefix=prefix, clock=lambda: START + 1000)
        old.backend.setup = _no_setup  # type: ignore[method-assign]
        filter = {"n": {"$lt": 600}}
        before = [(i.namespace, i.key) for i in await old.asearch(("old",), filter=filter, offset=3, limit=20)]
        await old.aclose()
        assert raw.exists(recent) == 0
        raw.zadd(recent, {item_field(("gone",), "x"): 5.0})  # stale: in no other key
        store = RedisStore(REDIS_URL, prefix=prefix, clock=lambda: START + 1000)
        await store.asetup()
        assert raw.zcard(recent) == raw.zcard(names) == 1204
        assert raw.zscore(recent, item_field(("elsewhere",), "bad")) == math.inf
        assert raw.zscore(recent, item_field(("gone",), "x")) is None
        after = [(i.namespace, i.key) for i in await store.asearch(("old",), filter=filter, offset=3, limit=20)]
        ordered = sorted(
            (n for n in range(600) if n != 1), key=lambda n: (-(n // 7), namespace_text(("old", str(n % 5))), n)
        )
        assert before == after == [(("old", str(n % 5)), f"k{n:04d}") for n in ordered][3:23]
        await store.aclose()
    finally:
        for key in store_keys(prefix):
            raw.unlink(key)


async def _no_setup() -> None:
    """A setup that leaves the keys as they are (a store of the earlier release)."""
