"""PostgresStore's write path and number-range pushdown on the real server: a put is ONE
statement (counted on the driver's connections), the upgrade from schema version 4, range
and equality searches held to LangGraph's ``InMemoryStore`` (hypothesis, with paging, the
newest-first walk and its fallback both taken), rows planted by raw SQL that no search
may trip over, and the plans the benchmark's searches get."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any
from unittest import mock

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.base import PutOp
from langgraph.store.memory import InMemoryStore

from langgraph_unified_store.backends.postgres import store as store_module
from langgraph_unified_store.backends.postgres.store import PostgresStore
from langgraph_unified_store.core.store_backend import ItemSearch
from langgraph_unified_store.core.store_rules import compile_filter, prefix_range
from langgraph_unified_store.errors import CorruptDataError

from ..support import POSTGRES_DSN, unique
from .conftest import START, FakeClock
from .test_store_differential import canonical

pytestmark = pytest.mark.postgres

DIMS = 4


def embed(texts: Sequence[str]) -> list[list[float]]:
    return [[float(len(t)), float(t.count("a")), 1.0, 2.0] for t in texts]


@pytest.fixture
async def schema(admin: Any) -> AsyncIterator[str]:
    name = unique("lus_pgr")
    try:
        yield name
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


# -- one round trip -------------------------------------------------------------------------


class CountingConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection that records every statement sent through its public entry
    points (a transaction's BEGIN and COMMIT go through ``execute`` too)."""

    sent: list[str] = []

    async def execute(self, query: str, *args: Any, **options: Any) -> Any:
        CountingConnection.sent.append(query)
        return await super().execute(query, *args, **options)

    async def executemany(self, command: str, args: Any, **options: Any) -> Any:
        CountingConnection.sent.append(command)
        return await super().executemany(command, args, **options)

    async def fetch(self, query: str, *args: Any, **options: Any) -> Any:
        CountingConnection.sent.append(query)
        return await super().fetch(query, *args, **options)

    async def fetchrow(self, query: str, *args: Any, **options: Any) -> Any:
        CountingConnection.sent.append(query)
        return await super().fetchrow(query, *args, **options)

    async def fetchval(self, query: str, *args: Any, **options: Any) -> Any:
        CountingConnection.sent.append(query)
        return await super().fetchval(query, *args, **options)


async def _no_reset(connection: Any) -> None:
    """No reset query on release: only the store's own statements are counted."""


async def test_a_put_or_a_batch_is_one_statement(schema: str) -> None:
    pool = await asyncpg.create_pool(
        POSTGRES_DSN, min_size=1, max_size=1, connection_class=CountingConnection, reset=_no_reset
    )
    index: Any = {"dims": DIMS, "embed": embed, "fields": ["text"]}
    try:
        async with PostgresStore(pool, schema=schema, index=index) as store:
            await store.asetup()
            await store.aput(("c",), "warm", {"text": "a"})  # prepares the statement
            CountingConnection.sent.clear()
            await store.aput(("c",), "k", {"text": "aa"})
            assert len(CountingConnection.sent) == 1, CountingConnection.sent
            (statement,) = CountingConnection.sent
            assert "lus_write_items" in statement and "BEGIN" not in statement.upper()
            CountingConnection.sent.clear()
            await store.abatch(
                [PutOp(("c",), "k", {"text": "b"}), PutOp(("c",), "warm", None),
                 PutOp(("d",), "x", {"text": "ab"}, index=False)]
            )
            assert CountingConnection.sent == [statement]
            CountingConnection.sent.clear()
            await store.adelete(("c",), "k")
            assert CountingConnection.sent == [statement]
            assert await store.aget(("c",), "k") is None
            got = await store.aget(("d",), "x")
            assert got is not None and got.value == {"text": "ab"}
    finally:
        await pool.close()


async def test_the_upgrade_from_version_4(admin: Any, schema: str) -> None:
    """A schema at version 4 (the store's tables, written the old way) gets the write
    function and the search-order index; its items stay and searches find them."""
    quoted = f'"{schema}"'
    async with PostgresStore(POSTGRES_DSN, schema=schema) as store:
        await store.aput(("u",), "old", {"score": 0.9})
    await admin.execute(f"DROP FUNCTION {quoted}.lus_write_items")
    await admin.execute(f"DROP INDEX {quoted}.lus_memory_items_by_update")
    await admin.execute(f"ALTER INDEX {quoted}.lus_memory_items_value_idx RESET (gin_pending_list_limit)")
    await admin.execute(f"DELETE FROM {quoted}.lus_migrations WHERE version = 5")
    async with PostgresStore(POSTGRES_DSN, schema=schema) as store:
        await store.aput(("u",), "new", {"score": 0.7})
        found = await store.asearch(("u",), filter={"score": {"$gt": 0.5}})
        assert sorted(i.key for i in found) == ["new", "old"]
    options = await admin.fetchval(
        "SELECT reloptions FROM pg_class WHERE oid = $1::regclass",
        f"{quoted}.lus_memory_items_value_idx",
    )
    assert options == ["gin_pending_list_limit=64"]
    assert await admin.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{quoted}.lus_memory_items_by_update")
    versions = await admin.fetch(f"SELECT version FROM {quoted}.lus_migrations ORDER BY version")
    assert [r[0] for r in versions] == [1, 2, 3, 4, 5]


# -- range and equality searches against InMemoryStore ---------------------------------------

BIG = 2**53
NUMBERS = [0, 1, -1, 0.5, 0.49999999, 0.5000001, 2.5, -2.5, 1e-300, 1e300, BIG - 1, BIG, BIG + 1, -BIG - 1]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(NUMBERS),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(-(2**62), 2**62),
    st.sampled_from(["", "x", "0.5", "1e3", "-2", "9007199254740993", "inf", "nan", " 1 ", "true"]),
)
FIELDS = ["score", "n"]
VALUES = st.dictionaries(
    st.sampled_from(FIELDS),
    st.one_of(SCALARS, SCALARS, st.dictionaries(st.sampled_from(["n", "m"]), SCALARS, max_size=2),
              st.lists(SCALARS, max_size=2)),
    max_size=3,
)
OPERANDS = st.one_of(st.sampled_from(NUMBERS), st.floats(-1e6, 1e6, allow_nan=False),
                     st.sampled_from(["0.5", "1e3"]))
RANGE_OPS = st.dictionaries(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), OPERANDS, min_size=1, max_size=2)
CONDITIONS = st.one_of(
    RANGE_OPS,
    RANGE_OPS,
    st.sampled_from(NUMBERS),
    st.sampled_from(["x", "0.5", "fact"]),
    st.dictionaries(st.just("kind"), st.sampled_from(["x", "fact"]), min_size=1),
    st.dictionaries(st.just("$eq"), st.sampled_from([*NUMBERS, "x", True]), min_size=1),
    st.dictionaries(st.sampled_from(["n", "m"]), RANGE_OPS, min_size=1, max_size=1),
)
FILTERS = st.dictionaries(st.sampled_from([*FIELDS, "kind"]), CONDITIONS, min_size=1, max_size=2)
PAGES = st.tuples(st.integers(1, 12), st.integers(0, 6))


def _near_filter(draw: Any, values: list[dict[str, Any]]) -> dict[str, Any]:
    """A range on a stored number, at it or just beside it (bound edges), or on a field
    holding something else (strings, bools, objects)."""
    stored = [(k, v) for value in values for k, v in value.items()]
    if not stored:
        return {"score": {"$gte": 0}}
    key, value = draw(st.sampled_from(stored))
    operand: Any = value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        operand = draw(OPERANDS)
    elif draw(st.booleans()):
        operand = value + draw(st.sampled_from([-1, -1e-7, 1e-7, 1]))
    return {key: {draw(st.sampled_from(["$gt", "$gte", "$lt", "$lte"])): operand}}


def _reference(mem: InMemoryStore, prefix: tuple[str, ...], filter: dict[str, Any]) -> list[Any]:
    """InMemoryStore's matches; where it raises (a range on a value float() cannot read),
    its own comparison item by item, an item it raised on being no match (our rule)."""
    from .test_store_differential import _safe_match

    try:
        return mem.search(prefix, filter=filter, limit=10_000)
    except (ValueError, TypeError):
        return [i for i in mem.search(prefix, limit=10_000) if _safe_match(i.value, filter)]


def _backend_keys(store: PostgresStore, search: ItemSearch) -> list[tuple[tuple[str, ...], str]]:
    rows = store._run("search", store.backend.search_items(search))
    return [(r.namespace, r.key) for r in rows]


@pytest.fixture(scope="module")
def shared_store() -> Iterator[tuple[PostgresStore, FakeClock]]:
    schema = unique("lus_pgr_prop")
    clock = FakeClock()
    store = PostgresStore(POSTGRES_DSN, schema=schema, clock=clock)
    try:
        store.setup()
        yield store, clock
    finally:
        store.close()
        import asyncio

        from .conftest import _drop_schema

        asyncio.run(_drop_schema(schema))


_examples = itertools.count()


@settings(
    max_examples=int(os.environ.get("LUS_STORE_EXAMPLES", "150")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)
@given(
    values=st.lists(VALUES, min_size=1, max_size=40),
    searches=st.lists(st.tuples(FILTERS, PAGES, st.booleans()), min_size=1, max_size=6),
    tight_walk=st.booleans(),
    data=st.data(),
)
def test_range_and_equality_searches_agree_with_in_memory_store(
    shared_store: tuple[PostgresStore, FakeClock],
    values: list[dict[str, Any]],
    searches: list[tuple[dict[str, Any], tuple[int, int], bool]],
    tight_walk: bool,
    data: st.DataObject,
) -> None:
    searches = searches + [
        (_near_filter(data.draw, values), data.draw(PAGES), data.draw(st.booleans()))
        for _ in range(data.draw(st.integers(0, 4)))
    ]
    store, clock = shared_store
    clock.now = START + 10_000 * next(_examples)
    root = unique("r")
    mem = InMemoryStore()
    order: dict[tuple[tuple[str, ...], str], tuple[float, str, str]] = {}
    for n, value in enumerate(values):
        namespace = (root, f"g{n % 3}")
        clock.advance(n % 2)  # ties in updated_at, broken by namespace and key
        store.put(namespace, f"k{n}", value)
        mem.put(namespace, f"k{n}", value)
        order[(namespace, f"k{n}")] = (-clock.now, ".".join(namespace), f"k{n}")
    # A tight walk (as many rows as the page needs) makes the walk fall short and the
    # fallback run far more often than the default walk would on so few items.
    walk = (1, 1) if tight_walk else (store_module.WALK_MIN_ROWS, store_module.WALK_FACTOR)
    with mock.patch.multiple(store_module, WALK_MIN_ROWS=walk[0], WALK_FACTOR=walk[1]):
        for filter, (limit, offset), under_group in searches:
            prefix = (root, "g1") if under_group else (root,)
            matching = sorted(
                _reference(mem, prefix, filter), key=lambda i: order[(tuple(i.namespace), i.key)]
            )
            want = matching[offset : offset + limit]
            got = store.search(prefix, filter=filter, limit=limit, offset=offset)
            assert [(tuple(i.namespace), i.key, canonical(i.value)) for i in got] == [
                (tuple(i.namespace), i.key, canonical(i.value)) for i in want
            ], (filter, limit, offset, prefix)
            # The backend's own pages (the core reads them from offset 0): any page is the
            # slice of the whole row sequence, which holds every match in order.
            compiled = compile_filter(filter)
            every = _backend_keys(store, ItemSearch(prefix, compiled, 0, None, clock.now))
            page = _backend_keys(store, ItemSearch(prefix, compiled, offset, limit, clock.now))
            assert page == every[offset : offset + limit], (filter, limit, offset, prefix)
            wanted = [(tuple(i.namespace), i.key) for i in matching]
            assert [k for k in every if k in set(wanted)] == wanted, (filter, prefix)


# -- planted rows ---------------------------------------------------------------------------

PLANTED = [
    ("huge", '{"score": 1e400, "kind": "x"}'),
    ("tiny", '{"score": -1e400, "kind": "x"}'),
    ("long", '{"score": 123456789012345678901234567890123456789, "kind": "x"}'),
    ("fine", '{"score": 1e-400, "kind": "x"}'),
    ("deep", '{"score": ' + '{"a": ' * 500 + "1" + "}" * 500 + ', "kind": "x"}'),
    ("list", '{"score": [1, 2], "kind": "x"}'),
    ("obj", '{"score": {"0": 5}, "kind": "x"}'),
    ("null", '{"score": null, "kind": "x"}'),
    ("array", "[1, 2, 3]"),
    ("scalar", "42"),
    ("text", '"a string"'),
    ("jnull", "null"),
]
HINTED = [
    {"score": {"$gt": 0.5}},
    {"score": {"$lt": 0}},
    {"score": {"$gte": -1e300, "$lte": 1e300}},
    {"score": 1},
    {"score": {"0": {"$gt": 1}}},
    {"score": {"a": {"a": {"$gt": 0}}}},
    {"kind": "x", "score": {"$gt": 0.5}},
    {"kind": "x"},
]


async def test_planted_rows_never_crash_a_search(admin: Any, schema: str) -> None:
    """Values no put makes (numbers past float64, 500 levels deep, arrays and scalars at
    the top): the backend's searches all answer, and the store's either answer or raise
    its own CorruptDataError, never a driver error."""
    async with PostgresStore(POSTGRES_DSN, schema=schema) as store:
        await store.aput(("p",), "real", {"score": 0.75, "kind": "x"})
        for key, value in PLANTED:
            await admin.execute(
                f'INSERT INTO "{schema}".lus_memory_items (namespace, key, value, created_at, '
                "updated_at) VALUES ('p', $1, $2::jsonb, 1, 1)",
                key, value,
            )
        for filter in HINTED:
            compiled = compile_filter(filter)
            for limit in (1, 5, 100):
                search = ItemSearch(("p",), compiled, 0, limit, START + 1e6)
                rows = await store.backend.search_items(search)
                keys = {r.key for r in rows}
                if filter.get("kind") != "x" and compiled.ranges:
                    # Pushed down: only numbers in range survive, and the real item.
                    assert keys <= {"real", "huge", "tiny", "long", "fine", "deep", "obj", "list"}
            try:
                found = await store.asearch(("p",), filter=filter, limit=100)
            except CorruptDataError:
                continue
            except asyncpg.PostgresError as exc:  # pragma: no cover - the failure this guards
                raise AssertionError(f"{filter}: a raw driver error {exc!r}") from exc
            except orjson.JSONDecodeError:
                continue  # the core's decoding of a planted 1e400, not the search
            assert all(i.value.get("kind") == "x" for i in found), filter
        one = await store.asearch(("p",), filter={"score": {"$gt": 0.5, "$lt": 1}}, limit=100)
        assert [i.key for i in one] == ["real"]


# -- plans ----------------------------------------------------------------------------------


def _plan_args(statements: Any, filter: dict[str, Any], walked: bool) -> tuple[str, list[str]]:
    compiled = compile_filter(filter)
    bounds = prefix_range(("memories",))
    assert bounds is not None
    where: list[Any] = [*bounds]
    if compiled.equals:
        where.append(orjson.dumps(compiled.equals).decode())
    for hint in compiled.ranges:
        path = list(hint.path)
        where += [path, path, hint.low, path, hint.high]
    args = [START, 256, *where, 32, 32, 32, 0, *where, 32, 0] if walked else [START, *where, 32, 0]
    statement = statements.search(
        prefix=True, equals=bool(compiled.equals), refresh=False, vectors=False,
        ranges=len(compiled.ranges), walked=walked,
    )
    return statement, [_literal(a) for a in args]


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, list):
        return "'{" + ",".join(f'"{v}"' for v in value) + "}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


async def test_the_benchmark_searches_walk_or_use_the_gin_index(admin: Any, schema: str) -> None:
    """Generic plans (as our pools run them), on a freshly filled store with and without
    statistics: a range search walks lus_memory_items_by_update and never runs its
    fallback; an equality search reads the GIN index."""
    async with PostgresStore(POSTGRES_DSN, schema=schema) as store:
        ops = [
            PutOp(("memories", f"group{n % 20}"), f"item-{n}",
                  {"kind": ["fact", "event", "task", "note"][n % 4], "user": f"u{n % 100}",
                   "score": (n * 7919 % 10_000) / 10_000, "n": n})
            for n in range(4000)
        ]
        for start in range(0, len(ops), 500):
            await store.abatch(ops[start : start + 500])
        statements = store.backend._statements
        await admin.execute("SET plan_cache_mode = force_generic_plan")
        try:
            for analyzed in (False, True):
                if analyzed:
                    await admin.execute(f'ANALYZE "{schema}".lus_memory_items')
                for filter, walked, index in (
                    ({"score": {"$gt": 0.5}}, True, "lus_memory_items_by_update"),
                    ({"kind": "fact", "user": "u7"}, False, "lus_memory_items_value_idx"),
                ):
                    statement, args = _plan_args(statements, filter, walked)
                    await admin.execute(f"PREPARE lus_plan AS {statement}")
                    try:
                        plan = "\n".join(
                            r[0] for r in await admin.fetch(
                                f"EXPLAIN (ANALYZE, COSTS OFF) EXECUTE lus_plan({', '.join(args)})"
                            )
                        )
                    finally:
                        await admin.execute("DEALLOCATE lus_plan")
                    assert index in plan, plan
                    if walked:
                        assert "Bitmap Heap Scan" not in plan or "(never executed)" in plan, plan
                        assert "Seq Scan on lus_memory_items" not in plan, plan
        finally:
            await admin.execute("RESET plan_cache_mode")
