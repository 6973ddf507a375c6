"""PostgreSQL's data lifecycle storage: the ``threads`` table and the four primitives.

Checked behind the saver with raw asyncpg queries on its schema: what migration 3 makes
of an older database, that removals leave no row, that reads hide an expired thread at
once and a write to one brings nothing back, that thread pages walk an index, that
metadata filters are bound parameters, and that a removal racing a put of the same thread
never leaves a checkpoint naming a blob it removed. Every saver method of the lifecycle
runs through the async and the blocking API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from langgraph_unified_store import PostgresSaver
from langgraph_unified_store.core.lifecycle import PINNED, ThreadQuery
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.errors import CheckpointNotFoundError

from ..reliability import raw
from ..support import (
    POSTGRES_DSN,
    config_for,
    make_checkpoint,
    put_values,
    saver_for,
    thread_config,
    unique,
)
from ..test_stored_formats import POSTGRES as V2_FIXTURE
from ..test_stored_formats import restore_postgres, saver_options

pytestmark = pytest.mark.postgres

APIS = ("async", "sync")
Clock = list[float]


@asynccontextmanager
async def clocked(tmp_path: Path, **options: Any) -> AsyncIterator[tuple[UnifiedCheckpointSaver, Clock]]:
    """A fresh PostgresSaver on its own schema whose clock the test moves."""
    now: Clock = [1_000_000.0]
    async with saver_for("postgres", tmp_path, clock=lambda: now[0], **options) as saver:
        yield saver, now


@pytest.fixture
async def admin() -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(POSTGRES_DSN)
    try:
        yield connection
    finally:
        await connection.close()


def schema_of(saver: UnifiedCheckpointSaver) -> str:
    return '"' + saver.backend.schema + '"'  # type: ignore[attr-defined]


async def rows_of(admin: Any, saver: UnifiedCheckpointSaver, thread_ids: list[str]) -> dict[str, int]:
    """How many rows each table of the schema holds for ``thread_ids``."""
    s = schema_of(saver)
    return {
        table: await admin.fetchval(
            f"SELECT count(*) FROM {s}.{table} WHERE thread_id = ANY($1::text[])", thread_ids
        )
        for table in ("lus_store", "lus_threads")
    }


async def thread_row(admin: Any, saver: UnifiedCheckpointSaver, thread_id: str) -> Any:
    return await admin.fetchrow(
        f"SELECT first_write, last_write, own_ttl, expires_at FROM {schema_of(saver)}.lus_threads "
        "WHERE thread_id = $1",
        thread_id,
    )


def call(api: str, saver: UnifiedCheckpointSaver, name: str, *args: Any, **kwargs: Any) -> Awaitable[Any]:
    """``saver.a<name>(...)`` (async) or ``saver.<name>(...)`` on a worker thread (sync)."""
    if api == "async":
        method: Callable[..., Awaitable[Any]] = getattr(saver, f"a{name}")
        return method(*args, **kwargs)
    return asyncio.to_thread(getattr(saver, name), *args, **kwargs)


async def ids_listed(saver: UnifiedCheckpointSaver, **options: Any) -> list[str]:
    return [t.thread_id for t in (await saver.alist_threads(**options)).threads]


# -- migration ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(V2_FIXTURE["stores"]))
async def test_a_version_2_database_gets_a_thread_row_per_thread(name: str, admin: Any) -> None:
    store = V2_FIXTURE["stores"][name]
    schema = unique("lus_lc_mig")
    try:
        await restore_postgres(admin, store, schema)
        async with PostgresSaver(POSTGRES_DSN, schema=schema, ttl=3600, **saver_options(store)) as saver:
            stored = {r[0] for r in await admin.fetch(f'SELECT DISTINCT thread_id FROM "{schema}".lus_store')}
            rows = await admin.fetch(f'SELECT * FROM "{schema}".lus_threads')
            assert {r["thread_id"] for r in rows} == stored and stored
            # Stamped with the migration's time, no expiry until the next write.
            assert all(r["expires_at"] is None and r["own_ttl"] is None for r in rows)
            assert all(r["first_write"] == r["last_write"] for r in rows)
            listed = await saver.alist_threads(limit=1000)
            with_checkpoints = {
                r[0]
                for r in await admin.fetch(
                    f'SELECT DISTINCT thread_id FROM "{schema}".lus_store WHERE get_byte(key, 0) = 99'
                )
            }
            assert {t.thread_id for t in listed.threads} == with_checkpoints
            assert all(t.checkpoints > 0 and t.stored_bytes for t in listed.threads)
            # The next write gives the thread its expiry.
            thread = sorted(with_checkpoints)[0]
            await put_values(saver, thread, {"late": 1}, ns="lifecycle-ns")
            after = await admin.fetchrow(
                f'SELECT last_write, expires_at FROM "{schema}".lus_threads WHERE thread_id = $1', thread
            )
            assert after["expires_at"] == pytest.approx(after["last_write"] + 3600)
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- stamps, expiry and refresh ----------------------------------------------------------------


async def test_every_write_stamps_its_thread(tmp_path: Path, admin: Any) -> None:
    async with clocked(tmp_path, ttl=100) as (saver, now):
        config = await put_values(saver, "t", {"a": 1})
        assert tuple(await thread_row(admin, saver, "t")) == (now[0], now[0], None, now[0] + 100)
        first = now[0]
        now[0] += 10
        await saver.aput_writes(config, [("a", 2)], "task")
        assert tuple(await thread_row(admin, saver, "t")) == (first, now[0], None, now[0] + 100)
        now[0] += 10
        await saver.acopy_thread("t", "copy")
        assert tuple(await thread_row(admin, saver, "copy")) == (now[0], now[0], None, now[0] + 100)
        await saver.aset_ttl("copy", None)
        now[0] += 10
        await put_values(saver, "copy", {"b": 1})
        assert tuple(await thread_row(admin, saver, "copy")) == (now[0] - 10, now[0], PINNED, None)


async def test_an_expired_thread_is_gone_to_reads_at_once(tmp_path: Path, admin: Any) -> None:
    async with clocked(tmp_path, ttl=100) as (saver, now):
        config = await put_values(saver, "t", {"a": 1}, user="u")
        await put_values(saver, "kept", {"a": 1}, user="u")
        await saver.aset_ttl("kept", None)
        now[0] += 100
        assert await saver.aget_tuple(config) is None
        assert await saver.aget_tuple(thread_config("t")) is None
        assert [c async for c in saver.alist(thread_config("t"))] == []
        assert [c.config["configurable"]["thread_id"] async for c in saver.alist(None)] == ["kept"]
        filtered = [c.config["configurable"]["thread_id"] async for c in saver.alist(None, filter={"user": "u"})]
        assert filtered == ["kept"]
        assert await saver.backend.checkpoint_heads("t") == []
        assert await saver.backend.list_thread_ids() == ["kept"]
        assert await ids_listed(saver) == ["kept"]
        with pytest.raises(CheckpointNotFoundError):
            await saver.aset_ttl("t", 10)
        # Still stored until a sweep.
        assert (await rows_of(admin, saver, ["t"]))["lus_store"] > 0
        page = await saver.backend.thread_page(ThreadQuery(everything=True, expired_at=now[0]))
        assert [t.thread_id for t in page] == ["t"]
        assert await saver.backend.thread_residue(["t", "kept", "never"]) == ["t", "kept"]


@pytest.mark.parametrize("api", APIS)
async def test_a_write_to_an_expired_thread_brings_nothing_back(api: str, tmp_path: Path, admin: Any) -> None:
    async with clocked(tmp_path, ttl=100) as (saver, now):
        first = make_checkpoint({"a": "old-a", "b": "old-b"}, {"a": "1", "b": "1"})
        config = await saver.aput(config_for("t"), first, {"step": 1}, {"a": "1", "b": "1"})
        await saver.aput_writes(config, [("a", "pending")], "task")
        now[0] += 150
        # A child that inherits a@1 (not sent): the expired thread's blob must not be used.
        child = make_checkpoint({"a": "new-a", "b": "new-b"}, {"a": "1", "b": "2"})
        if api == "async":
            child_config = await saver.aput(config, child, {"step": 2}, {"b": "2"})
        else:
            child_config = await asyncio.to_thread(saver.put, config, child, {"step": 2}, {"b": "2"})
        listed = [c async for c in saver.alist(thread_config("t"))]
        assert [c.checkpoint["id"] for c in listed] == [child["id"]]
        assert listed[0].checkpoint["channel_values"] == {"a": "new-a", "b": "new-b"}
        assert listed[0].pending_writes == []
        s = schema_of(saver)
        assert await admin.fetchval(
            f"SELECT count(*) FROM {s}.lus_store WHERE thread_id = 't' AND get_byte(key, 0) = 99"
        ) == 1
        assert await admin.fetchval(
            f"SELECT count(*) FROM {s}.lus_store WHERE thread_id = 't' AND get_byte(key, 0) = 119"
        ) == 0
        row = await thread_row(admin, saver, "t")
        assert (row["first_write"], row["last_write"], row["expires_at"]) == (now[0], now[0], now[0] + 100)
        # put_writes to an expired thread: the old checkpoint does not come back either.
        now[0] += 150
        await saver.aput_writes(child_config, [("a", "late")], "task")
        assert [c async for c in saver.alist(thread_config("t"))] == []
        assert await admin.fetchval(
            f"SELECT count(*) FROM {s}.lus_store WHERE thread_id = 't' AND get_byte(key, 0) <> 119"
        ) == 0
        assert await raw.dangling(saver, "t", {"a", "b"}) == []


async def test_copying_into_an_expired_thread_removes_it_first(tmp_path: Path, admin: Any) -> None:
    async with clocked(tmp_path, ttl=100) as (saver, now):
        await put_values(saver, "target", {"old": 1})
        now[0] += 50
        await put_values(saver, "source", {"new": 1})
        now[0] += 60  # target expired, source not
        await saver.acopy_thread("source", "target")
        got = await saver.aget_tuple(thread_config("target"))
        assert got is not None and got.checkpoint["channel_values"] == {"new": 1}
        assert await admin.fetchval(
            f"SELECT count(*) FROM {schema_of(saver)}.lus_store WHERE thread_id = 'target' "
            "AND get_byte(key, 0) = 99"
        ) == 1
        now[0] += 100  # the source has expired: nothing to copy
        await saver.acopy_thread("source", "other")
        assert await rows_of(admin, saver, ["other"]) == {"lus_store": 0, "lus_threads": 0}


async def test_refresh_on_read_moves_the_expiry_not_the_last_write(tmp_path: Path, admin: Any) -> None:
    async with clocked(tmp_path, ttl=100, refresh_on_read=True) as (saver, now):
        config = await put_values(saver, "t", {"a": 1})
        await put_values(saver, "own", {"a": 1})
        await saver.aset_ttl("own", 30)
        await put_values(saver, "pinned", {"a": 1})
        await saver.aset_ttl("pinned", None)
        written = now[0]
        for step in range(3):
            now[0] += 80
            assert await saver.aget_tuple(config) is not None, step
        row = await thread_row(admin, saver, "t")
        assert (row["last_write"], row["expires_at"]) == (written, now[0] + 100)
        now[0] += 20
        assert [c async for c in saver.alist(thread_config("t"))]
        assert (await thread_row(admin, saver, "t"))["expires_at"] == now[0] + 100
        assert await saver.backend.checkpoint_heads("own") == []  # 30 s after its write
        assert (await thread_row(admin, saver, "pinned"))["expires_at"] is None
        assert await saver.aget_tuple(thread_config("pinned")) is not None
        assert (await thread_row(admin, saver, "pinned"))["expires_at"] is None
        # Listing every thread refreshes those it returns.
        now[0] += 90
        assert {c.config["configurable"]["thread_id"] async for c in saver.alist(None)} == {"t", "pinned"}
        assert (await thread_row(admin, saver, "t"))["expires_at"] == now[0] + 100


async def test_without_refresh_a_read_does_not_move_the_expiry(tmp_path: Path, admin: Any) -> None:
    async with clocked(tmp_path, ttl=100) as (saver, now):
        config = await put_values(saver, "t", {"a": 1})
        expiry = (await thread_row(admin, saver, "t"))["expires_at"]
        now[0] += 90
        assert await saver.aget_tuple(config) is not None
        assert (await thread_row(admin, saver, "t"))["expires_at"] == expiry
        now[0] += 10
        assert await saver.aget_tuple(config) is None


# -- removals leave nothing ---------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_sweep_delete_and_forget_leave_no_row(api: str, tmp_path: Path, admin: Any) -> None:
    async with clocked(tmp_path, ttl=100) as (saver, now):
        for thread in ("old-1", "old-2"):
            config = await put_values(saver, thread, {"a": [1, 2, 3]}, user="x")
            await saver.aput_writes(config, [("a", 4), ("b", 5)], "task")
        now[0] += 60
        await put_values(saver, "young", {"a": 1}, user="y")
        await put_values(saver, "erase-me", {"a": 1}, user="subject")
        await put_values(saver, "erase-me", {"a": 2}, ns="child:1", user="other")
        now[0] += 50  # old-* have expired
        swept = await call(api, saver, "sweep")
        assert sorted(swept.thread_ids) == ["old-1", "old-2"]
        assert swept.checkpoints == 2 and swept.blobs >= 2 and swept.writes >= 2
        assert await rows_of(admin, saver, ["old-1", "old-2"]) == {"lus_store": 0, "lus_threads": 0}
        assert (await call(api, saver, "sweep")).thread_ids == []

        now[0] += 10
        removed = await call(api, saver, "delete_threads", older_than=timedelta(seconds=30), filter={"user": "y"})
        assert removed.thread_ids == ["young"]
        assert await rows_of(admin, saver, ["young"]) == {"lus_store": 0, "lus_threads": 0}

        receipt = await call(api, saver, "forget", {"user": "subject"})
        assert receipt.thread_ids == ["erase-me"] and receipt.verified and receipt.checkpoints == 2
        assert await rows_of(admin, saver, ["erase-me"]) == {"lus_store": 0, "lus_threads": 0}
        assert await saver.backend.thread_residue(["old-1", "young", "erase-me"]) == []


async def test_delete_thread_and_a_gc_that_empties_a_thread_remove_its_row(tmp_path: Path, admin: Any) -> None:
    async with clocked(tmp_path) as (saver, _):
        await put_values(saver, "a", {"x": 1})
        await saver.adelete_thread("a")
        assert await rows_of(admin, saver, ["a"]) == {"lus_store": 0, "lus_threads": 0}
        await put_values(saver, "b", {"x": 1}, run_id="run-b")
        await saver.adelete_for_runs(["run-b"])
        assert await rows_of(admin, saver, ["b"]) == {"lus_store": 0, "lus_threads": 0}
        await put_values(saver, "c", {"x": 1}, run_id="run-c")
        await put_values(saver, "c", {"x": 1}, run_id="run-keep")
        await saver.adelete_for_runs(["run-c"])
        assert (await rows_of(admin, saver, ["c"]))["lus_threads"] == 1


async def test_remove_threads_counts_and_guards(tmp_path: Path, admin: Any) -> None:
    from langgraph_unified_store.core.lifecycle import RemovalGuard

    async with clocked(tmp_path, ttl=100) as (saver, now):
        await put_values(saver, "a", {"x": 1})
        now[0] += 10
        await put_values(saver, "b", {"x": 1})
        backend = saver.backend
        # Written since the cutoff: kept; absent: left out.
        kept = await backend.remove_threads(["b", "nope"], RemovalGuard(written_before=now[0]))
        assert kept.thread_ids == []
        # Not expired yet: kept.
        assert (await backend.remove_threads(["a"], RemovalGuard(expired_at=now[0]))).thread_ids == []
        # Rows with no threads row pass only the empty guard.
        await admin.execute(f"DELETE FROM {schema_of(saver)}.lus_threads WHERE thread_id = 'b'")
        assert (await backend.remove_threads(["b"], RemovalGuard(written_before=now[0] + 1))).thread_ids == []
        gone = await backend.remove_threads(["a", "b", "a"], RemovalGuard())
        assert gone.thread_ids == ["a", "b"]
        assert (gone.checkpoints, gone.blobs) == (2, 2)
        assert await rows_of(admin, saver, ["a", "b"]) == {"lus_store": 0, "lus_threads": 0}


# -- thread pages -----------------------------------------------------------------------------


async def test_thread_pages_filter_and_page_by_id(tmp_path: Path) -> None:
    async with clocked(tmp_path, ttl=1000) as (saver, now):
        for number in range(7):
            await put_values(saver, f"t{number}", {"a": number}, n=number, even=number % 2 == 0)
            now[0] += 10
        await put_values(saver, "t3", {"a": 1}, ns="inner:1", n=99)
        await saver.aput_writes(config_for("writes-only", "x"), [("a", 1)], "task")
        page = await saver.alist_threads(limit=3)
        assert [t.thread_id for t in page.threads] == ["t0", "t1", "t2"]
        assert page.next_cursor is not None
        rest = await saver.alist_threads(limit=10, cursor=page.next_cursor)
        assert [t.thread_id for t in rest.threads] == ["t3", "t4", "t5", "t6"]
        assert rest.next_cursor is None
        t3 = rest.threads[0]
        assert t3.namespaces == ("", "inner:1") and t3.checkpoints == 2
        assert t3.first_write == 1_000_030 and t3.last_write == now[0] and t3.expires_at == now[0] + 1000
        assert t3.stored_bytes is not None and t3.stored_bytes > rest.threads[1].stored_bytes  # type: ignore[operator]
        assert await ids_listed(saver, filter={"even": True}) == ["t0", "t2", "t4", "t6"]
        assert await ids_listed(saver, filter={"n": 99}) == ["t3"]
        assert await ids_listed(saver, filter={"n": 3, "even": False}) == ["t3"]
        assert await ids_listed(saver, filter={"n": "3"}) == []
        cut = datetime.fromtimestamp(1_000_030, UTC)
        assert await ids_listed(saver, updated_before=cut) == ["t0", "t1", "t2"]
        assert await ids_listed(saver, updated_after=cut) == ["t3", "t4", "t5", "t6"]
        everything = await saver.backend.thread_page(ThreadQuery(everything=True, with_stats=False))
        assert "writes-only" in [t.thread_id for t in everything]
        unordered = await saver.backend.thread_page(
            ThreadQuery(updated_before=1_000_030, ordered=False, limit=2, with_stats=False)
        )
        assert [t.thread_id for t in unordered] == ["t0", "t1"]  # oldest first


INJECTIONS = [
    "x' OR '1'='1",
    "'; DROP TABLE lus_threads; --",
    '"}, "user": "a',
    "$1",
    "\\",
    "%",
    "ü 日本語 🙂",
]


async def test_metadata_filters_are_bound_parameters(tmp_path: Path, admin: Any) -> None:
    async with clocked(tmp_path) as (saver, _):
        for number, value in enumerate(INJECTIONS):
            await put_values(saver, f"t{number}", {"a": 1}, user=value, **{value: "key"})
        await put_values(saver, "plain", {"a": 1}, user="a")
        for number, value in enumerate(INJECTIONS):
            assert await ids_listed(saver, filter={"user": value}) == [f"t{number}"], value
            assert await ids_listed(saver, filter={value: "key"}) == [f"t{number}"], value
        receipt = await saver.aforget({"user": INJECTIONS[0]})
        assert receipt.thread_ids == ["t0"] and receipt.verified
        receipt = await saver.aforget({"user": INJECTIONS[1]})
        assert receipt.thread_ids == ["t1"]
        assert (await saver.adelete_threads(filter={"user": "' OR 1=1 --"})).thread_ids == []
        left = await ids_listed(saver, limit=100)
        assert left == sorted(["plain", *(f"t{n}" for n in range(2, len(INJECTIONS)))])
        assert await admin.fetchval(f"SELECT to_regclass('{schema_of(saver)}.lus_threads') IS NOT NULL")


def literal(value: Any) -> str:
    """A test's own parameter as SQL (EXPLAIN EXECUTE takes no bound parameters)."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


async def test_thread_page_queries_use_an_index(tmp_path: Path, admin: Any) -> None:
    """Each shape walks an index of ``lus_threads`` on a table of thousands of threads, with
    generic plans (what the saver's pools use) and custom ones."""
    async with clocked(tmp_path, ttl=100) as (saver, _):
        s = schema_of(saver)
        await admin.execute(
            f"INSERT INTO {s}.lus_threads (thread_id, first_write, last_write, own_ttl, expires_at) "
            "SELECT 'x' || lpad(n::text, 6, '0'), n, n, NULL, "
            "CASE WHEN n % 10 = 0 THEN n + 100 END FROM generate_series(1, 5000) AS n"
        )
        await admin.execute(
            f"INSERT INTO {s}.lus_store (thread_id, key, type, data, metadata) "
            "SELECT 'x' || lpad(n::text, 6, '0'), '\\x63'::bytea || int4send(n), 'x', '\\x00'::bytea, "
            "jsonb_build_object('n', n) FROM generate_series(1, 5000) AS n"
        )
        await admin.execute(f"ANALYZE {s}.lus_threads")
        await admin.execute(f"ANALYZE {s}.lus_store")
        captured: list[tuple[str, tuple[Any, ...]]] = []

        class Recorder:
            async def fetch(self, statement: str, *args: Any) -> list[Any]:
                captured.append((statement, args))
                return []

        async def record(operation: Any, *, setup: bool = True) -> Any:
            return await operation(Recorder())

        backend: Any = saver.backend
        shapes = {
            "updated_before": ThreadQuery(updated_before=100, everything=True, with_stats=False, ordered=False),
            "expired_at": ThreadQuery(expired_at=500, everything=True, with_stats=False, ordered=False),
            "after": ThreadQuery(after="x004000", limit=10),
            "listing": ThreadQuery(limit=10),
        }
        for name, query in shapes.items():
            captured.clear()
            backend._run = record
            try:
                await backend.thread_page(query)
            finally:
                del backend._run
            ((statement, args),) = captured
            for mode in ("force_generic_plan", "force_custom_plan"):
                await admin.execute(f"SET plan_cache_mode = {mode}")
                await admin.execute(f"PREPARE page AS {statement}")
                try:
                    values = ", ".join(literal(a) for a in args)
                    plan = "\n".join(
                        r[0] for r in await admin.fetch(f"EXPLAIN EXECUTE page({values})")
                    )
                finally:
                    await admin.execute("DEALLOCATE page")
                    await admin.execute("RESET plan_cache_mode")
                wanted = {
                    "updated_before": "lus_threads_by_last_write",
                    "expired_at": "lus_threads_by_expiry",
                    "after": "lus_threads_pkey",
                    "listing": "lus_threads_pkey",
                }[name]
                assert wanted in plan and "Seq Scan on lus_threads" not in plan, f"{name} {mode}\n{plan}"
                assert "Limit" in plan, plan


# -- races ------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_a_removal_racing_a_put_never_leaves_a_dangling_checkpoint(
    api: str, tmp_path: Path
) -> None:
    async with clocked(tmp_path, ttl=100) as (saver, now):
        for round_ in range(12):
            thread = f"race-{round_}"
            base = make_checkpoint({"big": list(range(50)), "n": 0}, {"big": "1", "n": "1"})
            config = await saver.aput(config_for(thread), base, {"user": "r"}, {"big": "1", "n": "1"})
            child = make_checkpoint({"big": list(range(50)), "n": 1}, {"big": "1", "n": "2"})
            removal = {
                0: lambda: call(api, saver, "forget", {"user": "r"}),
                1: lambda: call(api, saver, "delete_threads", older_than=0),
                2: lambda: call(api, saver, "sweep"),
            }[round_ % 3]
            if round_ % 3 == 2:
                now[0] += 100  # expired: the sweep removes it, the put starts it afresh
            put = saver.aput(config, child, {"user": "r"}, {"n": "2"})
            results = await asyncio.gather(put, removal(), return_exceptions=True)
            assert not any(isinstance(r, BaseException) for r in results), results
            assert await raw.dangling(saver, thread, {"big", "n"}) == []
            got = await saver.aget_tuple(thread_config(thread))
            if got is not None:
                assert got.checkpoint["channel_values"] == {"big": list(range(50)), "n": 1}


# -- the saver's lifecycle methods --------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_set_ttl_prune_and_list_threads(api: str, tmp_path: Path, admin: Any) -> None:
    async with clocked(tmp_path, ttl=100) as (saver, now):
        parent = None
        for step in range(5):
            config = await put_values(saver, "t", {"a": step}, parent=parent)
            parent = config["configurable"]["checkpoint_id"]
        await call(api, saver, "set_ttl", "t", timedelta(seconds=500))
        row = await thread_row(admin, saver, "t")
        assert (row["own_ttl"], row["expires_at"]) == (500, row["last_write"] + 500)
        await call(api, saver, "set_ttl", "t", None)
        assert (await thread_row(admin, saver, "t"))["expires_at"] is None
        with pytest.raises(CheckpointNotFoundError):
            await call(api, saver, "set_ttl", "missing", 10)
        await call(api, saver, "prune", ["t"], strategy="keep_last", keep=2)
        assert len([c async for c in saver.alist(thread_config("t"))]) == 2
        page = await call(api, saver, "list_threads", limit=10)
        assert [t.thread_id for t in page.threads] == ["t"] and page.threads[0].checkpoints == 2
        now[0] += 10_000
        assert await saver.aget_tuple(thread_config("t")) is not None  # pinned
        assert (await call(api, saver, "delete_threads", older_than=60, limit=1)).thread_ids == ["t"]
        assert await rows_of(admin, saver, ["t"]) == {"lus_store": 0, "lus_threads": 0}
