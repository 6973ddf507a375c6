"""SQLite's data lifecycle storage (issue 14): the ``threads`` table of migration 3 and
the four primitives under the saver's sweep, set_ttl, prune, delete_threads, forget and
list_threads, checked against the rows on disk (plain sqlite3 on the same file).

Time comes from an injected clock (``clock=``), so nothing here sleeps.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from langgraph_unified_store import SQLiteSaver
from langgraph_unified_store.backends.sqlite import SCHEMA_VERSION, operations
from langgraph_unified_store.core.lifecycle import PINNED, ThreadQuery
from langgraph_unified_store.errors import CheckpointNotFoundError

from ..graphs import chat_graph
from ..support import (
    checkpoint_and_versions,
    config_for,
    make_checkpoint,
    put_numbered,
    put_values,
    thread_config,
)
from ..test_stored_formats import SQLITE

T0 = 1_000_000.0
TABLES = ("checkpoints", "writes", "blobs", "items", "threads")


class Clock:
    """The saver's clock: a time the test moves."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "lifecycle.sqlite"


def open_saver(path: Path, clock: Clock, **options: Any) -> SQLiteSaver:
    return SQLiteSaver(path, clock=clock, **options)


def raw(path: Path, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows as a separate plain sqlite3 connection sees them."""
    db = sqlite3.connect(path)
    try:
        return db.execute(statement, params).fetchall()
    finally:
        db.close()


def rows_of(path: Path, thread_id: str) -> dict[str, int]:
    """How many rows of ``thread_id`` each table holds."""
    return {
        table: raw(path, f"SELECT count(*) FROM {table} WHERE thread_id = ?", (thread_id,))[0][0]
        for table in TABLES
    }


def thread_row(path: Path, thread_id: str) -> tuple[Any, ...] | None:
    found = raw(
        path,
        "SELECT first_write, last_write, own_ttl, expires_at FROM threads WHERE thread_id = ?",
        (thread_id,),
    )
    return found[0] if found else None


async def put_chat(saver: SQLiteSaver, thread_id: str, *, ns: str = "", **metadata: Any) -> Any:
    """A checkpoint with a list value (blobs and items) and a pending write."""
    config = await put_values(
        saver, thread_id, {"messages": [HumanMessage(f"hi {i}", id=f"m{i}") for i in range(20)]},
        ns=ns, **metadata,
    )
    await saver.aput_writes(config, [("messages", [HumanMessage("pending", id="p")])], "task-1")
    return config


async def ids_of(saver: SQLiteSaver, config: Any) -> list[str]:
    return [t.checkpoint["id"] async for t in saver.alist(config)]


# -- migration 3 ----------------------------------------------------------------------------


async def test_v2_database_upgrades_with_one_thread_row_each(path: Path, clock: Clock) -> None:
    store = SQLITE["stores"]["plain"]
    db = sqlite3.connect(path)
    try:
        db.executescript("\n".join(store["dump"]))
    finally:
        db.close()
    before = datetime.now(UTC).timestamp()
    async with open_saver(path, clock, ttl=60) as saver:
        assert await saver.alist_workflows() == store["expected"]["threads"]
        assert raw(path, "SELECT max(version) FROM lus_schema_migrations") == [(SCHEMA_VERSION,)]
        stored = {
            t for (t,) in raw(path, "SELECT thread_id FROM checkpoints UNION SELECT thread_id FROM writes")
        }
        rows = raw(path, "SELECT thread_id, first_write, last_write, own_ttl, expires_at FROM threads")
        assert {r[0] for r in rows} == stored
        for _, first, last, own_ttl, expires_at in rows:
            # Stamped with the migration's wall-clock time, no expiry until the next write.
            assert first == last and before - 5 <= first <= datetime.now(UTC).timestamp() + 5
            assert own_ttl is None and expires_at is None
        listed = await saver.alist_threads(limit=1000)
        assert [t.thread_id for t in listed.threads] == store["expected"]["threads"]
        # The next write stamps the thread by the saver's clock and starts its ttl.
        await chat_graph(saver).ainvoke(
            {"messages": [HumanMessage("after the upgrade", id="h-up")]}, thread_config("chat")
        )
        row = thread_row(path, "chat")
        assert row is not None and row[1] == T0 and row[3] == T0 + 60
        clock.now = T0 + 61
        assert await saver.aget_tuple(thread_config("chat")) is None
        assert "chat" not in await saver.alist_workflows()
        assert len(store["expected"]["threads"]) - 1 == len(await saver.alist_workflows())


# -- ttl: reads hide, writes start afresh, sweeps remove ---------------------------------------


async def test_expired_threads_are_hidden_at_once_and_swept_row_by_row(path: Path, clock: Clock) -> None:
    async with open_saver(path, clock, ttl=10) as saver:
        await put_chat(saver, "old-a")
        await put_chat(saver, "old-b", ns="child:1")
        clock.now = T0 + 5
        kept = await put_chat(saver, "young")
        clock.now = T0 + 10  # expiry at or before now: expired
        for thread_id in ("old-a", "old-b"):
            assert await saver.aget_tuple(thread_config(thread_id)) is None
            assert await saver.aget_tuple(config_for(thread_id, ns="child:1")) is None
            assert await ids_of(saver, thread_config(thread_id)) == []
            assert await saver.backend.checkpoint_heads(thread_id) == []
            assert all(rows_of(path, thread_id).values())  # still stored until swept
        assert {t.config["configurable"]["thread_id"] async for t in saver.alist(None)} == {"young"}
        assert await saver.alist_workflows() == ["young"]
        assert [t.thread_id for t in (await saver.alist_threads()).threads] == ["young"]
        delta = [s.record.checkpoint_id async for s in saver.backend.checkpoint_lineage("old-a", "", None)]
        assert delta == []

        removed = await saver.asweep()
        assert sorted(removed.thread_ids) == ["old-a", "old-b"]
        assert removed.checkpoints == 2 and removed.writes == 2
        assert removed.blobs >= 2 and removed.items >= 2
        for thread_id in ("old-a", "old-b"):
            assert rows_of(path, thread_id) == dict.fromkeys(TABLES, 0)
        assert await saver.backend.thread_residue(["old-a", "old-b", "young"]) == ["young"]
        assert (await saver.asweep()).thread_ids == []
        assert (await saver.aget_tuple(kept)) is not None


async def test_sweep_limit_and_writes_only_threads(path: Path, clock: Clock) -> None:
    async with open_saver(path, clock, ttl=10) as saver:
        for i in range(5):
            await put_values(saver, f"t{i}", {"x": i})
        await saver.aput_writes(config_for("writes-only", "1ef00000-0000-6000-8000-000000000001"),
                                [("x", 1)], "task")
        assert thread_row(path, "writes-only") is not None
        assert "writes-only" not in [t.thread_id for t in (await saver.alist_threads()).threads]
        clock.now = T0 + 11
        first = await saver.asweep(limit=2)
        assert len(first.thread_ids) == 2
        rest = await saver.asweep()
        assert sorted(first.thread_ids + rest.thread_ids) == sorted([f"t{i}" for i in range(5)] + ["writes-only"])
        assert raw(path, "SELECT count(*) FROM threads") == [(0,)]
        assert raw(path, "SELECT count(*) FROM writes") == [(0,)]


async def test_a_write_to_an_expired_unswept_thread_brings_nothing_back(path: Path, clock: Clock) -> None:
    async with open_saver(path, clock, ttl=10) as saver:
        values = {"a": "kept value", "b": [1, 2, 3]}
        first, versions = checkpoint_and_versions(values)
        first_config = await saver.aput(config_for("t"), first, {"source": "input", "step": -1}, dict(versions))
        await saver.aput_writes(first_config, [("a", "pending")], "task-1")
        second = await put_values(saver, "t", {"c": "second"}, parent=first_config["configurable"]["checkpoint_id"])
        assert len(await ids_of(saver, thread_config("t"))) == 2
        clock.now = T0 + 30
        # A child of the expired head that sends no value (every channel inherited): the
        # blobs it names were removed with the thread, so the core re-sends them.
        child = make_checkpoint(values, versions)
        child_config = await saver.aput(first_config, child, {"source": "loop", "step": 0}, {})
        assert await ids_of(saver, thread_config("t")) == [child["id"]]
        got = await saver.aget_tuple(child_config)
        assert got is not None
        assert got.checkpoint["channel_values"] == values
        assert got.pending_writes == []
        assert await saver.aget_tuple(second) is None
        assert rows_of(path, "t")["checkpoints"] == 1
        assert rows_of(path, "t")["writes"] == 0
        row = thread_row(path, "t")
        assert row == (T0 + 30, T0 + 30, None, T0 + 40)  # a fresh thread: first write now


async def test_a_graph_on_an_expired_thread_starts_over(path: Path, clock: Clock) -> None:
    async with open_saver(path, clock, ttl=10) as saver:
        graph = chat_graph(saver)
        await graph.ainvoke({"messages": [HumanMessage("one", id="h1")]}, thread_config("g"))
        clock.now = T0 + 20
        result = await graph.ainvoke({"messages": [HumanMessage("two", id="h2")]}, thread_config("g"))
        assert result["messages"][0].id == "h2"  # nothing of the first run came back
        assert raw(path, "SELECT min(first_write) FROM threads WHERE thread_id = 'g'") == [(T0 + 20,)]


async def test_refresh_on_read_moves_the_expiry_not_the_last_write(path: Path, clock: Clock) -> None:
    async with open_saver(path, clock, ttl=10, refresh_on_read=True) as saver:
        config = await put_values(saver, "r", {"x": 1})
        await put_values(saver, "other", {"x": 2})
        clock.now = T0 + 8
        assert await saver.aget_tuple(config) is not None
        assert thread_row(path, "r") == (T0, T0, None, T0 + 18)
        clock.now = T0 + 15
        assert await ids_of(saver, thread_config("r")) != []
        assert thread_row(path, "r") == (T0, T0, None, T0 + 25)
        clock.now = T0 + 24
        clock.now = T0 + 20
        await put_values(saver, "fresh", {"x": 3})  # expires at T0 + 30
        clock.now = T0 + 24
        # A listing of every thread refreshes those it lists: not "other", expired at T0 + 10.
        listed = [t.config["configurable"]["thread_id"] async for t in saver.alist(None)]
        assert sorted(listed) == ["fresh", "r"]
        assert thread_row(path, "r") == (T0, T0, None, T0 + 34)
        assert thread_row(path, "fresh") == (T0 + 20, T0 + 20, None, T0 + 34)
        assert thread_row(path, "other") == (T0, T0, None, T0 + 10)
        clock.now = T0 + 34
        assert await saver.aget_tuple(config) is None  # a read of an expired one refreshes nothing
        assert thread_row(path, "r") == (T0, T0, None, T0 + 34)


async def test_without_refresh_on_read_reads_leave_the_expiry(path: Path, clock: Clock) -> None:
    async with open_saver(path, clock, ttl=10) as saver:
        config = await put_values(saver, "r", {"x": 1})
        clock.now = T0 + 8
        assert await saver.aget_tuple(config) is not None
        clock.now = T0 + 10
        assert await saver.aget_tuple(config) is None
        assert thread_row(path, "r") == (T0, T0, None, T0 + 10)


async def test_set_ttl_and_pinning(path: Path, clock: Clock) -> None:
    async with open_saver(path, clock, ttl=10) as saver:
        await put_values(saver, "t", {"x": 1})
        clock.now = T0 + 5
        await saver.aset_ttl("t", 100)
        assert thread_row(path, "t") == (T0, T0, 100, T0 + 100)  # from the last write
        clock.now = T0 + 50
        await put_values(saver, "t", {"x": 2})
        assert thread_row(path, "t") == (T0, T0 + 50, 100, T0 + 150)  # its own ttl stays
        await saver.aset_ttl("t", None)
        assert thread_row(path, "t") == (T0, T0 + 50, PINNED, None)
        await put_values(saver, "t", {"x": 3})
        clock.now = T0 + 10_000
        assert thread_row(path, "t") == (T0, T0 + 50, PINNED, None)
        assert await saver.aget_tuple(thread_config("t")) is not None
        assert (await saver.asweep()).thread_ids == []
        with pytest.raises(CheckpointNotFoundError):
            await saver.aset_ttl("nobody", 5)
        await put_values(saver, "expiring", {"x": 1})
        clock.now += 10
        with pytest.raises(CheckpointNotFoundError):
            await saver.aset_ttl("expiring", 500)
        row = thread_row(path, "expiring")
        assert row is not None and row[2] is None


async def test_set_ttl_without_a_saver_ttl(path: Path, clock: Clock) -> None:
    async with open_saver(path, clock) as saver:
        await put_values(saver, "t", {"x": 1})
        assert thread_row(path, "t") == (T0, T0, None, None)
        await saver.aset_ttl("t", 3)
        assert thread_row(path, "t") == (T0, T0, 3, T0 + 3)
        clock.now = T0 + 3
        assert await saver.aget_tuple(thread_config("t")) is None
        assert (await saver.asweep()).thread_ids == ["t"]
        assert rows_of(path, "t") == dict.fromkeys(TABLES, 0)


async def test_copy_thread_stamps_the_target_and_skips_an_expired_source(path: Path, clock: Clock) -> None:
    async with open_saver(path, clock, ttl=10) as saver:
        await put_chat(saver, "source")
        clock.now = T0 + 4
        await saver.acopy_thread("source", "target")
        assert thread_row(path, "target") == (T0 + 4, T0 + 4, None, T0 + 14)
        assert await ids_of(saver, thread_config("target")) == await ids_of(saver, thread_config("source"))
        clock.now = T0 + 12
        await saver.acopy_thread("source", "late")
        assert thread_row(path, "late") is None
        assert await ids_of(saver, thread_config("late")) == []


# -- delete_thread and GC remove the lifecycle row ---------------------------------------------


async def test_delete_and_gc_remove_the_thread_row(path: Path, clock: Clock) -> None:
    async with open_saver(path, clock) as saver:
        await put_chat(saver, "deleted")
        await saver.adelete_thread("deleted")
        assert rows_of(path, "deleted") == dict.fromkeys(TABLES, 0)
        await put_values(saver, "run", {"x": 1}, run_id="run-1")
        await put_values(saver, "run", {"y": 1}, run_id="run-1")
        await put_values(saver, "mixed", {"x": 1}, run_id="run-1")
        await put_values(saver, "mixed", {"x": 2}, run_id="run-2")
        await saver.adelete_for_runs(["run-1"])
        assert rows_of(path, "run") == dict.fromkeys(TABLES, 0)
        assert rows_of(path, "mixed")["threads"] == 1
        assert await saver.backend.thread_residue(["deleted", "run", "mixed"]) == ["mixed"]
        await saver.aprune(["mixed"], strategy="delete")
        assert rows_of(path, "mixed") == dict.fromkeys(TABLES, 0)


async def test_prune_keep_last(path: Path, clock: Clock) -> None:
    async with open_saver(path, clock) as saver:
        for number in range(1, 6):
            await put_numbered(saver, "p", number, x=number)
        for number in range(1, 4):
            await put_numbered(saver, "p", number, ns="child:1", y=number)
        await saver.aprune(["p"], strategy="keep_last", keep=2)
        assert [i[-1] for i in await ids_of(saver, config_for("p"))] == ["5", "4"]
        assert [i[-1] for i in await ids_of(saver, config_for("p", ns="child:1"))] == ["3", "2"]
        assert rows_of(path, "p")["checkpoints"] == 4
        assert rows_of(path, "p")["blobs"] == 4
        assert rows_of(path, "p")["threads"] == 1


# -- delete_threads, forget, list_threads ------------------------------------------------------


async def test_delete_threads_by_age_filter_and_limit(path: Path, clock: Clock) -> None:
    async with open_saver(path, clock) as saver:
        for i, user in enumerate(["u1", "u2", "u1", "u2", "u1"]):
            clock.now = T0 + 100 * i
            await put_chat(saver, f"t{i}", user=user)
        clock.now = T0 + 1000
        # older_than 750 s: last written before T0 + 250, i.e. t0, t1, t2.
        removed = await saver.adelete_threads(750, filter={"user": "u1"})
        assert sorted(removed.thread_ids) == ["t0", "t2"]
        assert removed.checkpoints == 2 and removed.writes == 2
        for gone in removed.thread_ids:
            assert rows_of(path, gone) == dict.fromkeys(TABLES, 0)
        limited = await saver.adelete_threads(datetime.fromtimestamp(T0 + 450, UTC), limit=1)
        assert len(limited.thread_ids) == 1 and limited.thread_ids[0] in {"t1", "t3"}
        rest = await saver.adelete_threads(filter={"user": "u2"})
        assert sorted(rest.thread_ids + limited.thread_ids) == ["t1", "t3"]
        assert await saver.alist_workflows() == ["t4"]


async def test_forget_erases_every_namespace_and_verifies(path: Path, clock: Clock) -> None:
    async with open_saver(path, clock, ttl=1000) as saver:
        await put_chat(saver, "alice-1", user="alice")
        await put_chat(saver, "alice-1", ns="child:1")  # no user key: erased with its thread
        await put_values(saver, "alice-1", {"z": 1}, user="someone else")  # not the head
        await put_chat(saver, "alice-2", ns="child:2", user="alice")
        await put_chat(saver, "bob", user="bob")
        clock.now = T0 + 2000  # alice-2 expired but not swept: still erased
        receipt = await saver.aforget({"user": "alice"})
        assert receipt.verified and receipt.remaining == []
        assert sorted(receipt.thread_ids) == ["alice-1", "alice-2"]
        for gone in ("alice-1", "alice-2"):
            assert rows_of(path, gone) == dict.fromkeys(TABLES, 0)
        assert rows_of(path, "bob")["checkpoints"] == 1


async def test_list_threads_pages_filters_and_stats(path: Path, clock: Clock) -> None:
    async with open_saver(path, clock, ttl=500) as saver:
        for i in range(7):
            clock.now = T0 + 10 * i
            await put_chat(saver, f"thread-{i}", user="even" if i % 2 == 0 else "odd", step_no=i)
        await put_chat(saver, "thread-0", ns="child:1")
        clock.now = T0 + 100
        seen: list[str] = []
        cursor = None
        while True:
            page = await saver.alist_threads(limit=3, cursor=cursor)
            seen += [t.thread_id for t in page.threads]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == [f"thread-{i}" for i in range(7)]
        first = (await saver.alist_threads(limit=1)).threads[0]
        assert first.namespaces == ("", "child:1")
        assert first.checkpoints == 2
        assert first.first_write == T0 and first.last_write == T0 + 60
        assert first.expires_at == T0 + 560
        assert first.stored_bytes is not None and first.stored_bytes > 100
        assert first.as_dict()["expires_at"] is not None
        even = await saver.alist_threads(filter={"user": "even"})
        assert [t.thread_id for t in even.threads] == ["thread-0", "thread-2", "thread-4", "thread-6"]
        assert [t.thread_id for t in (await saver.alist_threads(filter={"step_no": 3})).threads] == ["thread-3"]
        window = await saver.alist_threads(
            updated_after=datetime.fromtimestamp(T0 + 10, UTC),
            updated_before=datetime.fromtimestamp(T0 + 40, UTC),
        )
        assert [t.thread_id for t in window.threads] == ["thread-2", "thread-3"]
        clock.now = T0 + 515  # thread-0 (written last at T0 + 60) lives; thread-1 expired
        assert [t.thread_id for t in (await saver.alist_threads()).threads] == ["thread-0"] + [
            f"thread-{i}" for i in range(2, 7)
        ]


async def test_metadata_filter_payloads_match_only_exact_values(path: Path, clock: Clock) -> None:
    payloads = [
        "') OR 1=1 --",
        "' OR '1'='1",
        '" OR ""="',
        "$",
        "$.user",
        '$."user"',
        "user[0]",
        "*",
        "%",
        "_",
        "a\\b",
        "; DROP TABLE threads; --",
    ]
    async with open_saver(path, clock) as saver:
        await put_values(saver, "plain", {"x": 1}, user="alice", step_no=1, flag=True)
        await put_values(saver, "tricky", {"x": 1}, **{"$.user": "$", "') OR 1=1 --": "' OR '1'='1"})
        for payload in payloads:
            for key, value in ((payload, payload), ("user", payload), (payload, "alice")):
                found = [t.thread_id for t in (await saver.alist_threads(filter={key: value})).threads]
                expected = ["tricky"] if (key, value) in {("$.user", "$")} else []
                assert found == expected, (key, value)
        exact = (await saver.alist_threads(filter={"') OR 1=1 --": "' OR '1'='1"})).threads
        assert [t.thread_id for t in exact] == ["tricky"]
        # Type-exact: 1 is not "1" nor true; true is not 1.
        scalar: str | bool | float
        for scalar in ("1", True, 1.5):
            assert (await saver.alist_threads(filter={"step_no": scalar})).threads == []
        assert (await saver.alist_threads(filter={"flag": 1})).threads == []
        assert [t.thread_id for t in (await saver.alist_threads(filter={"step_no": 1.0})).threads] == ["plain"]
        assert [t.thread_id for t in (await saver.alist_threads(filter={"flag": True})).threads] == ["plain"]
        removed = await saver.adelete_threads(filter={"user": "') OR 1=1 --"})
        assert removed.thread_ids == []
        receipt = await saver.aforget({"$": "$"})
        assert receipt.thread_ids == [] and receipt.verified
        assert sorted(await saver.alist_workflows()) == ["plain", "tricky"]
        assert raw(path, "SELECT count(*) FROM threads") == [(2,)]


# -- the queries use the thread indexes ----------------------------------------------------------


def _plan(path: Path, query: ThreadQuery) -> list[str]:
    statement, params = operations.thread_page_statement(query, T0)
    return [row[3] for row in raw(path, "EXPLAIN QUERY PLAN " + statement, tuple(params))]


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (ThreadQuery(expired_at=T0, everything=True, with_stats=False, ordered=False),
         "USING INDEX threads_by_expiry (expires_at<?)"),
        (ThreadQuery(updated_before=T0, everything=True, with_stats=False, ordered=False),
         "USING INDEX threads_by_last_write (last_write<?)"),
        (ThreadQuery(updated_before=T0, filter={"user": "x"}, everything=True, with_stats=False,
                     ordered=False),
         "USING INDEX threads_by_last_write (last_write<?)"),
        (ThreadQuery(after="thread-5"), "USING PRIMARY KEY (thread_id>?)"),
        (ThreadQuery(after="thread-5", filter={"user": "x"}, updated_after=T0),
         "USING PRIMARY KEY (thread_id>?)"),
    ],
    ids=["expired_at", "updated_before", "updated_before+filter", "after", "after+filter"],
)
def test_thread_page_searches_an_index(path: Path, clock: Clock, query: ThreadQuery, index: str) -> None:
    with open_saver(path, clock) as saver:
        saver.setup()
        plan = _plan(path, query)
    assert any(step.startswith("SEARCH t ") and index in step for step in plan), plan
    assert not any(step.startswith("SCAN t") for step in plan), plan
    # Checkpoints are only probed by thread (their primary key), never scanned.
    assert not any(step.startswith("SCAN c") or "SCAN checkpoints" in step for step in plan), plan


# -- the blocking API ----------------------------------------------------------------------------


def _put_blocking(saver: SQLiteSaver, thread_id: str, **metadata: Any) -> Any:
    checkpoint, versions = checkpoint_and_versions({"messages": [HumanMessage("x", id="x")]})
    stamped: Any = {"source": "input", "step": -1, **metadata}
    config = saver.put(config_for(thread_id), checkpoint, stamped, dict(versions))
    saver.put_writes(config, [("messages", [HumanMessage("w", id="w")])], "task")
    return config


def test_blocking_lifecycle(path: Path, clock: Clock) -> None:
    with open_saver(path, clock, ttl=10) as saver:
        for i in range(4):
            _put_blocking(saver, f"b{i}", user="erase" if i == 3 else "keep")
        saver.set_ttl("b0", None)
        clock.now = T0 + 5
        _put_blocking(saver, "b1")
        saver.prune(["b1"], strategy="keep_last", keep=1)
        assert len(list(saver.list(thread_config("b1")))) == 1
        assert rows_of(path, "b1")["checkpoints"] == 1
        page = saver.list_threads()
        assert [t.thread_id for t in page.threads] == ["b0", "b1", "b2", "b3"]
        receipt = saver.forget({"user": "erase"})
        assert receipt.thread_ids == ["b3"] and receipt.verified
        clock.now = T0 + 12  # b2 expired; b1 written at T0 + 5 lives; b0 pinned
        assert saver.get_tuple(thread_config("b2")) is None
        assert saver.sweep().thread_ids == ["b2"]
        removed = saver.delete_threads(6)  # last written before T0 + 6: b0 and b1
        assert sorted(removed.thread_ids) == ["b0", "b1"]
        assert raw(path, "SELECT count(*) FROM threads") == [(0,)]
        for table in TABLES:
            assert raw(path, f"SELECT count(*) FROM {table}") == [(0,)]


def test_thread_page_and_remove_threads_through_the_backend(path: Path, clock: Clock) -> None:
    """The primitives themselves: guards re-checked in the removing transaction."""
    import asyncio

    async def run() -> None:
        async with open_saver(path, clock, ttl=10) as saver:
            backend = saver.backend
            for i in range(3):
                clock.now = T0 + i
                await put_values(saver, f"x{i}", {"v": i})
            clock.now = T0 + 100
            everything = await backend.thread_page(ThreadQuery(everything=True, with_stats=False))
            assert [t.thread_id for t in everything] == ["x0", "x1", "x2"]
            assert await backend.thread_page(ThreadQuery()) == []  # all expired
            # x2 was written at T0 + 2: not before T0 + 2, so the guard keeps it.
            from langgraph_unified_store.core.lifecycle import RemovalGuard

            removed = await backend.remove_threads(["x0", "x2", "x9", "x0"], RemovalGuard(written_before=T0 + 2))
            assert removed.thread_ids == ["x0"] and removed.checkpoints == 1
            kept = await backend.remove_threads(["x1"], RemovalGuard(expired_at=T0 + 5))
            assert kept.thread_ids == []  # expires at T0 + 11
            assert await backend.thread_residue(["x0", "x1", "x2"]) == ["x1", "x2"]

    asyncio.run(run())
