"""SQLite's long-term memory store and node cache (issue 15): migration 4's tables under
``SQLiteStore`` and ``SQLiteCache``, checked through both APIs and against the rows on
disk (plain sqlite3 on the same file).

Time comes from an injected clock (``clock=lambda: now[0]``), so nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import sqlite3
import struct
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy

from langgraph_unified_store import SQLiteSaver
from langgraph_unified_store.backends.sqlite import SCHEMA_VERSION, store_sql
from langgraph_unified_store.backends.sqlite.migrations import MIGRATION_4
from langgraph_unified_store.backends.sqlite.store import SQLiteCache, SQLiteStore, _under
from langgraph_unified_store.errors import BackendUnavailableError

from ..graphs import chat_graph
from ..support import thread_config
from ..test_stored_formats import SQLITE, check_store, saver_options

T0 = 1_000_000.0
STORE_TABLES = ("memory_items", "memory_vectors", "memory_vector_copies", "node_cache")


def raw(path: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(query, params).fetchall()
    finally:
        db.close()


def tables(path: Path) -> set[str]:
    return {row[0] for row in raw(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def schema_version(path: Path) -> int:
    return int(raw(path, "SELECT max(version) FROM lus_schema_migrations")[0][0])


def embed(texts: list[str]) -> list[list[float]]:
    """A deterministic 3-dimensional embedding: length, count of 'a', 1."""
    return [[float(len(t)), float(t.count("a")), 1.0] for t in texts]


def keys_of(items: list[Any]) -> list[tuple[tuple[str, ...], str]]:
    return [(tuple(i.namespace), i.key) for i in items]


# -- round trips -----------------------------------------------------------------------------


async def test_round_trip_async(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    now = [T0]
    async with SQLiteStore(path, clock=lambda: now[0]) as store:
        await store.aput(("users", "u1", "memories"), "m1", {"text": "likes tea", "kind": "pref"})
        now[0] += 1
        await store.aput(("users", "u2"), "m2", {"text": "likes coffee", "kind": "fact"})
        now[0] += 1
        await store.aput(("docs",), "d1", {"text": "a doc"})
        item = await store.aget(("users", "u1", "memories"), "m1")
        assert item is not None and item.value == {"text": "likes tea", "kind": "pref"}
        assert item.created_at.timestamp() == item.updated_at.timestamp() == T0
        assert keys_of(await store.asearch(("users",))) == [(("users", "u2"), "m2"), (("users", "u1", "memories"), "m1")]
        assert keys_of(await store.asearch(("users", "u1"))) == [(("users", "u1", "memories"), "m1")]
        assert await store.asearch(("use",)) == []
        assert keys_of(await store.asearch((), filter={"kind": "pref"})) == [(("users", "u1", "memories"), "m1")]
        assert keys_of(await store.asearch((), filter={"kind": {"$eq": "fact"}})) == [(("users", "u2"), "m2")]
        assert keys_of(await store.asearch((), limit=1, offset=1)) == [(("users", "u2"), "m2")]
        assert await store.alist_namespaces() == [("docs",), ("users", "u1", "memories"), ("users", "u2")]
        assert await store.alist_namespaces(prefix=("users",), max_depth=2) == [("users", "u1"), ("users", "u2")]
        # A put keeps created_at of the live item it replaces.
        now[0] += 10
        await store.aput(("users", "u2"), "m2", {"text": "likes espresso"})
        again = await store.aget(("users", "u2"), "m2")
        assert again is not None and again.value == {"text": "likes espresso"}
        assert (again.created_at.timestamp(), again.updated_at.timestamp()) == (T0 + 1, T0 + 12)
        await store.adelete(("users", "u2"), "m2")
        assert await store.aget(("users", "u2"), "m2") is None
        assert keys_of(await store.asearch(("users",))) == [(("users", "u1", "memories"), "m1")]
    # Another store on the file sees what the first wrote.
    async with SQLiteStore(path) as reopened:
        assert await reopened.alist_namespaces() == [("docs",), ("users", "u1", "memories")]


def test_round_trip_blocking(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    now = [T0]
    with SQLiteStore(path, clock=lambda: now[0]) as store:
        store.put(("a",), "k1", {"n": 1})
        now[0] += 1
        store.put(("a", "b"), "k2", {"n": 2, "tag": "x"})
        got = store.get(("a", "b"), "k2")
        assert got is not None and got.value == {"n": 2, "tag": "x"}
        assert keys_of(store.search(("a",))) == [(("a", "b"), "k2"), (("a",), "k1")]
        assert keys_of(store.search(("a",), filter={"tag": "x"})) == [(("a", "b"), "k2")]
        assert keys_of(store.search(("a",), filter={"n": {"$gt": 1}})) == [(("a", "b"), "k2")]
        assert store.list_namespaces(prefix=("a",)) == [("a",), ("a", "b")]
        store.delete(("a",), "k1")
        assert store.get(("a",), "k1") is None
        assert store.list_namespaces() == [("a", "b")]
    assert raw(path, "SELECT namespace, key FROM memory_items") == [("a.b", "k2")]


async def test_prefixes_are_label_boundaries_and_ties_sort_by_namespace_then_key(tmp_path: Path) -> None:
    namespaces = [("a",), ("a", "b"), ("a-b",), ("a/",), ("ab",), ("a0",), ("b",)]
    async with SQLiteStore(tmp_path / "s.sqlite", clock=lambda: T0) as store:
        for namespace in reversed(namespaces):
            await store.aput(namespace, "z", {})
            await store.aput(namespace, "y", {})
        assert keys_of(await store.asearch(("a",), limit=100)) == [
            (("a",), "y"), (("a",), "z"), (("a", "b"), "y"), (("a", "b"), "z")
        ]
        assert await store.alist_namespaces(prefix=("a",)) == [("a",), ("a", "b")]
        everything = keys_of(await store.asearch((), limit=100))
        assert everything == sorted(everything, key=lambda k: (".".join(k[0]), k[1]))
        assert len(everything) == 2 * len(namespaces)


async def test_json_typed_equality(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "s.sqlite") as store:
        await store.aput(("t",), "text", {"n": "1"})
        await store.aput(("t",), "number", {"n": 1})
        await store.aput(("t",), "true", {"n": True})
        await store.aput(("t",), "nested", {"n": {"n": "1"}})
        assert [i.key for i in await store.asearch(("t",), filter={"n": "1"})] == ["text"]
        # Non-string filters are the core's (Python equality, as InMemoryStore): never the text.
        numbers = [i.key for i in await store.asearch(("t",), filter={"n": 1})]
        assert "number" in numbers and "text" not in numbers


# -- the schema: migrations 4 and 5 on the saver's file ---------------------------------------------


async def test_version_3_database_gains_the_store_tables_and_keeps_its_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite"
    async with SQLiteSaver(path) as saver:
        await chat_graph(saver).ainvoke({"messages": [HumanMessage("hi", id="h1")]}, thread_config("t"))
    # What the saver writes is version 3 plus the store's migrations: take them away again.
    db = sqlite3.connect(path)
    for table in STORE_TABLES:
        db.execute(f"DROP TABLE {table}")
    db.execute("DELETE FROM lus_schema_migrations WHERE version >= 4")
    db.commit()
    db.close()
    assert schema_version(path) == 3 and not tables(path) & set(STORE_TABLES)

    async with SQLiteStore(path) as store:
        await store.aput(("m",), "k", {"v": "1"})
        assert schema_version(path) == SCHEMA_VERSION == 5
        assert set(STORE_TABLES) <= tables(path)
        # The saver and the store share the file at once.
        async with SQLiteSaver(path) as saver:
            state = await chat_graph(saver).aget_state(thread_config("t"))
            assert [m.content for m in state.values["messages"]] == ["hi", "reply to 1 messages", "reviewed"]
            await chat_graph(saver).ainvoke({"messages": [HumanMessage("more", id="h2")]}, thread_config("t"))
            got = await store.aget(("m",), "k")
            assert got is not None and got.value == {"v": "1"}
    assert raw(path, "SELECT version FROM lus_schema_migrations ORDER BY version") == [(1,), (2,), (3,), (4,), (5,)]


async def test_released_version_2_file_opened_by_the_store_first(tmp_path: Path) -> None:
    stored = SQLITE["stores"][sorted(SQLITE["stores"])[0]]
    path = tmp_path / "restored.sqlite"
    db = sqlite3.connect(path)
    db.executescript("\n".join(stored["dump"]))
    db.close()
    async with SQLiteStore(path) as store:
        await store.aput(("m",), "k", {"v": "1"})
    assert schema_version(path) == SCHEMA_VERSION
    async with SQLiteSaver(path, **saver_options(stored)) as saver:
        await check_store(saver, stored)


def test_migration_4_creates_the_tables_and_indexes(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with SQLiteStore(path) as store:
        store.setup()
    indexes = {
        row[0]: row[1]
        for row in raw(path, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    }
    assert "WHERE expires_at IS NOT NULL" in indexes["memory_items_by_expiry"]
    assert "WHERE expires_at IS NOT NULL" in indexes["node_cache_by_expiry"]
    assert "memory_items_by_update" in indexes
    for table in STORE_TABLES:
        ddl = raw(path, "SELECT sql FROM sqlite_master WHERE name = ?", (table,))[0][0]
        # The float32 copies keep rowids: their rows fit in the table's pages.
        assert ("WITHOUT ROWID" in ddl) is (table != "memory_vector_copies")
    assert len(MIGRATION_4) == 6


# -- rows on disk ----------------------------------------------------------------------------


def copies_in_step(path: Path) -> None:
    """Every vector has its float32 copy (migration 5), and no copy outlives its vector."""
    columns = "SELECT namespace, key, path FROM {} ORDER BY namespace, key, path"
    assert raw(path, columns.format("memory_vectors")) == raw(path, columns.format("memory_vector_copies"))


def test_rows_after_put_replace_delete_and_sweep(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    now = [T0]
    index = {"dims": 3, "embed": embed, "fields": ["text", "tags[*]"]}
    with SQLiteStore(path, index=index, clock=lambda: now[0]) as store:  # type: ignore[arg-type]
        store.put(("n",), "k", {"text": "banana", "tags": ["aa", "b"]})
        assert raw(path, "SELECT namespace, key, value, created_at, updated_at, ttl, expires_at FROM memory_items") == [
            ("n", "k", '{"text":"banana","tags":["aa","b"]}', T0, T0, None, None)
        ]
        vectors = raw(path, "SELECT path, vector FROM memory_vectors WHERE namespace = 'n' AND key = 'k' ORDER BY path")
        assert vectors == [
            ("tags[*].0", struct.pack("<3d", 2.0, 2.0, 1.0)),
            ("tags[*].1", struct.pack("<3d", 1.0, 0.0, 1.0)),
            ("text", struct.pack("<3d", 6.0, 3.0, 1.0)),
        ]
        copies_in_step(path)
        ranked = store.search(("n",), query="aaaaaa")
        assert [i.key for i in ranked] == ["k"] and ranked[0].score is not None
        # A put replaces the vectors (none when not indexed).
        store.put(("n",), "k", {"text": "x"}, index=False)
        assert raw(path, "SELECT count(*) FROM memory_vectors") == [(0,)]
        copies_in_step(path)
        store.put(("n",), "k", {"text": "abc"})
        assert raw(path, "SELECT path FROM memory_vectors") == [("text",)]
        copies_in_step(path)
        store.delete(("n",), "k")
        assert raw(path, "SELECT count(*) FROM memory_items") == [(0,)]
        assert raw(path, "SELECT count(*) FROM memory_vectors") == [(0,)]
        copies_in_step(path)

        # Expired items are invisible at once, and a sweep leaves nothing of them.
        store.put(("n",), "short", {"text": "gone soon"}, ttl=1)
        store.put(("n",), "keep", {"text": "stays"})
        store.put(("n", "deep"), "short2", {"text": "also gone"}, ttl=2)
        assert raw(path, "SELECT key, ttl, expires_at FROM memory_items WHERE ttl IS NOT NULL ORDER BY key") == [
            ("short", 60.0, T0 + 60), ("short2", 120.0, T0 + 120)
        ]
        now[0] = T0 + 121
        assert store.get(("n",), "short") is None
        assert [i.key for i in store.search(("n",))] == ["keep"]
        assert [i.key for i in store.search(("n",), query="gone")] == ["keep"]
        assert store.list_namespaces() == [("n",)]
        assert raw(path, "SELECT count(*) FROM memory_items") == [(3,)]  # not swept yet
        assert store.sweep_ttl() == 2
        assert store.sweep_ttl() == 0
        assert raw(path, "SELECT key FROM memory_items") == [("keep",)]
        assert raw(path, "SELECT DISTINCT key FROM memory_vectors") == [("keep",)]
        copies_in_step(path)


async def test_batch_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    async with SQLiteStore(path, busy_timeout=0) as store:
        await store.aput(("n",), "old", {"v": 1})
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(BackendUnavailableError):
                await store.aput(("n",), "new", {"v": 2})
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert await store.aget(("n",), "new") is None
        # The library's errors come from the driver's; a sqlite3 error never leaks.
        from langgraph.store.base import PutOp

        await store.abatch([PutOp(("n",), "a", {"v": 1}), PutOp(("n",), "old", None), PutOp(("n",), "b", {"v": 2})])
        assert raw(path, "SELECT key FROM memory_items ORDER BY key") == [("a",), ("b",)]


# -- TTL with an injected clock --------------------------------------------------------------


async def test_default_ttl_refreshed_on_read(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    now = [T0]
    ttl = {"default_ttl": 1, "refresh_on_read": True}
    async with SQLiteStore(path, ttl=ttl, clock=lambda: now[0]) as store:  # type: ignore[arg-type]
        await store.aput(("n",), "k", {"v": "1"})
        # (The core gives put(ttl=None) the default ttl too; a store without one writes this.)
        async with SQLiteStore(path, clock=lambda: now[0]) as plain:
            await plain.aput(("n",), "forever", {"v": "2"})
        assert raw(path, "SELECT key, ttl, expires_at FROM memory_items ORDER BY key") == [
            ("forever", None, None), ("k", 60.0, T0 + 60)
        ]
        now[0] = T0 + 50
        assert await store.aget(("n",), "k") is not None  # refreshes: T0 + 110
        assert raw(path, "SELECT expires_at FROM memory_items WHERE key = 'k'") == [(T0 + 110,)]
        now[0] = T0 + 100
        assert await store.aget(("n",), "k", refresh_ttl=False) is not None
        assert raw(path, "SELECT expires_at FROM memory_items WHERE key = 'k'") == [(T0 + 110,)]
        assert [i.key for i in await store.asearch(("n",), filter={"v": "1"})] == ["k"]  # refreshes: T0 + 160
        assert raw(path, "SELECT expires_at FROM memory_items WHERE key = 'k'") == [(T0 + 160,)]
        now[0] = T0 + 159
        assert [i.key for i in await store.asearch(("n",), refresh_ttl=False)] == ["forever", "k"]
        now[0] = T0 + 160  # at expires_at: gone
        assert await store.aget(("n",), "k") is None
        assert [i.key for i in await store.asearch(("n",))] == ["forever"]
        # A put on an expired item starts it afresh (created_at too).
        await store.aput(("n",), "k", {"v": "3"})
        again = await store.aget(("n",), "k")
        assert again is not None and again.created_at.timestamp() == T0 + 160
        assert await store.asweep_ttl() == 0


# -- hostile filter keys (CVE-2025-8709 / CVE-2025-64104 in the official SqliteStore) ----------

PAYLOAD_KEYS = [
    "a') OR 1=1 --",
    'x" OR "1"="1',
    "a.b",
    "it's",
    "back\\slash",
    '"quoted"',
    "x'); DROP TABLE memory_items; --",
    "[0]",
    "*",
    "a\\\"b'c",
    "ключ 🔑",
]


async def test_hostile_filter_keys_match_exactly(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    async with SQLiteStore(path) as store:
        for i, key in enumerate(PAYLOAD_KEYS):
            await store.aput(("cve",), f"k{i}", {key: "hit", "other": key})
        await store.aput(("cve",), "nested", {"a": {"b": "hit"}, "other": "x"})
        await store.aput(("cve",), "plain", {"x": "1", "other": "' OR '1'='1"})
        for i, key in enumerate(PAYLOAD_KEYS):
            assert [it.key for it in await store.asearch(("cve",), filter={key: "hit"})] == [f"k{i}"], key
            assert await store.asearch(("cve",), filter={key: "miss"}) == [], key
            assert [it.key for it in await store.asearch(("cve",), filter={"other": key})] == [f"k{i}"], key
            assert [it.key for it in await store.asearch(("cve",), filter={key: "hit", "other": key})] == [f"k{i}"]
        # "a.b" is a top-level key, not a path into {"a": {"b": ...}}.
        assert [it.key for it in await store.asearch(("cve",), filter={"a": {"b": "hit"}})] == ["nested"]
        assert await store.asearch(("cve",), filter={"x": "1' OR '1'='1"}) == []
        assert [it.key for it in await store.asearch(("cve",), filter={"other": "' OR '1'='1"})] == ["plain"]
        # JSON-path syntax as a top-level key is a field name, as in InMemoryStore: it
        # matches only an item with that very key, never a path.
        await store.aput(("cve",), "dollar", {"$.x": "hit"})
        for key in ("$.x", "$", "$[0]"):
            expected = ["dollar"] if key == "$.x" else []
            assert [it.key for it in await store.asearch(("cve",), filter={key: "hit"})] == expected, key
        await store.adelete(("cve",), "dollar")
        # The same payloads as namespace labels and item keys.
        for i, key in enumerate(PAYLOAD_KEYS):
            label = key.replace(".", "")
            await store.aput((label,), key, {"i": i})
            got = await store.aget((label,), key)
            assert got is not None and got.value == {"i": i}
            assert keys_of(await store.asearch((label,))) == [((label,), key)]
        assert len(await store.asearch(("cve",), limit=100)) == len(PAYLOAD_KEYS) + 2
    assert set(STORE_TABLES) <= tables(path)


# -- query plans -----------------------------------------------------------------------------


def plan(path: Path, statement: str, params: list[Any]) -> list[str]:
    return [row[3] for row in raw(path, "EXPLAIN QUERY PLAN " + statement, tuple(params))]


def test_searches_use_the_primary_key_and_indexes(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with SQLiteStore(path) as store:
        store.put(("users", "u1"), "k", {"kind": "pref"})
    conditions, params = _under(("users",), T0)
    conditions.append(store_sql.SEARCH_EQUALS)
    params += ["kind", "pref", 10, 0]
    steps = plan(path, store_sql.SELECT_ITEMS_PAGE.format(where=" AND ".join(conditions)), params)
    assert any("USING PRIMARY KEY (namespace=?)" in s for s in steps), steps
    assert any("USING PRIMARY KEY (namespace>? AND namespace<?)" in s for s in steps), steps
    assert not any(s.startswith("SCAN m") for s in steps), steps
    # The whole store, newest first: the update index in its order, no sort.
    conditions, params = _under((), T0)
    steps = plan(path, store_sql.SELECT_ITEMS_PAGE.format(where=" AND ".join(conditions)), [*params, 10, 0])
    assert steps == ["SCAN m USING INDEX memory_items_by_update"], steps
    # Namespaces under a prefix: the primary key.
    conditions, params = _under(("users",), T0)
    steps = plan(path, store_sql.SELECT_NAMESPACES.format(where=" AND ".join(conditions)), params)
    assert any("USING PRIMARY KEY" in s for s in steps) and not any(s.startswith("SCAN") for s in steps), steps
    # The sweep: the partial expiry index.
    assert any("memory_items_by_expiry" in s for s in plan(path, store_sql.SWEEP_ITEMS, [T0]))
    assert any("memory_items_by_expiry" in s for s in plan(path, store_sql.SWEEP_VECTORS, [T0]))


# -- the node cache --------------------------------------------------------------------------


async def test_cache_get_set_clear_and_ttl(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    now = [T0]
    async with SQLiteCache(path, clock=lambda: now[0]) as cache:
        await cache.aset({
            (("a",), "k1"): ({"v": 1}, None),
            (("a", "b"), "k2"): ([1, 2], 10),
            (("a.b",), "k3"): ("three", None),
        })
        assert await cache.aget([(("a",), "k1"), (("a", "b"), "k2"), (("a.b",), "k3"), (("a",), "missing")]) == {
            (("a",), "k1"): {"v": 1},
            (("a", "b"), "k2"): [1, 2],
            (("a.b",), "k3"): "three",
        }
        assert sorted(raw(path, "SELECT namespace, key, expires_at FROM node_cache")) == [
            ('["a","b"]', "k2", T0 + 10), ('["a"]', "k1", None), ('["a.b"]', "k3", None)
        ]
        now[0] = T0 + 10
        assert await cache.aget([(("a", "b"), "k2")]) == {}
        await cache.aset({(("a",), "k1"): ({"v": 2}, None)})
        assert await cache.aget([(("a",), "k1")]) == {(("a",), "k1"): {"v": 2}}
        # that set also removed the expired k2 (the cache's sweep)
        assert sorted(r[0] for r in raw(path, "SELECT namespace FROM node_cache")) == ['["a"]', '["a.b"]']
        await cache.aclear([("a",)])
        assert sorted(r[0] for r in raw(path, "SELECT namespace FROM node_cache")) == ['["a.b"]']
        await cache.aclear()
        assert raw(path, "SELECT count(*) FROM node_cache") == [(0,)]


def test_cache_blocking(tmp_path: Path) -> None:
    with SQLiteCache(tmp_path / "c.sqlite") as blocking:
        blocking.set({(("x",), "k"): (b"bytes", None)})
        assert blocking.get([(("x",), "k")]) == {(("x",), "k"): b"bytes"}
        blocking.clear([("x",)])
        assert blocking.get([(("x",), "k")]) == {}


class Numbers(TypedDict, total=False):
    x: int
    out: int


def cached_graph(cache: SQLiteCache, calls: list[int]) -> Any:
    def expensive(state: Numbers) -> dict[str, Any]:
        calls.append(state["x"])
        return {"out": state["x"] * 2}

    builder = StateGraph(Numbers)
    builder.add_node("expensive", expensive, cache_policy=CachePolicy())
    builder.add_edge(START, "expensive")
    builder.add_edge("expensive", END)
    return builder.compile(cache=cache)


def test_graph_node_runs_once_for_identical_invokes(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    calls: list[int] = []
    with SQLiteCache(path) as cache:
        graph = cached_graph(cache, calls)
        assert graph.invoke({"x": 2}) == {"x": 2, "out": 4}
        assert graph.invoke({"x": 2}) == {"x": 2, "out": 4}
        assert calls == [2]
        assert graph.invoke({"x": 3}) == {"x": 3, "out": 6}
        assert calls == [2, 3]
    # The cache outlives the process's cache object: a new one on the file hits too.
    with SQLiteCache(path) as cache:
        graph = cached_graph(cache, calls)
        assert graph.invoke({"x": 2}) == {"x": 2, "out": 4}
        assert calls == [2, 3]
        graph.clear_cache()
        assert graph.invoke({"x": 2}) == {"x": 2, "out": 4}
        assert calls == [2, 3, 2]


async def test_graph_node_runs_once_async(tmp_path: Path) -> None:
    calls: list[int] = []
    async with SQLiteCache(tmp_path / "c.sqlite") as cache:
        graph = cached_graph(cache, calls)
        first, second = await graph.ainvoke({"x": 5}), await graph.ainvoke({"x": 5})
        assert first == second == {"x": 5, "out": 10}
        assert calls == [5]
        await asyncio.gather(*(graph.ainvoke({"x": 5}) for _ in range(4)))
        assert calls == [5]
