"""PostgresSaver against the real server: schema, round trips, pools, concurrency,
reconnection, bad input and garbage collection. No mocks; nothing is skipped."""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6

from langgraph_unified_store import (
    BackendUnavailableError,
    CorruptDataError,
    InvalidConfigError,
    PostgresSaver,
    SerializationError,
    create_saver,
)
from langgraph_unified_store.backends.postgres import SCHEMA_VERSION
from langgraph_unified_store.backends.postgres.connection import CONNECTION_ATTEMPTS
from langgraph_unified_store.backends.postgres.keys import TYPE_CODES
from langgraph_unified_store.backends.postgres.keys import blob_key as _blob_key
from langgraph_unified_store.backends.postgres.keys import checkpoint_key as _checkpoint_key
from langgraph_unified_store.backends.postgres.keys import lock_key as _lock_key
from langgraph_unified_store.backends.postgres.keys import (
    read_checkpoint_key as _read_checkpoint_key,
)
from langgraph_unified_store.backends.postgres.keys import read_type as _read_type
from langgraph_unified_store.backends.postgres.keys import read_write_key as _read_write_key
from langgraph_unified_store.backends.postgres.keys import stored_type as _stored_type
from langgraph_unified_store.backends.postgres.keys import write_key as _write_key
from langgraph_unified_store.backends.postgres.keys import write_prefix as _write_prefix
from langgraph_unified_store.backends.postgres.ordered_ids import (
    decode_ordered_id,
    encode_ordered_id,
)
from langgraph_unified_store.backends.postgres.sql import (
    BLOB_KEY_SQL,
    ID_PART_SQL,
    NS_PART_SQL,
    WRITE_PREFIX_SQL,
)

from .graphs import padded_chat_graph, padded_turn
from .support import POSTGRES_DSN, config_for, numbered_checkpoint, put_numbered, unique

pytestmark = pytest.mark.postgres

SECRET = "pw-Sh0uld-N3ver-Show"


@pytest.fixture
async def pg() -> AsyncIterator[PostgresSaver]:
    saver = PostgresSaver(POSTGRES_DSN, schema=unique("lus_pgt"))
    try:
        await saver.asetup()
        yield saver
    finally:
        await saver.backend.drop_all()
        await saver.aclose()


async def drop_schema(admin: Any, schema: str) -> None:
    await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- the saver as a context manager, both APIs ----------------------------------------------


def test_from_conn_string_with_blocking_graph() -> None:
    schema = unique("lus_pgt")
    try:
        with PostgresSaver.from_conn_string(POSTGRES_DSN, schema=schema) as saver:
            graph = padded_chat_graph(saver)
            for text in ("one", "two"):
                graph.invoke(padded_turn(text), config_for("t"))
            assert len(graph.get_state(config_for("t")).values["messages"]) == 6
            assert saver.list_workflows() == ["t"]
    finally:
        asyncio.run(_drop(schema))


async def _drop(schema: str) -> None:
    connection = await asyncpg.connect(POSTGRES_DSN)
    try:
        await drop_schema(connection, schema)
    finally:
        await connection.close()


async def test_from_conn_string_with_async_graph(admin: Any) -> None:
    schema = unique("lus_pgt")
    try:
        async with PostgresSaver.from_conn_string(POSTGRES_DSN, schema=schema) as saver:
            graph = padded_chat_graph(saver)
            for text in ("one", "two", "three"):
                await graph.ainvoke(padded_turn(text), config_for("t"))
            state = await graph.aget_state(config_for("t"))
            assert len(state.values["messages"]) == 9
            history = [s async for s in graph.aget_state_history(config_for("t"))]
            assert len(history) == 3 * 4
    finally:
        await drop_schema(admin, schema)


async def test_factory_builds_a_postgres_saver(admin: Any) -> None:
    schema = unique("lus_pgt")
    try:
        saver = create_saver(POSTGRES_DSN, schema=schema)
        assert isinstance(saver, PostgresSaver)
        async with saver:
            await put_numbered(saver, "t", 1, x=1)
            assert (await saver.aget_tuple(config_for("t"))) is not None
    finally:
        await drop_schema(admin, schema)


# -- schema and migrations ------------------------------------------------------------------


async def test_schema_layout_and_indexes(pg: PostgresSaver, admin: Any) -> None:
    schema = pg.backend.schema
    columns = await admin.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = $1",
        schema,
    )
    found = {(r["table_name"], r["column_name"]): r["data_type"] for r in columns}
    assert found == {
        ("lus_store", "thread_id"): "text",
        ("lus_store", "key"): "bytea",
        ("lus_store", "type"): "text",
        ("lus_store", "data"): "bytea",
        ("lus_store", "refs"): "bytea",
        ("lus_store", "channel_versions"): "json",
        ("lus_store", "metadata"): "jsonb",
        ("lus_store", "run_id"): "text",
        ("lus_migrations", "version"): "integer",
        ("lus_migrations", "applied_at"): "timestamp with time zone",
        ("lus_threads", "thread_id"): "text",
        ("lus_threads", "first_write"): "double precision",
        ("lus_threads", "last_write"): "double precision",
        ("lus_threads", "own_ttl"): "double precision",
        ("lus_threads", "expires_at"): "double precision",
        # The memory store and the node cache (migration 4).
        ("lus_memory_items", "namespace"): "text",
        ("lus_memory_items", "key"): "text",
        ("lus_memory_items", "value"): "jsonb",
        ("lus_memory_items", "created_at"): "double precision",
        ("lus_memory_items", "updated_at"): "double precision",
        ("lus_memory_items", "ttl"): "double precision",
        ("lus_memory_items", "expires_at"): "double precision",
        ("lus_memory_vectors", "namespace"): "text",
        ("lus_memory_vectors", "key"): "text",
        ("lus_memory_vectors", "path"): "text",
        ("lus_memory_vectors", "vector"): "bytea",
        ("lus_node_cache", "namespace"): "text",
        ("lus_node_cache", "key"): "text",
        ("lus_node_cache", "type"): "text",
        ("lus_node_cache", "data"): "bytea",
        ("lus_node_cache", "expires_at"): "double precision",
    }
    # Eight columns at most: the null bitmap then fits the 24-byte row header.
    storage = await admin.fetchval(
        "SELECT attstorage FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'refs'",
        f'"{schema}".lus_store',
    )
    assert storage == b"m"  # "char": segment references stay inline rather than in TOAST
    indexes = {
        r["indexname"]: r["indexdef"]
        for r in await admin.fetch("SELECT * FROM pg_indexes WHERE schemaname = $1", schema)
    }
    assert "jsonb_path_ops" in indexes["lus_store_metadata_idx"]
    assert "WHERE (metadata IS NOT NULL)" in indexes["lus_store_metadata_idx"]
    assert "(run_id)" in indexes["lus_store_run_id_idx"]
    assert "WHERE (expires_at IS NOT NULL)" in indexes["lus_threads_by_expiry"]
    assert "(last_write)" in indexes["lus_threads_by_last_write"]
    assert "gin (value jsonb_path_ops)" in indexes["lus_memory_items_value_idx"]
    assert "WHERE (expires_at IS NOT NULL)" in indexes["lus_memory_items_by_expiry"]
    assert "(updated_at DESC, namespace, key)" in indexes["lus_memory_items_by_update"]
    assert "WHERE (expires_at IS NOT NULL)" in indexes["lus_node_cache_by_expiry"]
    assert set(indexes) == {
        "lus_store_pkey", "lus_store_metadata_idx", "lus_store_run_id_idx",
        "lus_threads_pkey", "lus_threads_by_expiry", "lus_threads_by_last_write",
        "lus_memory_items_pkey", "lus_memory_items_value_idx", "lus_memory_items_by_expiry",
        "lus_memory_items_by_update", "lus_memory_vectors_pkey", "lus_node_cache_pkey", "lus_node_cache_by_expiry",
    }
    versions = await admin.fetch(f'SELECT version FROM "{schema}".lus_migrations')
    assert [r["version"] for r in versions] == list(range(1, SCHEMA_VERSION + 1))


IDS = [
    "1f1e63c2-4797-6c5f-bfff-4ca26e0da69b",  # canonical: 17 bytes
    "1F1E63C2-4797-6C5F-BFFF-4CA26E0DA69B",  # upper case: kept as text
    "1f1e63c24797-6c5f-bfff-4ca26e0da69b-",
    "1f1e63c2x4797-6c5f-bfff-4ca26e0da69b",
    "1f1e63c2-4797-6c5f-bfff-4ca26e0da-9b",
    "-" * 36,
    "1f1e63c2-4797-6c5f-bfff-4ca26e0da69\u00e9",
    "",
    "1",
    "ck\u00e9\U0001f600",
    "\x01\x02",
]


async def test_keys_built_in_python_and_in_sql_agree(admin: Any) -> None:
    """Reads and garbage collection take checkpoint keys apart in SQL to find blobs and
    writes; puts build the keys in Python. A mismatch would hide stored rows."""
    for ns in ["", "sub:1", "n\u00e9"]:
        for cid in IDS:
            key = _checkpoint_key(ns, cid)
            assert _read_checkpoint_key("t", key) == (ns, cid)
            sql = WRITE_PREFIX_SQL.replace("{key}", "$1::bytea")
            assert await admin.fetchval(f"SELECT {sql}", key) == _write_prefix(ns, cid)
            sql = NS_PART_SQL.replace("{key}", "$1::bytea")
            assert await admin.fetchval(f"SELECT {sql}", key) == ns.encode() + b"\x00"
            sql = ID_PART_SQL.replace("{key}", "$1::bytea")
            assert await admin.fetchval(f"SELECT {sql}", key) == encode_ordered_id(cid)
            for task_id in IDS:
                for idx in (-4, -1, 0, 7, 2**31 - 1, -(2**31)):
                    write_key = _write_key(_write_prefix(ns, cid), task_id, idx)
                    assert _read_write_key(write_key, len(_write_prefix(ns, cid))) == (task_id, idx)
        sql = (
            BLOB_KEY_SQL.replace("{ns_part}", "$1::bytea")
            .replace("{version}", "$2::text")
            .replace("{channel}", "$3::text")
        )
        assert await admin.fetchval(
            f"SELECT {sql}", ns.encode() + b"\x00", "a1.3f", "branch:to:x"
        ) == _blob_key(ns, "branch:to:x", "a1.3f")
    with pytest.raises(InvalidConfigError):
        _write_key(b"w", IDS[0], 2**31)


def test_ordered_ids_keep_text_order_and_round_trip() -> None:
    """Checkpoint keys list in id order only if the encoding keeps text order, for any
    id: UUIDs, near-UUIDs, prefixes and extensions of them, and arbitrary text."""
    rng = random.Random(7)
    alphabet = "0123456789abcdef-./:AZaz~\u00e9\u4e2d\U0001f600\x01"
    ids = [str(uuid6()) for _ in range(200)] + [str(uuid.uuid4()) for _ in range(50)] + IDS
    for base in ids[:150]:
        at = rng.randrange(len(base) + 1)
        ids += [base[:at], base[:at] + rng.choice(alphabet) + base[at + 1 :], base + rng.choice(alphabet)]
    ids += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(40))) for _ in range(1000)]
    ids = list(dict.fromkeys(ids))
    for cid in ids:
        encoded = encode_ordered_id(cid)
        assert decode_ordered_id(b"ab" + encoded + b"\x01rest", 2) == (cid, 2 + len(encoded))
    assert sorted(ids, key=lambda i: i.encode()) == sorted(ids, key=encode_ordered_id)
    # A canonical UUID costs 4 bits per hex digit, 5 for '0', 'a' and 'f', 2 per dash and
    # 1 for the end: 18 bytes when at most 7 of its 32 digits are 0/a/f, a byte more
    # for each 8 more (most uuid6 ids take 18 or 19 bytes; 20 when 16 digits are 0/a/f).
    for _ in range(500):
        cid = str(uuid6())
        bits = 32 * 4 + sum(cid.count(d) for d in "0af") + 4 * 2 + 1
        assert len(encode_ordered_id(cid)) == -(-bits // 8)
    with pytest.raises(ValueError):
        encode_ordered_id("a\x00b")
    with pytest.raises(ValueError):
        decode_ordered_id(b"\xff")


def test_type_tags_round_trip() -> None:
    for type_ in [*TYPE_CODES, "", "x", "pickle", "\x01", "\x1f", "\x1fmsgpack", "\x0bz", "msgpack2"]:
        assert _read_type(_stored_type(type_)) == type_
    assert all(len(_stored_type(t)) == 1 for t in TYPE_CODES)


async def test_concurrent_setups_in_one_process(admin: Any) -> None:
    schema = unique("lus_pgt")
    savers = [PostgresSaver(POSTGRES_DSN, schema=schema) for _ in range(4)]
    try:
        await asyncio.gather(*(s.asetup() for s in savers))
        # and the blocking API from several threads at once
        blocking = [PostgresSaver(POSTGRES_DSN, schema=schema) for _ in range(3)]
        savers.extend(blocking)
        threads = [threading.Thread(target=saver.setup) for saver in blocking]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        versions = await admin.fetch(f'SELECT version FROM "{schema}".lus_migrations')
        assert [r["version"] for r in versions] == list(range(1, SCHEMA_VERSION + 1))
        await savers[0].asetup()  # idempotent
        await put_numbered(savers[1], "t", 1, x=1)
        assert (await savers[2].aget_tuple(config_for("t"))) is not None
    finally:
        for saver in savers:
            await saver.aclose()
        await drop_schema(admin, schema)


SETUP_SCRIPT = """
import sys
from langgraph_unified_store import PostgresSaver
with PostgresSaver(sys.argv[1], schema=sys.argv[2]) as saver:
    saver.setup()
print("ok")
"""


async def test_two_processes_set_up_at_once(admin: Any) -> None:
    schema = unique("lus_pgt")
    try:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", SETUP_SCRIPT, POSTGRES_DSN, schema],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        results = [await asyncio.to_thread(p.communicate, timeout=120) for p in processes]
        for process, (out, err) in zip(processes, results, strict=True):
            assert process.returncode == 0, err.decode()
            assert out.strip() == b"ok"
        versions = await admin.fetch(f'SELECT version FROM "{schema}".lus_migrations')
        assert [r["version"] for r in versions] == list(range(1, SCHEMA_VERSION + 1))
    finally:
        await drop_schema(admin, schema)


async def test_setup_runs_lazily_on_first_use(admin: Any) -> None:
    schema = unique("lus_pgt")
    saver = PostgresSaver(POSTGRES_DSN, schema=schema)
    try:
        assert await saver.alist_workflows() == []
        await put_numbered(saver, "lazy", 1, x=1)
        assert await saver.alist_workflows() == ["lazy"]
    finally:
        await saver.backend.drop_all()
        await saver.aclose()
    assert not await admin.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema
    )


@pytest.mark.parametrize(
    "schema",
    ["", "1abc", "a-b", 'x"; DROP TABLE y; --', "a b", "pg_mine", "x" * 64, None, 3],
)
def test_bad_schema_names_are_refused(schema: Any) -> None:
    with pytest.raises(InvalidConfigError, match="schema"):
        PostgresSaver(POSTGRES_DSN, schema=schema)


async def test_mixed_case_schema_is_quoted(admin: Any) -> None:
    schema = "Lus_Mixed_" + uuid.uuid4().hex[:8]
    try:
        async with PostgresSaver(POSTGRES_DSN, schema=schema) as saver:
            await put_numbered(saver, "t", 1, x=1)
        assert await admin.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema
        )
    finally:
        await drop_schema(admin, schema)


async def test_public_schema_drop_all_drops_only_our_tables(admin: Any) -> None:
    database = unique("lus_pgdb")
    await admin.execute(f'CREATE DATABASE "{database}"')
    dsn = POSTGRES_DSN.rsplit("/", 1)[0] + f"/{database}"
    try:
        async with PostgresSaver(dsn) as saver:
            await put_numbered(saver, "t", 1, x=1)
            other = await asyncpg.connect(dsn)
            try:
                await other.execute("CREATE TABLE public.checkpoints (keep int)")
                await saver.backend.drop_all()
                tables = {r[0] for r in await other.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            finally:
                await other.close()
            assert tables == {"checkpoints"}  # the official saver's name is left alone
            # and it comes back lazily
            await put_numbered(saver, "t", 2, x=2)
            assert await saver.alist_workflows() == ["t"]
    finally:
        await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


# -- round trips ----------------------------------------------------------------------------


async def test_each_operation_is_one_statement(admin: Any) -> None:
    """get_tuple, put, put_writes and each list page are one statement each."""
    statements: list[str] = []

    def log(query: Any) -> None:
        # The pool's own reset on release is the caller's pool setting, not the saver's.
        if not query.query.startswith("SELECT pg_advisory_unlock_all()"):
            statements.append(query.query)

    async def init(connection: Any) -> None:
        connection.add_query_logger(log)

    schema = unique("lus_pgt")
    pool = await asyncpg.create_pool(POSTGRES_DSN, min_size=1, max_size=2, init=init)
    saver = PostgresSaver(pool, schema=schema)
    try:
        await saver.asetup()
        graph = padded_chat_graph(saver)
        await graph.ainvoke(padded_turn("warm"), config_for("t"))
        latest = await saver.aget_tuple(config_for("t"))
        assert latest is not None

        statements.clear()
        assert await saver.aget_tuple(config_for("t")) is not None
        assert len(statements) == 1
        statements.clear()
        assert await saver.aget_tuple(latest.config) is not None
        assert len(statements) == 1

        statements.clear()
        await saver.aput_writes(latest.config, [("messages", [AIMessage("w" * 300)])], "task-1")
        assert len(statements) == 1

        statements.clear()
        made = numbered_checkpoint(10**9, messages=[HumanMessage("m" * 300), AIMessage("n" * 300)])
        await saver.aput(config_for("t"), made, {"source": "loop"}, dict(made["channel_versions"]))
        assert len(statements) == 1

        for number in range(120):
            await put_numbered(saver, "many", number, x=number)
        statements.clear()
        listed = [t async for t in saver.alist(config_for("many"))]
        assert len(listed) == 120
        assert len(statements) == 3  # pages of 50, 50 and 20
    finally:
        await saver.backend.drop_all()
        await saver.aclose()
        await pool.close()


# -- an existing asyncpg pool ---------------------------------------------------------------


async def test_existing_pool_serves_both_apis_and_stays_open() -> None:
    schema = unique("lus_pgt")
    pool = await asyncpg.create_pool(POSTGRES_DSN, min_size=1, max_size=4)
    saver = PostgresSaver(pool, schema=schema)
    try:
        graph = padded_chat_graph(saver)
        await graph.ainvoke(padded_turn("async"), config_for("t"))
        # The blocking API from a worker thread is handed to the pool's (running) loop.
        await asyncio.to_thread(graph.invoke, padded_turn("sync"), config_for("t"))
        state = await asyncio.to_thread(graph.get_state, config_for("t"))
        assert len(state.values["messages"]) == 6
        assert await asyncio.to_thread(saver.list_workflows) == ["t"]
        await saver.aclose()
        assert await pool.fetchval("SELECT 1") == 1  # the caller's pool is still open
        saver = PostgresSaver(pool, schema=schema)
        assert await saver.alist_workflows() == ["t"]
    finally:
        await saver.backend.drop_all()
        await saver.aclose()
        await pool.close()


def test_existing_pool_on_a_finished_loop_is_refused_clearly() -> None:
    async def make() -> Any:
        return await asyncpg.create_pool(POSTGRES_DSN, min_size=0, max_size=1)

    pool = asyncio.run(make())
    saver = PostgresSaver(pool, schema=unique("lus_pgt"))
    try:
        with pytest.raises(InvalidConfigError, match="event loop is not running"):
            saver.get_tuple(config_for("t"))
    finally:
        saver.close()


async def test_pool_options_with_an_existing_pool_are_refused() -> None:
    pool = await asyncpg.create_pool(POSTGRES_DSN, min_size=0, max_size=1)
    try:
        with pytest.raises(InvalidConfigError, match="max_size"):
            PostgresSaver(pool, max_size=5)
        with pytest.raises(InvalidConfigError, match="prepared_statements"):
            PostgresSaver(pool, prepared_statements=False)
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("conn", "options"),
    [
        ("mysql://x@127.0.0.1/db", {}),
        (42, {}),
        (POSTGRES_DSN, {"min_size": 5, "max_size": 2}),
        (POSTGRES_DSN, {"connect_timeout": 0}),
        (POSTGRES_DSN, {"command_timeout": -1}),
        (POSTGRES_DSN, {"no_such_option": 1}),
    ],
)
def test_bad_options_are_refused(conn: Any, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfigError):
        PostgresSaver(conn, **options)


# -- no saver-wide lock ---------------------------------------------------------------------


async def _wait_until_blocked(admin: Any, key: int) -> None:
    """Until some session waits for this advisory lock (no timing involved)."""
    classid, objid = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    while not await admin.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND classid::bigint = $1 AND objid::bigint = $2)",
        classid,
        objid,
    ):
        await asyncio.sleep(0.01)


async def test_a_blocked_call_does_not_hold_up_others_async(pg: PostgresSaver, admin: Any) -> None:
    key = _lock_key(pg.backend.schema, "blocked")
    await put_numbered(pg, "free", 1, x=1)
    async with admin.transaction():
        await admin.execute("SELECT pg_advisory_xact_lock($1)", key)
        blocked = asyncio.create_task(put_numbered(pg, "blocked", 1, x=1))
        await _wait_until_blocked(admin, key)
        # Other calls on the same saver go through while that put waits.
        await put_numbered(pg, "free", 2, x=2)
        assert (await pg.aget_tuple(config_for("free"))) is not None
        assert [t async for t in pg.alist(config_for("free"))]
        assert not blocked.done()
    await blocked
    assert (await pg.aget_tuple(config_for("blocked"))) is not None


async def test_a_blocked_call_does_not_hold_up_others_sync(pg: PostgresSaver, admin: Any) -> None:
    key = _lock_key(pg.backend.schema, "blocked")
    made = numbered_checkpoint(1, x=1)

    def blocking_put(thread_id: str) -> Any:
        return pg.put(config_for(thread_id), made, {}, dict(made["channel_versions"]))

    async with admin.transaction():
        await admin.execute("SELECT pg_advisory_xact_lock($1)", key)
        blocked = asyncio.ensure_future(asyncio.to_thread(blocking_put, "blocked"))
        await _wait_until_blocked(admin, key)
        await asyncio.to_thread(blocking_put, "free")
        assert await asyncio.to_thread(pg.get_tuple, config_for("free")) is not None
        assert not blocked.done()
    await blocked
    assert await asyncio.to_thread(pg.get_tuple, config_for("blocked")) is not None


def test_many_threads_run_graphs_through_the_blocking_api() -> None:
    schema = unique("lus_pgt")
    errors: list[BaseException] = []
    try:
        with PostgresSaver(POSTGRES_DSN, schema=schema, max_size=4) as saver:
            graph = padded_chat_graph(saver)

            def conversation(index: int) -> None:
                try:
                    for number in range(3):
                        graph.invoke(padded_turn(f"{index}-{number}"), config_for(f"t{index}"))
                    assert len(graph.get_state(config_for(f"t{index}")).values["messages"]) == 9
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=conversation, args=(i,)) for i in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert not errors, errors
            assert saver.list_workflows() == sorted(f"t{i}" for i in range(8))
    finally:
        asyncio.run(_drop(schema))


# -- listing --------------------------------------------------------------------------------


async def test_list_pages_through_threads_and_namespaces_in_order(pg: PostgresSaver) -> None:
    for number in range(1, 121):
        await put_numbered(pg, "a", number, metadata={"step": number % 3, "even": number % 2 == 0}, x=number)
    for number in range(1, 6):
        await put_numbered(pg, "a", number, ns="child:1", x=number)
    for number in range(50, 60):
        await put_numbered(pg, "b", number, x=number)

    ids = [t.checkpoint["id"] async for t in pg.alist(config_for("a"))]
    assert ids == [numbered_checkpoint(n)["id"] for n in range(120, 0, -1)]

    both = [t async for t in pg.alist({"configurable": {"thread_id": "a"}})]
    expected = sorted(
        [(numbered_checkpoint(n)["id"], "") for n in range(1, 121)]
        + [(numbered_checkpoint(n)["id"], "child:1") for n in range(1, 6)],
        reverse=True,
    )
    assert [(t.checkpoint["id"], t.config["configurable"]["checkpoint_ns"]) for t in both] == expected

    everything = [t async for t in pg.alist(None)]
    keys = [
        (t.checkpoint["id"], t.config["configurable"]["thread_id"], t.config["configurable"]["checkpoint_ns"])
        for t in everything
    ]
    assert keys == sorted(keys, reverse=True) and len(keys) == 135

    before = [t.checkpoint["id"] async for t in pg.alist(config_for("a"), before=config_for("a", numbered_checkpoint(75)["id"]), limit=60)]
    assert before == [numbered_checkpoint(n)["id"] for n in range(74, 14, -1)]

    step_one = [t.metadata["step"] async for t in pg.alist(config_for("a"), filter={"step": 1})]
    assert len(step_one) == 40 and set(step_one) == {1}
    # JSON types are exact: true is not 1, 1 is not "1"
    assert [t async for t in pg.alist(config_for("a"), filter={"even": 1})] == []
    assert [t async for t in pg.alist(config_for("a"), filter={"step": True})] == []
    assert [t async for t in pg.alist(config_for("a"), filter={"step": "1"})] == []
    assert len([t async for t in pg.alist(config_for("a"), filter={"even": True, "step": 0})]) == 20
    assert len([t async for t in pg.alist(None, filter={"step": 2}, limit=7)]) == 7
    with pytest.raises(InvalidConfigError, match="inf"):  # no metadata can hold it
        [t async for t in pg.alist(config_for("a"), filter={"step": float("inf")})]

    sync_ids = await asyncio.to_thread(lambda: [t.checkpoint["id"] for t in pg.list(config_for("a"))])
    assert sync_ids == ids


async def test_filter_key_injection_finds_nothing_and_damages_nothing(
    pg: PostgresSaver, admin: Any
) -> None:
    schema = pg.backend.schema
    await admin.execute(f'CREATE TABLE "{schema}".x (id int)')
    await put_numbered(pg, "t", 1, metadata={"source": "input"}, x=1)
    hostile = [
        {"source'; DROP TABLE x; --": 1},
        {"source": "input'; DROP TABLE x; --"},
        {'source" = 1 OR 1=1 --': "input"},
    ]
    for filter_ in hostile:
        assert [t async for t in pg.alist(None, filter=filter_)] == []
    assert await admin.fetchval(f'SELECT count(*) FROM "{schema}".x') == 0
    assert len([t async for t in pg.alist(None, filter={"source": "input"})]) == 1
    thread = "t'); DELETE FROM lus_checkpoints; --"
    await put_numbered(pg, thread, 1, x=1)
    assert (await pg.aget_tuple(config_for(thread))) is not None
    assert sorted(await pg.alist_workflows()) == sorted(["t", thread])


# -- NUL characters and other bad input -----------------------------------------------------


async def test_nul_characters_are_refused_or_round_trip(pg: PostgresSaver) -> None:
    with pytest.raises(InvalidConfigError, match="NUL"):
        await put_numbered(pg, "a\x00b", 1, x=1)
    with pytest.raises(InvalidConfigError, match="NUL"):
        await put_numbered(pg, "t", 1, metadata={"k\x00": 1}, x=1)
    with pytest.raises(InvalidConfigError, match="NUL"):
        await put_numbered(pg, "t", 1, metadata={"nested": {"v": ["x\x00y"]}}, x=1)
    with pytest.raises(InvalidConfigError, match="NUL"):
        await put_numbered(pg, "t", 1, ns="child\x00", x=1)
    assert await pg.alist_workflows() == []  # nothing half-written

    # A backslash followed by "u0000" is ordinary text, not a NUL.
    saved = await put_numbered(pg, "t", 1, metadata={"note": "\\u0000"}, text="bytes \x00 are fine")
    with pytest.raises(InvalidConfigError, match="NUL"):
        await pg.aput_writes(saved, [("x", 1)], "task\x00")
    with pytest.raises(InvalidConfigError, match="NUL"):
        await pg.aput_writes(saved, [("chan\x00nel", 1)], "task")
    loaded = await pg.aget_tuple(config_for("t"))
    assert loaded is not None
    assert loaded.checkpoint["channel_values"]["text"] == "bytes \x00 are fine"
    assert loaded.metadata["note"] == "\\u0000"
    # LangGraph itself strips NUL from top-level metadata strings, for every saver.
    await put_numbered(pg, "t", 2, metadata={"note": "x\x00y"}, x=1)
    assert (await pg.aget_tuple(config_for("t"))).metadata["note"] == "xy"
    assert loaded.pending_writes == []

    # Refused on reads too, as on every backend (the core checks ids once for all).
    with pytest.raises(InvalidConfigError, match="NUL"):
        await pg.aget_tuple(config_for("a\x00b"))
    with pytest.raises(InvalidConfigError, match="NUL"):
        [t async for t in pg.alist(config_for("a\x00b"))]
    with pytest.raises(InvalidConfigError, match="NUL"):
        [t async for t in pg.alist(None, filter={"note": "\x00"})]
    with pytest.raises(InvalidConfigError, match="NUL"):
        [t async for t in pg.alist(None, filter={"\x00": 1})]
    with pytest.raises(InvalidConfigError, match="NUL"):
        await pg.adelete_thread("a\x00b")
    with pytest.raises(InvalidConfigError, match="NUL"):
        await pg.aprune(["a\x00b"])
    with pytest.raises(InvalidConfigError, match="NUL"):
        await pg.acopy_thread("t", "x\x00")
    assert await pg.alist_workflows() == ["t"]


async def test_lone_surrogate_is_refused_clearly(pg: PostgresSaver) -> None:
    with pytest.raises((InvalidConfigError, SerializationError)):
        await put_numbered(pg, "bad\ud800", 1, x=1)
    assert await pg.alist_workflows() == []


async def test_unserializable_value_leaves_other_threads_untouched(pg: PostgresSaver) -> None:
    await put_numbered(pg, "other", 1, x=1)
    before = await pg.aget_tuple(config_for("other"))
    with pytest.raises(SerializationError):
        await put_numbered(pg, "t", 1, x=object())
    assert await pg.aget_tuple(config_for("t")) is None
    after = await pg.aget_tuple(config_for("other"))
    assert before is not None and after is not None and after.checkpoint == before.checkpoint


# -- the server going away ------------------------------------------------------------------


async def test_next_call_succeeds_after_connections_are_terminated(admin: Any) -> None:
    schema = unique("lus_pgt")
    app = unique("lus_term")
    saver = PostgresSaver(POSTGRES_DSN, schema=schema, server_settings={"application_name": app})
    try:
        await saver.asetup()
        await put_numbered(saver, "t", 1, x=1)
        await asyncio.to_thread(saver.get_tuple, config_for("t"))  # the blocking API's pool too
        for _ in range(2):
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1",
                app,
            )
            assert killed >= 2
            assert (await saver.aget_tuple(config_for("t"))) is not None
            assert await asyncio.to_thread(saver.get_tuple, config_for("t")) is not None
            await put_numbered(saver, "t", 2, x=2)
            assert await asyncio.to_thread(saver.list_workflows) == ["t"]
    finally:
        await saver.backend.drop_all()
        await saver.aclose()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


def _assert_names_server_not_password(error: BaseException, port: int, database: str) -> None:
    text = str(error)
    assert "127.0.0.1" in text and str(port) in text and database in text, text
    assert SECRET not in text and SECRET not in repr(error)
    cause = error.__cause__ or error.__context__
    while cause is not None:
        assert SECRET not in str(cause)
        cause = cause.__cause__ or cause.__context__


async def test_unreachable_port_fails_without_the_password(closed_port: int) -> None:
    dsn = f"postgresql://postgres:{SECRET}@127.0.0.1:{closed_port}/somedb"
    saver = PostgresSaver(dsn, connect_timeout=2)
    assert SECRET not in repr(saver)
    try:
        with pytest.raises(BackendUnavailableError) as caught:
            await saver.aget_tuple(config_for("t"))
        _assert_names_server_not_password(caught.value, closed_port, "somedb")
        with pytest.raises(BackendUnavailableError) as caught:
            await asyncio.to_thread(saver.get_tuple, config_for("t"))
        _assert_names_server_not_password(caught.value, closed_port, "somedb")
    finally:
        await saver.aclose()


async def test_silent_server_fails_within_connect_timeout(silent_server: int) -> None:
    dsn = f"postgresql://postgres:{SECRET}@127.0.0.1:{silent_server}/somedb"
    saver = PostgresSaver(dsn, connect_timeout=0.5)
    try:
        with pytest.raises(BackendUnavailableError) as caught:
            await saver.aget_tuple(config_for("t"))
        _assert_names_server_not_password(caught.value, silent_server, "somedb")
    finally:
        await saver.aclose()


async def test_missing_database_and_bogus_password_are_named_not_shown() -> None:
    host_port = POSTGRES_DSN.split("@", 1)[1].split("/", 1)[0]
    dsn = f"postgresql://postgres:{SECRET}@{host_port}/lus_no_such_db"
    saver = PostgresSaver(dsn, password=SECRET + "2")
    try:
        with pytest.raises(BackendUnavailableError) as caught:
            await saver.aget_tuple(config_for("t"))
        assert "lus_no_such_db" in str(caught.value)
        assert SECRET not in str(caught.value)
    finally:
        await saver.aclose()


async def test_statement_past_command_timeout_is_unavailable_then_recovers(admin: Any) -> None:
    schema = unique("lus_pgt")
    saver = PostgresSaver(POSTGRES_DSN, schema=schema, command_timeout=0.5)
    try:
        await saver.asetup()
        key = _lock_key(schema, "t")
        async with admin.transaction():
            await admin.execute("SELECT pg_advisory_xact_lock($1)", key)
            with pytest.raises(BackendUnavailableError, match="command_timeout"):
                await put_numbered(saver, "t", 1, x=1)
        await put_numbered(saver, "t", 1, x=1)
        assert (await saver.aget_tuple(config_for("t"))) is not None
    finally:
        await saver.backend.drop_all()
        await saver.aclose()


# -- deleting, pruning, copying: nothing left dangling, nothing needed removed ---------------


# Written apart from the saver's own statements: each row of lus_store is told by the
# first byte of its key (b"c" checkpoint, b"b" blob, b"i" item, b"w" writes); blob keys and
# write-key prefixes are rebuilt from the checkpoint keys as the schema describes them.
ORPHANS = """
WITH rows AS (
    SELECT x.*, get_byte(x.key, 0) AS kind
    FROM {s}.lus_store x
),
checkpoints AS (
    SELECT c.thread_id, c.key, c.channel_versions,
        substring(c.key FROM 2 FOR position('\\x00'::bytea IN c.key) - 1) AS ns_part
    FROM rows c WHERE c.kind = 99
),
refs AS (
    SELECT r.thread_id, r.kind, r.key,
        substring(r.refs FROM n * 16 + 1 FOR 16) AS ref
    FROM rows r, generate_series(0, coalesce(length(r.refs), 0) / 16 - 1) AS n
    WHERE r.kind <> 99
),
live_blob_keys AS (
    SELECT c.thread_id, '\\x62'::bytea || c.ns_part
        || convert_to(v.value, 'UTF8') || '\\x00'::bytea || convert_to(v.key, 'UTF8') AS key
    FROM checkpoints c, json_each_text(c.channel_versions) v
),
write_owners AS (
    SELECT w.thread_id, w.key, c.key AS checkpoint_key
    FROM rows w LEFT JOIN checkpoints c ON c.thread_id = w.thread_id
        AND position(('\\x77'::bytea || substring(c.key FROM 2)) IN w.key) = 1
    WHERE w.kind = 119
),
named AS (
    SELECT r.thread_id, r.ref FROM refs r
    WHERE r.kind = 98 AND EXISTS (SELECT 1 FROM live_blob_keys l
        WHERE l.thread_id = r.thread_id AND l.key = r.key)
    UNION SELECT r.thread_id, r.ref FROM refs r
    WHERE r.kind = 119 AND EXISTS (SELECT 1 FROM write_owners o
        WHERE o.thread_id = r.thread_id AND o.key = r.key AND o.checkpoint_key IS NOT NULL)
),
live_items AS (
    SELECT thread_id, ref FROM named
    UNION SELECT r.thread_id, r.ref FROM refs r JOIN named n
        ON r.thread_id = n.thread_id AND r.key = '\\x69'::bytea || n.ref
    WHERE r.kind = 105
)
SELECT
    (SELECT count(*) FROM rows b WHERE b.kind = 98 AND NOT EXISTS (SELECT 1 FROM live_blob_keys l
        WHERE (l.thread_id, l.key) = (b.thread_id, b.key))) AS blobs,
    (SELECT count(*) FROM write_owners o WHERE o.checkpoint_key IS NULL) AS writes,
    (SELECT count(*) FROM rows i WHERE i.kind = 105 AND NOT EXISTS (SELECT 1 FROM live_items l
        WHERE (l.thread_id, '\\x69'::bytea || l.ref) = (i.thread_id, i.key))) AS items,
    (SELECT count(*) FROM live_items l WHERE NOT EXISTS (SELECT 1 FROM rows i
        WHERE (l.thread_id, '\\x69'::bytea || l.ref) = (i.thread_id, i.key))) AS missing_items,
    (SELECT count(*) FROM rows x WHERE x.kind NOT IN (98, 99, 105, 119)) AS unknown
"""


async def _orphans(admin: Any, schema: str) -> dict[str, int]:
    row = await admin.fetchrow(ORPHANS.replace("{s}", f'"{schema}"'))
    return dict(row)


async def _long_chat(saver: PostgresSaver, thread_id: str, turns: int) -> Any:
    graph = padded_chat_graph(saver)
    for number in range(turns):
        await graph.ainvoke(padded_turn(f"{thread_id}-{number}"), config_for(thread_id))
    return graph


async def test_prune_keeps_the_latest_whole_and_leaves_no_orphans(pg: PostgresSaver, admin: Any) -> None:
    schema = pg.backend.schema
    graph = await _long_chat(pg, "t", 20)
    await _long_chat(pg, "other", 3)
    before = (await graph.aget_state(config_for("t"))).values["messages"]
    await pg.aprune(["t"])
    assert (await graph.aget_state(config_for("t"))).values["messages"] == before
    assert len([t async for t in pg.alist(config_for("t"))]) == 1
    assert await _orphans(admin, schema) == {
        "blobs": 0, "writes": 0, "items": 0, "missing_items": 0, "unknown": 0
    }
    assert len((await graph.aget_state(config_for("other"))).values["messages"]) == 9
    await graph.ainvoke(padded_turn("after prune"), config_for("t"))
    assert len((await graph.aget_state(config_for("t"))).values["messages"]) == 63


async def test_delete_for_runs_and_thread_leave_no_orphans(pg: PostgresSaver, admin: Any) -> None:
    schema = pg.backend.schema
    graph = padded_chat_graph(pg)
    runs = []
    for number in range(4):
        runs.append(str(uuid.uuid4()))
        run_config = {"configurable": {"thread_id": "t", "run_id": runs[-1]}}
        await graph.ainvoke(padded_turn(f"r{number}"), run_config)
    await graph.ainvoke(padded_turn("x"), {"configurable": {"thread_id": "keep", "run_id": runs[0]}})
    await pg.adelete_for_runs(runs[2:])
    remaining = {t.metadata.get("run_id") async for t in pg.alist(config_for("t"))}
    assert remaining == set(runs[:2])
    assert len([t async for t in pg.alist(config_for("t"))]) == 8
    assert len((await graph.aget_state(config_for("t"))).values["messages"]) == 6
    assert await _orphans(admin, schema) == {
        "blobs": 0, "writes": 0, "items": 0, "missing_items": 0, "unknown": 0
    }
    await pg.adelete_thread("t")
    assert await pg.alist_workflows() == ["keep"]
    assert await admin.fetchval(f'SELECT count(*) FROM "{schema}".lus_store WHERE thread_id = $1', "t") == 0
    assert len((await graph.aget_state(config_for("keep"))).values["messages"]) == 3


async def test_copy_thread_is_independent_of_its_source(pg: PostgresSaver, admin: Any) -> None:
    graph = await _long_chat(pg, "src", 5)
    source = (await graph.aget_state(config_for("src"))).values["messages"]
    await pg.acopy_thread("src", "dst")
    await pg.adelete_thread("src")
    assert (await graph.aget_state(config_for("dst"))).values["messages"] == source
    assert len([t async for t in pg.alist(config_for("dst"))]) == 20
    await graph.ainvoke(padded_turn("more"), config_for("dst"))
    assert await _orphans(admin, pg.backend.schema) == {
        "blobs": 0, "writes": 0, "items": 0, "missing_items": 0, "unknown": 0
    }


async def test_encrypted_saver_round_trips(admin: Any) -> None:
    schema = unique("lus_pgt")
    try:
        async with PostgresSaver(POSTGRES_DSN, schema=schema, encryption_key=b"k" * 32) as saver:
            graph = await _long_chat(saver, "t", 3)
            assert len((await graph.aget_state(config_for("t"))).values["messages"]) == 9
            raw = await admin.fetch(f'SELECT data FROM "{schema}".lus_store WHERE get_byte(key, 0) = 105')
            assert raw and all(b"aaaa" not in bytes(r["data"]) for r in raw)
    finally:
        await drop_schema(admin, schema)


async def test_relaxed_commits_store_the_same_data(admin: Any) -> None:
    schema = unique("lus_pgt")
    try:
        async with PostgresSaver(POSTGRES_DSN, schema=schema, synchronous_commit=False) as saver:
            assert "synchronous_commit" in saver.backend._statements.put_checkpoint
            graph = await _long_chat(saver, "t", 3)
            assert len((await graph.aget_state(config_for("t"))).values["messages"]) == 9
            await saver.acopy_thread("t", "u")
            await saver.aprune(["t"])
            assert len([c async for c in saver.alist(config_for("t"))]) == 1
            assert len((await graph.aget_state(config_for("u"))).values["messages"]) == 9
        # The setting was transaction-scoped: the server's default is untouched.
        assert await admin.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await drop_schema(admin, schema)


async def test_continuing_a_list_another_saver_deleted_resends_it(pg: PostgresSaver) -> None:
    """The core sends only new list items when extending a list it stored; when the
    thread was deleted elsewhere meanwhile, the put is refused whole and re-sent."""
    other = PostgresSaver(POSTGRES_DSN, schema=pg.backend.schema)
    try:
        graph = await _long_chat(pg, "t", 3)
        await other.adelete_thread("t")
        await graph.ainvoke(padded_turn("again"), config_for("t"))
        messages = (await graph.aget_state(config_for("t"))).values["messages"]
        assert len(messages) == 3  # a fresh thread: the deleted history is gone, nothing dangles
        await graph.ainvoke(padded_turn("more"), config_for("t"))
        assert len((await graph.aget_state(config_for("t"))).values["messages"]) == 6
    finally:
        await other.aclose()


async def test_tables_dropped_under_a_running_saver_come_back(pg: PostgresSaver, admin: Any) -> None:
    await put_numbered(pg, "t", 1, x=1)
    await drop_schema(admin, pg.backend.schema)
    assert await pg.aget_tuple(config_for("t")) is None
    await put_numbered(pg, "t", 2, x=2)
    assert await asyncio.to_thread(pg.list_workflows) == ["t"]


def test_each_asyncio_run_leaves_no_connection_behind() -> None:
    """A program that calls asyncio.run(saver.a...()) again and again must not keep one
    pool per finished event loop."""
    import asyncio

    from langgraph_unified_store import PostgresSaver

    from .support import POSTGRES_DSN, unique

    saver = PostgresSaver(
        POSTGRES_DSN,
        schema=unique("lus_loops"),
        server_settings={"application_name": "lus-loop-leak"},
    )

    async def count_ours() -> int:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            return int(await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lus-loop-leak'"
            ))
        finally:
            await conn.close()

    try:
        for _ in range(5):
            asyncio.run(saver.alist_workflows())
        assert asyncio.run(saver.alist_workflows()) == []
        import gc

        gc.collect()
        assert asyncio.run(count_ours()) <= 2
    finally:
        async def cleanup() -> None:
            await saver.backend.drop_all()
            await saver.aclose()

        asyncio.run(cleanup())


# -- pending writes: one row per call, the semantics of one row per write ---------------------


async def _writes_rows(admin: Any, schema: str, thread_id: str) -> int:
    return int(await admin.fetchval(
        f'SELECT count(*) FROM "{schema}".lus_store WHERE thread_id = $1 AND get_byte(key, 0) = 119',
        thread_id,
    ))


async def test_a_tasks_first_call_is_one_row(pg: PostgresSaver, admin: Any) -> None:
    stored = await put_numbered(pg, "t", 1)
    await pg.aput_writes(stored, [("a", 1), ("b", None), ("c", [HumanMessage("x" * 300)])], "task-1")
    await pg.aput_writes(stored, [("a", 2)], "task-2")
    assert await _writes_rows(admin, pg.backend.schema, "t") == 2
    tuple_ = await pg.aget_tuple(stored)
    assert tuple_ is not None
    assert sorted(tuple_.pending_writes, key=repr) == sorted(
        [("task-1", "a", 1), ("task-1", "b", None), ("task-1", "c", [HumanMessage("x" * 300)]),
         ("task-2", "a", 2)],
        key=repr,
    )


async def test_write_calls_keep_and_replace_exactly_like_one_row_per_write(pg: PostgresSaver) -> None:
    """Random sequences of calls (repeats, longer and shorter repeats, special channels
    alone and mixed in) leave the same pending writes as MemorySaver, which keeps one
    entry per (task, index): the first, or the last for a call of special writes only
    (as LangGraph's PostgresSaver does)."""
    from langgraph.checkpoint.serde.types import ERROR, INTERRUPT, RESUME, SCHEDULED

    from langgraph_unified_store import MemorySaver

    rng = random.Random(11)
    reference = MemorySaver()
    channels = ["a", "b", "c", ERROR, INTERRUPT, RESUME, SCHEDULED]
    for case in range(40):
        thread_id = f"w{case}"
        checkpoint = empty_checkpoint()
        ours = await pg.aput(config_for(thread_id), checkpoint, {}, {})
        theirs = await reference.aput(config_for(thread_id), checkpoint, {}, {})
        for call in range(rng.randrange(1, 6)):
            task = rng.choice(["t1", "t2", "1f1e63c2-4797-6c5f-bfff-4ca26e0da69b"])
            special = rng.random() < 0.3
            pool = channels[3:] if special else channels
            writes = [(rng.choice(pool), f"{case}.{call}.{i}") for i in range(rng.randrange(1, 5))]
            await pg.aput_writes(ours, writes, task)
            await reference.aput_writes(theirs, writes, task)
        got = await pg.aget_tuple(ours)
        want = await reference.aget_tuple(theirs)
        assert got is not None and want is not None
        assert sorted(got.pending_writes, key=repr) == sorted(want.pending_writes, key=repr), case


async def test_a_damaged_writes_row_names_thread_and_checkpoint(pg: PostgresSaver, admin: Any) -> None:
    stored = await put_numbered(pg, "t", 1)
    await pg.aput_writes(stored, [("a", 1), ("b", 2)], "task-1")
    await admin.execute(
        f'UPDATE "{pg.backend.schema}".lus_store SET data = $1 WHERE get_byte(key, 0) = 119',
        b"\xc1not msgpack",
    )
    with pytest.raises(CorruptDataError) as caught:
        await pg.aget_tuple(stored)
    assert "'t'" in str(caught.value)
    assert stored["configurable"]["checkpoint_id"] in str(caught.value)


async def test_a_connection_out_of_step_on_every_attempt_ends_as_backend_unavailable(
    pg: PostgresSaver,
) -> None:
    """A terminated backend can leave asyncpg's protocol out of step (InternalClientError);
    after the last retry that is the saver's BackendUnavailableError, never asyncpg's."""
    await pg.asetup()
    attempts = 0

    async def out_of_step(connection: Any) -> None:
        nonlocal attempts
        attempts += 1
        raise asyncpg.exceptions.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        )

    with pytest.raises(BackendUnavailableError, match="lost the connection"):
        await pg.backend._run(out_of_step)
    assert attempts == CONNECTION_ATTEMPTS
    assert await pg.aget_tuple(config_for("after")) is None  # the pool still serves
