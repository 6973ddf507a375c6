"""PostgresStore and PostgresCache on the real server, looked at from behind: the rows in
lus_memory_items, lus_memory_vectors and lus_node_cache after each kind of write, the
migration from the previous schema version, TTLs on an injected clock, hostile filter
payloads (bound parameters, exact results), the plans of a filtered search, PgBouncer in
transaction mode, and a graph's node cache."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, TypedDict

import asyncpg
import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy

from langgraph_unified_store import PostgresSaver, create_cache, create_store
from langgraph_unified_store.backends.postgres import SCHEMA_VERSION
from langgraph_unified_store.backends.postgres import store as store_module
from langgraph_unified_store.backends.postgres.migrations import drop_statement
from langgraph_unified_store.backends.postgres.store import PostgresCache, PostgresStore
from langgraph_unified_store.core.cache import namespace_key
from langgraph_unified_store.errors import InvalidConfigError

from ..pgbouncer import running_pgbouncer
from ..support import POSTGRES_DSN, config_for, put_numbered, unique

pytestmark = pytest.mark.postgres

START_TIME = 1_700_000_000.0
DIMS = 4
PAYLOADS = [
    "a') OR 1=1 --",
    'x"}',
    "$.a",
    "'",
    '"',
    "''; DROP TABLE lus_memory_items; --",
    "\\",
    "\\\\'",
    '{"a": 1}',
    "%",
    "_",
    "$1",
    "@>",
    "日本語 🙂",
]


def embed(texts: Sequence[str]) -> list[list[float]]:
    """A deterministic embedding: the text's length and three letter counts."""
    return [[float(len(t)), float(t.count("a")), float(t.count("b")), 1.0] for t in texts]


@pytest.fixture
async def schema(admin: Any) -> AsyncIterator[str]:
    name = unique("lus_pgs")
    try:
        yield name
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


async def items_rows(admin: Any, schema: str) -> list[tuple[Any, ...]]:
    rows = await admin.fetch(
        f'SELECT namespace, key, value::text, created_at, updated_at, ttl, expires_at '
        f'FROM "{schema}".lus_memory_items ORDER BY namespace, key'
    )
    return [tuple(r) for r in rows]


async def vector_rows(admin: Any, schema: str) -> list[tuple[str, str, str, list[float]]]:
    rows = await admin.fetch(
        f'SELECT namespace, key, path, vector FROM "{schema}".lus_memory_vectors '
        "ORDER BY namespace, key, path"
    )
    return [
        (r[0], r[1], r[2], list(struct.unpack(f"<{len(r[3]) // 8}d", r[3]))) for r in rows
    ]


# -- round trips ----------------------------------------------------------------------------


async def test_round_trip_async_and_rows(admin: Any, schema: str) -> None:
    now = [START_TIME]
    async with PostgresStore(POSTGRES_DSN, schema=schema, clock=lambda: now[0]) as store:
        await store.aput(("users", "u1"), "a", {"text": "aaa", "n": 1})
        await store.aput(("users", "u1", "notes"), "b", {"text": "bb"})
        await store.aput(("users", "u10"), "c", {"text": "c"})
        item = await store.aget(("users", "u1"), "a")
        assert item is not None and item.value == {"text": "aaa", "n": 1}
        assert item.created_at.timestamp() == START_TIME
        # A prefix is the namespace and what lies under it, never its text prefix.
        assert [i.key for i in await store.asearch(("users", "u1"))] == ["a", "b"]
        assert [i.key for i in await store.asearch(("users",))] == ["a", "b", "c"]
        assert await store.alist_namespaces() == [
            ("users", "u1"), ("users", "u1", "notes"), ("users", "u10"),
        ]
        now[0] += 10
        await store.aput(("users", "u1"), "a", {"text": "aaaa"})
        again = await store.aget(("users", "u1"), "a")
        assert again is not None and again.value == {"text": "aaaa"}
        assert again.created_at.timestamp() == START_TIME
        assert again.updated_at.timestamp() == START_TIME + 10
        # Newest first, then namespace, then key.
        assert [i.key for i in await store.asearch(("users",))] == ["a", "b", "c"]
        assert [i.key for i in await store.asearch(("users",), limit=1, offset=1)] == ["b"]
        await store.adelete(("users", "u1", "notes"), "b")
        assert await store.aget(("users", "u1", "notes"), "b") is None
    assert await items_rows(admin, schema) == [
        ("users.u1", "a", '{"text": "aaaa"}', START_TIME, START_TIME + 10, None, None),
        ("users.u10", "c", '{"text": "c"}', START_TIME, START_TIME, None, None),
    ]


def test_round_trip_blocking(schema: str) -> None:
    with PostgresStore.from_conn_string(POSTGRES_DSN, schema=schema) as store:
        store.setup()
        store.put(("docs",), "1", {"kind": "x", "body": "hello"})
        store.put(("docs",), "2", {"kind": "y"})
        got = store.get(("docs",), "1")
        assert got is not None and got.value == {"kind": "x", "body": "hello"}
        assert [i.key for i in store.search(("docs",), filter={"kind": "y"})] == ["2"]
        assert store.list_namespaces(prefix=("docs",)) == [("docs",)]
        store.delete(("docs",), "1")
        assert store.get(("docs",), "1") is None
        assert store.sweep_ttl() == 0


async def test_vectors_are_stored_replaced_and_deleted(admin: Any, schema: str) -> None:
    index: Any = {"dims": DIMS, "embed": embed, "fields": ["text", "other"]}
    async with PostgresStore(POSTGRES_DSN, schema=schema, index=index) as store:
        await store.aput(("v",), "k", {"text": "ab", "other": "bbb"})
        await store.aput(("v",), "z", {"text": "zzzzzz"})
        assert await vector_rows(admin, schema) == [
            ("v", "k", "other", embed(["bbb"])[0]),
            ("v", "k", "text", embed(["ab"])[0]),
            ("v", "z", "text", embed(["zzzzzz"])[0]),
        ]
        found = await store.asearch(("v",), query="ab")
        assert [i.key for i in found] == ["k", "z"]
        scores = [i.score or 0.0 for i in found]
        assert scores[0] > scores[1]
        # A put replaces the vectors: a path no longer indexed goes.
        await store.aput(("v",), "k", {"text": "aaaa"})
        assert await vector_rows(admin, schema) == [
            ("v", "k", "text", embed(["aaaa"])[0]),
            ("v", "z", "text", embed(["zzzzzz"])[0]),
        ]
        await store.aput(("v",), "k", {"text": "aaaa"}, index=False)
        assert await vector_rows(admin, schema) == [("v", "z", "text", embed(["zzzzzz"])[0])]
        # A delete takes the item's vectors with it.
        await store.adelete(("v",), "z")
        assert await vector_rows(admin, schema) == []
        assert [i.key for i in await store.asearch(("v",), query="a")] == ["k"]


async def test_a_batch_is_atomic(admin: Any, schema: str) -> None:
    async with PostgresStore(POSTGRES_DSN, schema=schema) as store:
        await store.aput(("t",), "old", {"v": "1"})
        from langgraph.store.base import PutOp

        with pytest.raises(InvalidConfigError, match="NUL"):
            await store.abatch(
                [
                    PutOp(("t",), "new", {"v": "fine"}),
                    PutOp(("t",), "old", None),
                    PutOp(("t",), "bad", {"v": "nul \x00 here"}),
                ]
            )
        assert [r[1] for r in await items_rows(admin, schema)] == ["old"]
        with pytest.raises(InvalidConfigError, match="too long for PostgreSQL"):
            await store.abatch(
                [PutOp(("t",), "new", {"v": "fine"}), PutOp(("t",), os.urandom(4000).hex(), {"v": "1"})]
            )
        assert [r[1] for r in await items_rows(admin, schema)] == ["old"]


async def test_concurrent_batches_on_the_same_keys(admin: Any, schema: str) -> None:
    """Batches putting and deleting the same keys in different orders, side by side:
    each lands whole (no deadlock reaches the caller), the last state is one of them."""
    from langgraph.store.base import PutOp

    keys = [f"k{n}" for n in range(12)]
    async with PostgresStore(POSTGRES_DSN, schema=schema, max_size=8) as store:

        async def writer(n: int) -> None:
            for round_ in range(6):
                order = keys[n % 12 :] + keys[: n % 12]
                if (n + round_) % 2:
                    order.reverse()
                await store.abatch(
                    [
                        PutOp(("c",), key, None if (i + n) % 5 == 0 else {"by": str(n)})
                        for i, key in enumerate(order)
                    ]
                )

        await asyncio.gather(*(writer(n) for n in range(8)))
        found = await store.asearch(("c",), limit=100)
        assert len(found) == len({i.key for i in found}) <= 12
    assert await admin.fetchval(f'SELECT count(*) FROM "{schema}".lus_memory_items') == len(found)


async def test_concurrent_puts_leave_exactly_the_last_values_vectors(
    admin: Any, schema: str
) -> None:
    """Puts of one key indexing different fields, side by side: the stored vectors are
    always exactly those of the stored value (none left from a put that lost)."""
    index: Any = {"dims": DIMS, "embed": embed, "fields": ["a", "b", "c"]}
    async with PostgresStore(POSTGRES_DSN, schema=schema, index=index, max_size=8) as store:

        async def writer(n: int) -> None:
            for round_ in range(8):
                field = "abc"[(n + round_) % 3]
                await store.aput(("r",), "k", {field: f"{n}-{round_}"})

        await asyncio.gather(*(writer(n) for n in range(6)))
        item = await store.aget(("r",), "k")
        assert item is not None
    (field, text), = item.value.items()
    assert [(r[2], r[3]) for r in await vector_rows(admin, schema)] == [
        (field, embed([text])[0])
    ]


async def test_a_given_pool_and_its_refused_options(schema: str) -> None:
    pool = await asyncpg.create_pool(POSTGRES_DSN, min_size=1, max_size=2)
    try:
        refused = r"prepared_statements.*existing asyncpg\.Pool"
        with pytest.raises(InvalidConfigError, match=refused):
            PostgresStore(pool, schema=schema, prepared_statements=False)
        async with PostgresStore(pool, schema=schema) as store:
            await store.aput(("p",), "k", {"a": "b"})
            assert (await store.aget(("p",), "k")) is not None
    finally:
        await pool.close()


async def test_create_store_and_cache_from_a_url(schema: str) -> None:
    store = create_store(POSTGRES_DSN, schema=schema)
    cache = create_cache(POSTGRES_DSN, schema=schema)
    assert isinstance(store, PostgresStore) and isinstance(cache, PostgresCache)
    async with store, cache:
        await store.aput(("u",), "k", {"a": "b"})
        await cache.aset({(("n",), "k"): ("v", None)})
        assert (await store.aget(("u",), "k")) is not None
        assert await cache.aget([(("n",), "k")]) == {(("n",), "k"): "v"}


# -- the schema -----------------------------------------------------------------------------


async def test_migration_from_the_previous_version_keeps_checkpoints(
    admin: Any, schema: str
) -> None:
    """A database at version 3 (the saver's tables, no store tables) gets the store's
    tables and functions on the store's first use; its checkpoints stay."""
    async with PostgresSaver(POSTGRES_DSN, schema=schema) as saver:
        await put_numbered(saver, "t", 1, x=1)
        await put_numbered(saver, "t", 2, x=2)
    quoted = f'"{schema}"'
    await admin.execute(
        f"DROP TABLE {quoted}.lus_memory_vectors, {quoted}.lus_memory_items, "
        f"{quoted}.lus_node_cache"
    )
    await admin.execute(f"DROP FUNCTION {quoted}.lus_write_items")
    await admin.execute(f"DELETE FROM {quoted}.lus_migrations WHERE version >= 4")
    async with PostgresStore(POSTGRES_DSN, schema=schema) as store:
        await store.aput(("m",), "k", {"v": "1"})
        assert (await store.aget(("m",), "k")) is not None
    versions = await admin.fetch(
        f"SELECT version, count(*) FROM {quoted}.lus_migrations GROUP BY version ORDER BY version"
    )
    assert [tuple(r) for r in versions] == [(v, 1) for v in range(1, SCHEMA_VERSION + 1)]
    async with PostgresSaver(POSTGRES_DSN, schema=schema) as saver:
        tuple_ = await saver.aget_tuple(config_for("t"))
        assert tuple_ is not None and tuple_.checkpoint["channel_values"]["x"] == 2
        assert len([c async for c in saver.alist(config_for("t"))]) == 2
    cache = PostgresCache(POSTGRES_DSN, schema=schema)
    async with cache:
        await cache.aset({(("n",), "k"): (1, None)})
        assert await cache.aget([(("n",), "k")]) == {(("n",), "k"): 1}


def test_dropping_the_public_schema_tables_takes_the_store_tables_too() -> None:
    """In "public" the saver's drop_all drops its tables, not the schema: the store's
    are among them, so a later setup can migrate from scratch."""
    statement = drop_statement("public")
    for table in ("lus_memory_items", "lus_memory_vectors", "lus_node_cache", "lus_migrations"):
        assert f'"public".{table}' in statement


# -- TTL ------------------------------------------------------------------------------------


async def test_ttl_refresh_expiry_and_sweep_rows(admin: Any, schema: str) -> None:
    now = [START_TIME]
    index: Any = {"dims": DIMS, "embed": embed, "fields": ["text"]}
    async with PostgresStore(
        POSTGRES_DSN, schema=schema, clock=lambda: now[0], ttl={"default_ttl": 1}, index=index
    ) as store:
        await store.aput(("t",), "a", {"text": "a"})
        async with PostgresStore(
            POSTGRES_DSN, schema=schema, index=index, clock=lambda: now[0]
        ) as no_ttl:
            await no_ttl.aput(("t",), "b", {"text": "b"})
        await store.aput(("t",), "c", {"text": "c"}, ttl=2)
        rows = {r[1]: r for r in await items_rows(admin, schema)}
        assert (rows["a"][5], rows["a"][6]) == (60.0, START_TIME + 60)
        assert (rows["b"][5], rows["b"][6]) == (None, None)
        assert (rows["c"][5], rows["c"][6]) == (120.0, START_TIME + 120)
        # A refreshing read moves the expiry; a plain one does not.
        now[0] += 30
        assert await store.aget(("t",), "a", refresh_ttl=False) is not None
        assert (await items_rows(admin, schema))[0][6] == START_TIME + 60
        assert await store.aget(("t",), "a", refresh_ttl=True) is not None
        assert (await items_rows(admin, schema))[0][6] == START_TIME + 90
        now[0] += 40
        assert [i.key for i in await store.asearch(("t",), refresh_ttl=True)] == ["a", "b", "c"]
        rows = {r[1]: r for r in await items_rows(admin, schema)}
        assert rows["a"][6] == START_TIME + 130 and rows["c"][6] == START_TIME + 190
        assert rows["b"][6] is None
        # Expired: invisible at once to every read, still stored until the sweep.
        now[0] += 200
        assert await store.aget(("t",), "a") is None
        assert [i.key for i in await store.asearch(("t",))] == ["b"]
        assert [i.key for i in await store.asearch(("t",), query="a")] == ["b"]
        assert await store.alist_namespaces() == [("t",)]
        assert len(await items_rows(admin, schema)) == 3
        # A put over an expired, unswept item starts it afresh (a new created_at).
        await store.aput(("t",), "c", {"text": "c2"})
        c = await store.aget(("t",), "c")
        assert c is not None and c.created_at.timestamp() == now[0]
        assert await store.asweep_ttl() == 1
        assert [r[1] for r in await items_rows(admin, schema)] == ["b", "c"]
        assert [r[1] for r in await vector_rows(admin, schema)] == ["b", "c"]
        assert await store.asweep_ttl() == 0


async def test_cache_rows_ttl_and_clear(admin: Any, schema: str) -> None:
    now = [START_TIME]
    cache = PostgresCache(POSTGRES_DSN, schema=schema, clock=lambda: now[0])
    try:
        await cache.aset(
            {
                (("a", "x.y"), "k1"): ({"v": 1}, None),
                (("a",), "k2"): ([1, 2], 10),
                (("b",), "k3"): ("three", None),
            }
        )
        rows = await admin.fetch(
            f'SELECT namespace, key, type, expires_at FROM "{schema}".lus_node_cache ORDER BY key'
        )
        assert [(r[0], r[1], r[3]) for r in rows] == [
            (namespace_key(("a", "x.y"), "t"), "k1", None),
            (namespace_key(("a",), "t"), "k2", START_TIME + 10),
            (namespace_key(("b",), "t"), "k3", None),
        ]
        keys = [(("a", "x.y"), "k1"), (("a",), "k2"), (("b",), "k3"), (("c",), "none")]
        assert await cache.aget(keys) == {keys[0]: {"v": 1}, keys[1]: [1, 2], keys[2]: "three"}
        now[0] += 10
        assert await cache.aget(keys) == {keys[0]: {"v": 1}, keys[2]: "three"}
        await cache.aclear([("a",)])  # exactly that namespace, not ("a", "x.y")
        assert await cache.aget(keys) == {keys[0]: {"v": 1}, keys[2]: "three"}
        await cache.aclear([("a", "x.y")])
        assert await cache.aget(keys) == {keys[2]: "three"}
        await cache.aclear()
        assert await admin.fetchval(f'SELECT count(*) FROM "{schema}".lus_node_cache') == 0
    finally:
        await cache.aclose()


# -- hostile filters ------------------------------------------------------------------------


async def test_filter_payloads_are_parameters_with_exact_results(
    admin: Any, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    real_fetch = store_module.fetch_stored  # type: ignore[attr-defined]

    async def spy(conn: Any, statement: str, args: Sequence[Any], where: str) -> list[Any]:
        statements.append(statement)
        return await real_fetch(conn, statement, args, where)

    monkeypatch.setattr(store_module, "fetch_stored", spy)
    async with PostgresStore(POSTGRES_DSN, schema=schema) as store:
        for n, payload in enumerate(PAYLOADS):
            await store.aput(("p",), f"k{n}", {payload: payload, "n": str(n)})
            await store.aput(("p",), f"other{n}", {payload: "not it", "tag": payload})
            await store.aput(("p", payload.replace(".", "")), payload, {"same": payload})
        for n, payload in enumerate(PAYLOADS):
            # A top-level key is a field name even when it looks like JSON path or an
            # operator ("$.a"), as in InMemoryStore.
            found = await store.asearch(("p",), filter={payload: payload}, limit=100)
            assert [i.key for i in found] == [f"k{n}"], payload
            found = await store.asearch(("p",), filter={"tag": {"$eq": payload}}, limit=100)
            assert [i.key for i in found] == [f"other{n}"], payload
            found = await store.asearch(
                ("p", payload.replace(".", "")), filter={"same": payload}, limit=100
            )
            assert [i.key for i in found] == [payload], payload
            item = await store.aget(("p", payload.replace(".", "")), payload)
            assert item is not None and item.value == {"same": payload}
            # Not exact ($ne): the equality pushed down, the rest filtered by the core.
            if payload.startswith("$"):
                continue
            found = await store.asearch(
                ("p",), filter={payload: payload, "n": {"$ne": "x"}}, limit=100
            )
            assert [i.key for i in found] == [f"k{n}"], payload
            found = await store.asearch(
                ("p",), filter={payload: payload, "n": {"$ne": str(n)}}, limit=100
            )
            assert found == [], payload
        assert await admin.fetchval(f'SELECT count(*) FROM "{schema}".lus_memory_items') == (
            3 * len(PAYLOADS)
        )
    assert statements
    for statement in set(statements):
        for payload in PAYLOADS:
            if len(payload) > 1 and payload not in ("$1", "@>"):
                assert payload not in statement, (payload, statement)


# -- plans ----------------------------------------------------------------------------------


async def test_a_filtered_prefix_search_can_use_an_index(admin: Any, schema: str) -> None:
    async with PostgresStore(POSTGRES_DSN, schema=schema) as store:
        from langgraph.store.base import PutOp

        await store.abatch(
            [
                PutOp(("users", f"u{n % 200}", "memories"), f"m{n}", {"kind": f"k{n % 50}", "n": n})
                for n in range(4000)
            ]
        )
        await admin.execute(f'ANALYZE "{schema}".lus_memory_items')
        search = store.backend._statements.search(
            prefix=True, equals=True, refresh=False, vectors=False
        )
        bounds = ("users.u7", "users.u7.", "users.u7/")
        args = (START_TIME, *bounds, '{"kind": "k7"}', 10, 0)
        custom = "\n".join(r[0] for r in await admin.fetch(f"EXPLAIN {search}", *args))
        # The plan our pools run (plan_cache_mode = force_generic_plan): no values known.
        await admin.execute(f"PREPARE lus_search AS {search}")
        await admin.execute("SET plan_cache_mode = force_generic_plan")
        generic = "\n".join(
            r[0]
            for r in await admin.fetch(
                "EXPLAIN EXECUTE lus_search(1700000000, 'users.u7', 'users.u7.', 'users.u7/', "
                """'{"kind": "k7"}', 10, 0)"""
            )
        )
        assert "$2" in generic, generic
        for plan in (custom, generic):
            assert "lus_memory_items_pkey" in plan or "lus_memory_items_value_idx" in plan, plan
            assert "Seq Scan on lus_memory_items" not in plan, plan
        await admin.execute("DEALLOCATE lus_search")
        await admin.execute("RESET plan_cache_mode")
        # The filter alone, over the whole store: the GIN index.
        everywhere = store.backend._statements.search(
            prefix=False, equals=True, refresh=False, vectors=False
        )
        plan = "\n".join(
            r[0]
            for r in await admin.fetch(f"EXPLAIN {everywhere}", START_TIME, '{"n": 7}', 10, 0)
        )
        assert "lus_memory_items_value_idx" in plan, plan
        found = await store.asearch(("users", "u7"), filter={"kind": "k7"}, limit=100)
        assert sorted(i.key for i in found) == sorted(
            f"m{n}" for n in range(4000) if n % 200 == 7 and n % 50 == 7
        )


# -- PgBouncer ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bouncer_dsn() -> Iterator[str]:
    with running_pgbouncer(POSTGRES_DSN, pool_size=3) as dsn:
        yield dsn


async def test_through_pgbouncer(bouncer_dsn: str, schema: str) -> None:
    now = [START_TIME]
    store = PostgresStore(
        bouncer_dsn, schema=schema, prepared_statements=False, max_size=6,
        clock=lambda: now[0], ttl={"default_ttl": 1},
    )
    cache = PostgresCache(bouncer_dsn, schema=schema, prepared_statements=False)
    try:
        await store.asetup()

        async def writer(n: int) -> None:
            for m in range(5):
                await store.aput(("b", f"w{n}"), f"k{m}", {"w": str(n), "m": m})
                await store.asearch(("b",), filter={"w": str(n)}, refresh_ttl=True)

        await asyncio.gather(*(writer(n) for n in range(6)))
        assert len(await store.asearch(("b",), limit=100)) == 30
        found = await store.asearch(("b", "w3"), filter={"m": {"$lt": 2}})
        assert [i.key for i in found] == ["k0", "k1"]
        now[0] += 120
        assert await store.asweep_ttl() == 30
        await cache.aset({(("n",), "k"): ("v", None)})
        assert await cache.aget([(("n",), "k")]) == {(("n",), "k"): "v"}
        await cache.aclear()
    finally:
        await store.aclose()
        await cache.aclose()


def test_through_pgbouncer_blocking(bouncer_dsn: str, schema: str) -> None:
    with PostgresStore(bouncer_dsn, schema=schema, prepared_statements=False) as store:
        for n in range(20):
            store.put(("s",), f"k{n}", {"n": str(n)})
        assert [i.key for i in store.search(("s",), filter={"n": "7"})] == ["k7"]
        assert len(store.search(("s",), limit=50)) == 20


# -- the node cache in a graph --------------------------------------------------------------


class Doubled(TypedDict):
    x: int
    out: int


def counting_graph(cache: PostgresCache, calls: list[int]) -> Any:
    def double(state: Doubled) -> dict[str, int]:
        calls.append(state["x"])
        return {"out": state["x"] * 2}

    builder = StateGraph(Doubled)
    builder.add_node("double", double, cache_policy=CachePolicy(ttl=60))
    builder.add_edge(START, "double")
    builder.add_edge("double", END)
    return builder.compile(cache=cache)


async def test_graph_node_cache_async(schema: str) -> None:
    calls: list[int] = []
    async with PostgresCache(POSTGRES_DSN, schema=schema) as cache:
        graph = counting_graph(cache, calls)
        assert (await graph.ainvoke({"x": 5}))["out"] == 10
        assert (await graph.ainvoke({"x": 5}))["out"] == 10
        assert calls == [5]
        await cache.aclear()
        await graph.ainvoke({"x": 5})
        assert calls == [5, 5]


def test_graph_node_cache_blocking(schema: str) -> None:
    calls: list[int] = []
    with PostgresCache(POSTGRES_DSN, schema=schema) as cache:
        graph = counting_graph(cache, calls)
        assert graph.invoke({"x": 2})["out"] == 4
        assert graph.invoke({"x": 2})["out"] == 4
        assert calls == [2]
        assert graph.invoke({"x": 3})["out"] == 6
        assert calls == [2, 3]
