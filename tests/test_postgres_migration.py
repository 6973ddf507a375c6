"""PostgreSQL schema migrations: a database written by an earlier release stays readable.

``fixtures/postgres_v1.json`` holds every row release 944f381 (schema version 1: the
``lus_checkpoints`` and ``lus_data`` tables of ``MIGRATION_1``) stored for a varied
history, and what that release's saver read back from it: a chat graph whose message
lists are stored as segments, an interrupted and resumed graph, hand-made checkpoints
with text ids, a child namespace and special writes, and a copied thread. It was made by
``fixtures/make_postgres_v1.py`` running on that release.

Each test loads the rows into fresh version-1 tables, lets ``PostgresSaver`` migrate them
to ``SCHEMA_VERSION``, and checks that everything reads back exactly and that graphs go
on from the old checkpoints.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT
from langgraph.types import Command

from langgraph_unified_store import PostgresSaver
from langgraph_unified_store.backends import postgres
from langgraph_unified_store.backends.postgres import migrations as pg_migrations

from .fixtures.make_postgres_v1 import chat_graph, review_graph
from .support import POSTGRES_DSN, config_for, thread_config, unique

pytestmark = pytest.mark.postgres

FIXTURE_PATH = Path(__file__).parent / "fixtures" / "postgres_v1.json"
FIXTURE: dict[str, Any] = orjson.loads(FIXTURE_PATH.read_bytes())
THREADS: list[str] = FIXTURE["threads"]
SERDE = JsonPlusSerializer()
# Type code of a segment item in schema version 1 (chr(1 + its index in TYPE_CODES)).
V1_SEGMENT_TYPE = "\x08"


def expected(thread: str) -> list[dict[str, Any]]:
    """What release 944f381's ``alist`` returned for ``thread``, newest first."""
    return [
        SERDE.loads_typed((type_, bytes.fromhex(data)))
        for type_, data in FIXTURE["expected"][thread]
    ]


def configurable(entry: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = entry["config"]["configurable"]
    return found


def writes_multiset(writes: Iterable[Any]) -> list[tuple[str, str, Any]]:
    """Pending writes in a fixed order (the saver returns tuples, the fixture lists)."""
    triples = [(str(task_id), str(channel), value) for task_id, channel, value in writes]
    return sorted(triples, key=lambda w: (w[0], w[1], repr(w[2])))


def assert_same(tup: CheckpointTuple | None, entry: dict[str, Any]) -> None:
    where = configurable(entry)
    assert tup is not None, where
    assert tup.config == entry["config"], where
    assert tup.checkpoint == entry["checkpoint"], where
    assert tup.metadata == entry["metadata"], where
    assert tup.parent_config == entry["parent_config"], where
    assert writes_multiset(tup.pending_writes or []) == writes_multiset(entry["pending_writes"]), (
        where
    )


def newest(entries: list[dict[str, Any]], ns: str) -> dict[str, Any]:
    return next(e for e in entries if configurable(e)["checkpoint_ns"] == ns)


async def load_version_1(admin: Any, schema: str) -> None:
    """Version-1 tables holding the fixture's rows, as release 944f381 left them."""
    quoted = f'"{schema}"'  # as migrations.quote_schema / sql.bind write it
    async with admin.transaction():
        await admin.execute(f"CREATE SCHEMA {quoted}")
        await admin.execute(pg_migrations.MIGRATION_1.replace("{schema}", quoted))
        await admin.execute(pg_migrations.MIGRATIONS_TABLE_DDL.replace("{schema}", quoted))
        await admin.execute(f"INSERT INTO {quoted}.lus_migrations (version) VALUES (1)")
        for table, dumped in FIXTURE["rows"].items():
            columns = dumped["columns"]
            names = ", ".join(f'"{c["name"]}"' for c in columns)
            marks = ", ".join(f"${i}::{c['type']}" for i, c in enumerate(columns, 1))
            rows = [
                [
                    bytes.fromhex(value)
                    if value is not None and column["type"] == "bytea"
                    else value
                    for value, column in zip(row, columns, strict=True)
                ]
                for row in dumped["rows"]
            ]
            await admin.executemany(
                f"INSERT INTO {quoted}.{table} ({names}) VALUES ({marks})", rows
            )
            assert await admin.fetchval(f"SELECT count(*) FROM {quoted}.{table}") == len(rows)


async def migrations(admin: Any, schema: str) -> list[tuple[int, int]]:
    """(version, how many times it was recorded) for each applied version."""
    rows = await admin.fetch(
        f'SELECT version, count(*) FROM "{schema}".lus_migrations GROUP BY version ORDER BY version'
    )
    return [(int(r[0]), int(r[1])) for r in rows]


@pytest.fixture
async def v1_schema(admin: Any) -> AsyncIterator[str]:
    schema = unique("lus_mig")
    try:
        await load_version_1(admin, schema)
        yield schema
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_fixture_covers_the_version_1_layout() -> None:
    assert FIXTURE["release"] == "944f381"
    assert FIXTURE["schema_version"] == 1
    assert sorted(THREADS) == ["chat", "copy", "direct", "hitl"]
    data = FIXTURE["rows"]["lus_data"]
    assert [c["name"] for c in data["columns"]][:3] == ["thread_id", "key", "type"]
    kinds = {bytes.fromhex(row[1])[:1] for row in data["rows"]}
    assert kinds == {b"b", b"i", b"w"}  # blobs, items, writes
    assert any(row[2] == V1_SEGMENT_TYPE for row in data["rows"])
    chat = expected("chat")
    assert len(newest(chat, "")["checkpoint"]["channel_values"]["messages"]) >= 20
    direct = expected("direct")
    assert {configurable(e)["checkpoint_ns"] for e in direct} == {"", "child:1"}
    assert {configurable(e)["checkpoint_id"] for e in direct} >= {"cp-1", "cp-2"}
    channels = {w[1] for e in direct for w in e["pending_writes"]}
    assert ERROR in channels
    hitl_latest = expected("hitl")[0]
    assert INTERRUPT in {w[1] for w in hitl_latest["pending_writes"]}


async def test_version_1_database_migrates_and_reads_back(admin: Any, v1_schema: str) -> None:
    async with PostgresSaver(POSTGRES_DSN, schema=v1_schema) as saver:
        assert await admin.fetchval(f'SELECT max(version) FROM "{v1_schema}".lus_migrations') == (
            postgres.SCHEMA_VERSION
        )
        assert await migrations(admin, v1_schema) == [
            (v, 1) for v in range(1, postgres.SCHEMA_VERSION + 1)
        ]
        assert sorted(await saver.alist_workflows()) == sorted(THREADS)

        for thread in THREADS:
            old = expected(thread)
            listed = [t async for t in saver.alist(thread_config(thread))]
            assert [t.config for t in listed] == [e["config"] for e in old], thread
            for tup, entry in zip(listed, old, strict=True):
                assert_same(tup, entry)
            # Each checkpoint by id (older ones included), and each namespace's latest.
            for entry in old:
                assert_same(await saver.aget_tuple(entry["config"]), entry)
            for ns in {configurable(e)["checkpoint_ns"] for e in old}:
                assert_same(await saver.aget_tuple(config_for(thread, ns=ns)), newest(old, ns))
            assert_same(await saver.aget_tuple(thread_config(thread)), newest(old, ""))

        # Metadata filters find the old checkpoints, across threads and within one.
        tagged = sorted(
            (
                configurable(e)["thread_id"],
                configurable(e)["checkpoint_ns"],
                configurable(e)["checkpoint_id"],
            )
            for thread in THREADS
            for e in expected(thread)
            if e["metadata"].get("run_id") == "run-42"
        )
        assert ("direct", "", "cp-1") in tagged
        assert ("direct", "child:1", "cp-child-1") in tagged
        found = [
            (
                t.config["configurable"]["thread_id"],
                t.config["configurable"]["checkpoint_ns"],
                t.config["configurable"]["checkpoint_id"],
            )
            async for t in saver.alist(None, filter={"run_id": "run-42"})
        ]
        assert sorted(found) == tagged
        custom = [
            t.checkpoint["id"]
            async for t in saver.alist(
                thread_config("direct"), filter={"custom": {"team": "blue", "n": 7}}
            )
        ]
        assert custom == ["cp-1"]
        writer = [
            t.checkpoint["id"]
            async for t in saver.alist(config_for("direct", ns=""), filter={"writer": "fixture"})
        ]
        assert writer == ["cp-2"]

        # The chat goes on from its old checkpoint: the old list, then the new turn.
        chat_before = expected("chat")
        old_messages = newest(chat_before, "")["checkpoint"]["channel_values"]["messages"]
        graph = chat_graph(saver)
        question = HumanMessage("Look up one more topic.", id="human-after-migration")
        result = await graph.ainvoke({"messages": [question]}, thread_config("chat"))
        messages = result["messages"]
        assert messages[: len(old_messages)] == old_messages
        added = messages[len(old_messages) :]
        assert added[0] == question
        assert [type(m) for m in added] == [
            HumanMessage,
            AIMessage,
            ToolMessage,
            ToolMessage,
            ToolMessage,
            AIMessage,
        ]
        assert [m.id for m in added[1:]] == [
            f"ai-{len(old_messages) + 1}",
            f"tool-call-{len(old_messages) + 1}-a",
            f"tool-call-{len(old_messages) + 1}-b",
            f"tool-call-{len(old_messages) + 1}-c",
            f"ai-{len(old_messages) + 5}",
        ]
        latest = await saver.aget_tuple(thread_config("chat"))
        assert latest is not None
        assert latest.checkpoint["channel_values"]["messages"] == messages
        assert latest.parent_config is not None
        history = [t async for t in saver.alist(thread_config("chat"))]
        assert len(history) > len(chat_before)
        first_new = history[len(history) - len(chat_before) - 1]
        assert first_new.parent_config == chat_before[0]["config"]  # the old head
        # The old checkpoints are untouched by the new ones; the copy is its own thread.
        for tup, entry in zip(history[len(history) - len(chat_before) :], chat_before, strict=True):
            assert_same(tup, entry)
        assert_same(await saver.aget_tuple(thread_config("copy")), newest(expected("copy"), ""))

        # The interrupted graph resumes from the old INTERRUPT write.
        review = review_graph(saver)
        hitl_messages = newest(expected("hitl"), "")["checkpoint"]["channel_values"]["messages"]
        resumed = await review.ainvoke(Command(resume={"approved": False}), thread_config("hitl"))
        assert "__interrupt__" not in resumed
        assert resumed["approved"] is False
        assert resumed["messages"][: len(hitl_messages)] == hitl_messages
        assert resumed["messages"][-1].content == str({"approved": False})

        # Deleting a migrated thread removes all of it and nothing else.
        await saver.adelete_thread("direct")
        assert [t async for t in saver.alist(thread_config("direct"))] == []
        assert await saver.aget_tuple(thread_config("direct")) is None
        assert await saver.aget_tuple(newest(expected("direct"), "child:1")["config"]) is None
        assert sorted(await saver.alist_workflows()) == sorted(set(THREADS) - {"direct"})
        assert [
            t
            async for t in saver.alist(None, filter={"run_id": "run-42"})
            if t.config["configurable"]["thread_id"] == "direct"
        ] == []
        chat_after = await saver.aget_tuple(thread_config("chat"))
        assert chat_after is not None
        assert chat_after.checkpoint["channel_values"]["messages"] == messages
        assert_same(await saver.aget_tuple(thread_config("copy")), newest(expected("copy"), ""))


async def test_migration_runs_once(admin: Any, v1_schema: str) -> None:
    first = PostgresSaver(POSTGRES_DSN, schema=v1_schema)
    second = PostgresSaver(POSTGRES_DSN, schema=v1_schema)
    try:
        # Two savers set up side by side: one migrates, the other waits and finds it done.
        await asyncio.gather(first.asetup(), second.asetup())
        assert await migrations(admin, v1_schema) == [
            (v, 1) for v in range(1, postgres.SCHEMA_VERSION + 1)
        ]
        for saver in (first, second):
            assert_same(await saver.aget_tuple(thread_config("chat")), newest(expected("chat"), ""))
    finally:
        await first.aclose()
        await second.aclose()
    # Opening the migrated schema again changes nothing.
    async with PostgresSaver(POSTGRES_DSN, schema=v1_schema) as again:
        await again.asetup()
        assert_same(await again.aget_tuple(thread_config("hitl")), newest(expected("hitl"), ""))
    assert await migrations(admin, v1_schema) == [
        (v, 1) for v in range(1, postgres.SCHEMA_VERSION + 1)
    ]


async def test_migration_moves_rows_in_batches(
    v1_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoints and writes pass through Python in batches; small batches (so every
    table ends mid-batch) move the same rows."""
    monkeypatch.setattr(pg_migrations, "MIGRATION_BATCH", 7)
    async with PostgresSaver(POSTGRES_DSN, schema=v1_schema) as saver:
        for thread in THREADS:
            listed = [t async for t in saver.alist(thread_config(thread))]
            old = expected(thread)
            assert len(listed) == len(old), thread
            for tup, entry in zip(listed, old, strict=True):
                assert_same(tup, entry)
