"""Schema migrations: data written by the earlier layout stays readable.

Version 1 of the SQLite schema stored every channel value whole (a message list was
one blob per version) and kept channel_versions inside the serialized checkpoint.
Version 2 added per-thread items. A database left at version 1 must open, upgrade
itself, read back exactly, and go on with the new layout.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson
from langchain_core.messages import AIMessage, HumanMessage

from langgraph_unified_store import SQLiteSaver
from langgraph_unified_store.backends.sqlite import SCHEMA_VERSION, migrate
from langgraph_unified_store.core.serde import SafeSerializer

from .graphs import chat_graph

SERDE = SafeSerializer()
V1_VERSION = "0000000000000002.00000000"  # counters were zero-padded decimals then


def _v1_database(path: Path) -> list[Any]:
    """A version-1 database holding one thread of two checkpoints and a pending write."""
    messages = [
        HumanMessage("hello from the old layout", id="h1"),
        AIMessage("and an answer " * 10, id="a1"),
    ]
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(db, target=1) == 1
    parent = None
    for index, checkpoint_id in enumerate(["1ef00000-0000-6000-8000-000000000001", "1ef00000-0000-6000-8000-000000000002"]):
        versions = {"messages": V1_VERSION if index else "0000000000000001.00000000"}
        skeleton = {
            "v": 4, "ts": f"2026-01-0{index + 1}T00:00:00+00:00", "id": checkpoint_id,
            "channel_versions": versions, "versions_seen": {"__input__": {}}, "updated_channels": ["messages"],
        }
        type_, data = SERDE.dumps_typed(skeleton)
        db.execute(
            "INSERT INTO checkpoints VALUES (?, '', ?, ?, ?, ?, ?, ?, NULL)",
            ("old-thread", checkpoint_id, parent, type_, data, orjson.dumps(versions).decode(),
             orjson.dumps({"source": "loop", "step": index, "parents": {}}).decode()),
        )
        blob_type, blob = SERDE.dumps_typed(messages[: index + 1])
        db.execute(
            "INSERT INTO blobs VALUES ('old-thread', '', 'messages', ?, ?, ?)",
            (versions["messages"], blob_type, blob),
        )
        parent = checkpoint_id
    write_type, write = SERDE.dumps_typed([AIMessage("pending", id="p1")])
    db.execute(
        "INSERT INTO writes VALUES ('old-thread', '', ?, 'task-1', 0, 'messages', ?, ?, '')",
        (parent, write_type, write),
    )
    db.close()
    return messages


def _schema_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT max(version) FROM lus_schema_migrations").fetchone()[0])
    finally:
        db.close()


async def test_version_1_database_upgrades_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    messages = _v1_database(path)
    async with SQLiteSaver(path) as saver:
        assert _schema_version(path) == SCHEMA_VERSION == 5
        latest = await saver.aget_tuple({"configurable": {"thread_id": "old-thread"}})
        assert latest is not None
        assert latest.checkpoint["channel_values"]["messages"] == messages
        assert latest.pending_writes == [("task-1", "messages", [AIMessage("pending", id="p1")])]
        assert [t.checkpoint["id"][-1] async for t in saver.alist({"configurable": {"thread_id": "old-thread"}})] == ["2", "1"]
        # A graph goes on from the old checkpoint; its new checkpoints use the new layout.
        graph = chat_graph(saver)
        result = await graph.ainvoke(
            {"messages": [HumanMessage("new turn", id="h2")]}, {"configurable": {"thread_id": "old-thread"}}
        )
        assert [m.content for m in result["messages"][:2]] == [m.content for m in messages]
        assert len(result["messages"]) == 5  # the 2 old ones, then input, reply and review
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM items WHERE thread_id = 'old-thread'").fetchone()[0] > 0
    db.close()


def test_migrations_are_idempotent_and_safe_in_parallel(tmp_path: Path) -> None:
    path = tmp_path / "race.sqlite"
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        db = sqlite3.connect(path, isolation_level=None, timeout=30)
        try:
            results.append(migrate(db))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == [SCHEMA_VERSION] * 6
    db = sqlite3.connect(path)
    assert [row[0] for row in db.execute("SELECT version FROM lus_schema_migrations ORDER BY version")] == [1, 2, 3, 4, 5]
    db.close()
