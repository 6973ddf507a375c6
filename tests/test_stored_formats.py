"""Databases written by release f5ed5c8 read back exactly: the stored formats do not change.

``fixtures/sqlite_v2.json``, ``fixtures/postgres_v2.json`` and ``fixtures/redis_v1.json``
hold what that release stored for ``fixtures/stored_history.py``'s history (graphs with
long message lists, interrupts, a subgraph, a DeltaChannel, hand-made checkpoints with
special writes, None values and varied metadata, a copied thread; encrypted and plain),
and what its saver read back. They were made by ``fixtures/make_sqlite_v2.py``,
``make_postgres_v2.py`` and ``make_redis_v1.py``; this module never runs those.

Each test restores one store with plain SQL or Redis commands (a fresh file, schema or
key prefix), opens it with today's saver and checks everything reads back as recorded:
each thread's list (order, configs, checkpoints, metadata, parents, pending writes), each
checkpoint by id, each namespace's latest, metadata filters and graph states; then a
graph goes on from the restored chat. The memory backend stores nothing that outlives
the process, so it has no stored format and no fixture.

Redis's "record_deflate" store holds checkpoint records deflated by the Redis layer
(``lus.zr1:``); they must keep reading when that layer is no longer written.
"""

from __future__ import annotations

import base64
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from .fixtures import stored_history
from .fixtures.stored_history import decode, encode, tuple_fields
from .support import POSTGRES_DSN, REDIS_URL, config_for, drop_saver, thread_config, unique

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((FIXTURES / name).read_bytes())
    return loaded


SQLITE = load("sqlite_v2.json")
POSTGRES = load("postgres_v2.json")
REDIS = load("redis_v1.json")


def comparable(value: Any) -> Any:
    """``value`` with exceptions (which never compare equal) as their type and args."""
    if isinstance(value, BaseException):
        return ("exception", type(value).__name__, comparable(list(value.args)))
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [comparable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            {f.name: comparable(getattr(value, f.name)) for f in fields(value)},
        )
    return value


def assert_reads_as(actual: Any, expected_text: str, where: str) -> None:
    """``actual`` (a CheckpointTuple's fields) equals the recorded one, through the same
    serializer (so tuples and lists compare alike)."""
    got = comparable(decode(encode(actual)))
    want = comparable(decode(expected_text))
    assert got == want, where


async def assert_store_reads_back(
    saver: UnifiedCheckpointSaver, expected: dict[str, Any], graphs: bool
) -> None:
    assert await saver.alist_workflows() == expected["threads"]
    for thread, entries in expected["list"].items():
        listed = [t async for t in saver.alist(thread_config(thread))]
        assert len(listed) == len(entries), (
            f"{thread}: {len(listed)} checkpoints, not {len(entries)}"
        )
        for position, (tup, entry) in enumerate(zip(listed, entries, strict=True)):
            assert_reads_as(tuple_fields(tup), entry, f"{thread}: list position {position}")
            by_id = await saver.aget_tuple(tup.config)
            assert by_id is not None, f"{thread}: {tup.config} by id"
            assert_reads_as(tuple_fields(by_id), entry, f"{thread}: {tup.config} by id")
        for ns, head in expected["latest"][thread].items():
            latest = await saver.aget_tuple(config_for(thread, ns=ns))
            assert latest is not None, f"{thread}/{ns!r}: no latest"
            recorded = entries[head] if isinstance(head, int) else head
            assert_reads_as(tuple_fields(latest), recorded, f"{thread}/{ns!r}: latest")
    for query in expected["filters"]:
        thread = query["thread"]
        found = [
            [
                t.config["configurable"]["thread_id"],
                t.config["configurable"]["checkpoint_ns"],
                t.checkpoint["id"],
            ]
            async for t in saver.alist(
                thread_config(thread) if thread else None,
                filter=query["filter"],
                limit=query["limit"],
            )
        ]
        assert found == query["found"], query
    if graphs:
        makers: dict[str, Callable[[Any], Any]] = {
            "chat": stored_history.chat_graph,
            "delta": stored_history.delta_graph,
            "nested": stored_history.nested_graph,
        }
        for thread, make in makers.items():
            state = await make(saver).aget_state(thread_config(thread))
            assert comparable(state.values) == comparable(decode(expected["states"][thread])), (
                thread
            )


async def assert_chat_goes_on(saver: UnifiedCheckpointSaver, expected: dict[str, Any]) -> None:
    """A graph continues from the restored head: old messages first, then the new turn."""
    old = decode(expected["states"]["chat"])["messages"]
    question = HumanMessage("Look up one more topic.", id="human-after-restore")
    result = await stored_history.chat_graph(saver).ainvoke(
        {"messages": [question]}, thread_config("chat")
    )
    assert result["messages"][: len(old)] == old
    assert result["messages"][len(old)] == question
    assert len(result["messages"]) > len(old) + 2


async def check_store(saver: UnifiedCheckpointSaver, store: dict[str, Any]) -> None:
    full = "chat" in store["expected"]["list"]
    await assert_store_reads_back(saver, store["expected"], graphs=full)
    if full:
        await assert_chat_goes_on(saver, store["expected"])


def saver_options(store: dict[str, Any]) -> dict[str, Any]:
    if store.get("encrypted"):
        return {"encryption_key": stored_history.PASSPHRASE}
    return dict(store.get("options", {}))


# -- what the fixtures hold (no server) ------------------------------------------------------


@pytest.mark.parametrize("fixture", [SQLITE, POSTGRES, REDIS], ids=["sqlite", "postgres", "redis"])
def test_fixture_covers_the_stored_layouts(fixture: dict[str, Any]) -> None:
    assert fixture["release"] == stored_history.RELEASE
    plain = fixture["stores"]["plain"]["expected"]
    assert sorted(plain["list"]) == sorted(stored_history.THREADS)
    chat = decode(plain["states"]["chat"])
    assert len(chat["messages"]) >= 24  # a list cut into segments of 8 and 16, and a tail
    assert len(decode(plain["states"]["delta"])["log"]) == 3 * stored_history.DELTA_TURNS
    nested = {decode(e)["config"]["configurable"]["checkpoint_ns"] for e in plain["list"]["nested"]}
    assert "" in nested and any(ns.startswith("inner:") for ns in nested)
    direct = [decode(e) for e in plain["list"]["direct"]]
    assert {e["config"]["configurable"]["checkpoint_ns"] for e in direct} == {"", "child:1"}
    channels = {w[1] for e in direct for w in e["pending_writes"]}
    assert {ERROR, INTERRUPT} <= channels
    hitl_head = decode(plain["list"]["hitl"][0])
    assert INTERRUPT in {w[1] for w in hitl_head["pending_writes"]}
    assert saver_options(fixture["stores"]["encrypted"]) == {
        "encryption_key": stored_history.PASSPHRASE
    }


def test_redis_fixture_holds_records_deflated_by_the_redis_layer() -> None:
    stores = REDIS["stores"]
    assert stores["record_deflate"]["deflated_records"] > 0
    assert stores["plain"]["deflated_records"] == 0  # core's zc1: compressed them
    expiring = [k for k in stores["ttl"]["keys"] if k["pttl"] > 0]
    assert expiring, "the ttl store's thread keys carry their TTL"


# -- SQLite ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SQLITE["stores"]))
async def test_sqlite_database_reads_back(name: str, tmp_path: Path) -> None:
    from langgraph_unified_store import SQLiteSaver

    store = SQLITE["stores"][name]
    path = tmp_path / "restored.sqlite"
    db = sqlite3.connect(path)
    try:
        db.executescript("\n".join(store["dump"]))
    finally:
        db.close()
    async with SQLiteSaver(path, **saver_options(store)) as saver:
        await check_store(saver, store)


# -- PostgreSQL ------------------------------------------------------------------------------


async def restore_postgres(admin: Any, store: dict[str, Any], schema: str) -> None:
    """The release's DDL under ``schema``, then every row as it was stored."""
    ddl = re.sub(rf"\b{re.escape(store['schema'])}\b", schema, store["ddl"])
    await admin.execute(ddl)
    for table, dumped in store["rows"].items():
        columns = dumped["columns"]
        names = ", ".join(f'"{c["name"]}"' for c in columns)
        # Values dumped as text (json and jsonb exactly as stored, timestamps) go in as text.
        marks = ", ".join(
            f"${i}::{c['type']}"
            if c["type"] in ("bytea", "integer")
            else f"${i}::text::{c['type']}"
            for i, c in enumerate(columns, 1)
        )
        rows = [
            [
                bytes.fromhex(value) if value is not None and column["type"] == "bytea" else value
                for value, column in zip(row, columns, strict=True)
            ]
            for row in dumped["rows"]
        ]
        await admin.executemany(f'INSERT INTO "{schema}".{table} ({names}) VALUES ({marks})', rows)


@pytest.mark.postgres
@pytest.mark.parametrize("name", sorted(POSTGRES["stores"]))
async def test_postgres_schema_reads_back(name: str) -> None:
    import asyncpg

    from langgraph_unified_store import PostgresSaver

    store = POSTGRES["stores"][name]
    schema = unique("lus_fmt")
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        await restore_postgres(admin, store, schema)
        async with PostgresSaver(POSTGRES_DSN, schema=schema, **saver_options(store)) as saver:
            await check_store(saver, store)
        # Opening the schema migrated it on from the release's version, nothing more.
        from langgraph_unified_store.backends.postgres import SCHEMA_VERSION

        versions = await admin.fetch(
            f'SELECT version FROM "{schema}".lus_migrations ORDER BY version'
        )
        stored = [r[0] for r in store["rows"]["lus_migrations"]["rows"]]
        assert [r["version"] for r in versions] == [
            *stored, *range(max(stored) + 1, SCHEMA_VERSION + 1)
        ]
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


# -- Redis -----------------------------------------------------------------------------------


async def restore_redis(store: dict[str, Any], prefix: str) -> None:
    """Every key under ``prefix``, with plain commands, and its TTL."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        pipe = client.pipeline(transaction=False)
        for entry in store["keys"]:
            key = prefix.encode() + base64.b64decode(entry["key"])
            value = entry["value"]
            if entry["type"] == "hash":
                pipe.hset(key, mapping={base64.b64decode(f): base64.b64decode(v) for f, v in value})
            elif entry["type"] == "zset":
                pipe.execute_command(
                    "ZADD", key, *[x for m, s in value for x in (s, base64.b64decode(m))]
                )
            elif entry["type"] == "set":
                pipe.sadd(key, *[base64.b64decode(m) for m in value])
            elif entry["type"] == "string":
                pipe.set(key, base64.b64decode(value))
            else:
                raise AssertionError(f"no restore for a {entry['type']}")
            if entry["pttl"] > 0:
                pipe.pexpire(key, entry["pttl"])
        await pipe.execute()
    finally:
        await client.aclose()


@asynccontextmanager
async def restored_redis(store: dict[str, Any]) -> AsyncIterator[UnifiedCheckpointSaver]:
    from langgraph_unified_store import RedisSaver

    prefix = unique("lus_fmt")
    saver = RedisSaver(REDIS_URL, prefix=prefix, **saver_options(store))
    try:
        await restore_redis(store, prefix)
        yield saver
    finally:
        await drop_saver(saver)


@pytest.mark.redis
@pytest.mark.parametrize("name", sorted(REDIS["stores"]))
async def test_redis_keys_read_back(name: str) -> None:
    store = REDIS["stores"][name]
    async with restored_redis(store) as saver:
        await check_store(saver, store)
