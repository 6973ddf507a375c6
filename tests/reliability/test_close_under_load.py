"""Closing a busy saver neither crashes nor hangs, on every backend, through both APIs.

The load test runs in a child process (``close_child``), so that a SIGSEGV (SQLite's
close used to take the connection from under blocking callers: 3 crashes in 3 runs)
fails the test instead of killing pytest, and a hang ends at the subprocess timeout.
Bounds are only ever generous timeouts, never timing assertions.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langgraph_unified_store import SaverClosedError, SyncCallInEventLoopError
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.errors import InvalidConfigError

from ..support import ALL_BACKENDS, config_for, make_saver, open_saver, unique
from . import raw
from .workload import metadata_for, next_checkpoint

ROUNDS = int(os.environ.get("LUS_CLOSE_ROUNDS", "20"))
CHILD_TIMEOUT = 600
# Generous: close_timeout + CANCEL_TIMEOUT + the backend's own close, many times over.
JOIN = 60.0


def _location(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return str(tmp_path / "close.sqlite")
    return unique("lus_close")


@pytest.mark.timeout(CHILD_TIMEOUT + 60)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_close_under_load_never_crashes_hangs_or_half_writes(backend: str, tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    try:
        child = subprocess.run(
            [
                sys.executable, "-m", "tests.reliability.close_child",
                backend, _location(backend, tmp_path), str(ROUNDS), str(seed),
            ],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{backend} (seed {seed}): the close-under-load child hung: {exc.stderr!r}")
    assert child.returncode == 0, (
        f"{backend} (seed {seed}): child ended with {child.returncode} "
        f"(-11 is SIGSEGV): {child.stderr[-3000:]}"
    )
    lines = [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]
    report = lines[0]
    late = [p for line in lines[1:] for p in line.get("late_problems", [])]
    assert report["problems"] == [] and late == [], f"seed {seed}: {report['problems'] + late}"
    assert len(report["rounds"]) == ROUNDS
    # The rounds did race calls: writers were acknowledged before close came.
    assert sum(n for r in report["rounds"] for n, _ in r["writers"].values()) > 0


# -- the rules, one at a time ---------------------------------------------------------------


def _put_one(saver: UnifiedCheckpointSaver, thread_id: str) -> Any:
    checkpoint, versions = next_checkpoint(saver, None, 0)
    return saver.put(config_for(thread_id), checkpoint, metadata_for(0, "w"), versions)


@pytest.fixture
def captured() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        warnings.simplefilter("always", RuntimeWarning)
        yield caught


def _io_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.endswith("-io") and t.is_alive()]


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_close_is_idempotent_from_with_and_from_a_worker_thread(
    backend: str, tmp_path: Path, captured: list[warnings.WarningMessage]
) -> None:
    before = set(_io_threads())
    with make_saver(backend, tmp_path) as saver:
        _put_one(saver, "t")
        worker = threading.Thread(target=saver.close)
        worker.start()
        worker.join(JOIN)
        assert not worker.is_alive()
        saver.close()  # twice, and __exit__ closes a third time
    assert saver.closed
    with pytest.raises(SaverClosedError, match=r"\.get_tuple\(\): the saver is closed"):
        saver.get_tuple(config_for("t"))
    with pytest.raises(SaverClosedError):
        saver.__enter__()  # a closed saver stays closed: setup is refused too
    assert set(_io_threads()) <= before
    assert [str(w.message) for w in captured] == []


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_close_after_the_loop_that_opened_connections_has_ended(
    backend: str, tmp_path: Path, captured: list[warnings.WarningMessage]
) -> None:
    saver = make_saver(backend, tmp_path)

    async def use(saver: UnifiedCheckpointSaver) -> None:
        await saver.asetup()
        checkpoint, versions = next_checkpoint(saver, None, 0)
        await saver.aput(config_for("t"), checkpoint, metadata_for(0, "w"), versions)

    asyncio.run(use(saver))  # opened a pool / client on a loop that is now closed
    assert saver.get_tuple(config_for("t")) is not None  # and one on the I/O loop
    closer = threading.Thread(target=saver.close)
    closer.start()
    closer.join(JOIN)
    assert not closer.is_alive(), "close() hung"
    with pytest.raises(SaverClosedError):
        asyncio.run(saver.aget_tuple(config_for("t")))
    reader = open_saver(backend, str(saver.backend.path)) if backend == "sqlite" else None
    if reader is not None:
        assert reader.get_tuple(config_for("t")) is not None
        reader.close()
    if backend in ("postgres", "redis"):
        asyncio.run(_drop(saver))
    del saver
    gc.collect()
    assert [str(w.message) for w in captured] == []


async def _drop(saver: UnifiedCheckpointSaver) -> None:
    await saver.backend.drop_all()  # type: ignore[attr-defined]
    await saver.backend.aclose()


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_aclose_from_another_loop_than_the_one_that_opened_the_pool(backend: str, tmp_path: Path) -> None:
    saver = make_saver(backend, tmp_path)
    opened = threading.Event()
    release = threading.Event()
    other_loop_result: list[BaseException | None] = []

    async def other_thread_user() -> None:
        await saver.asetup()
        checkpoint, versions = next_checkpoint(saver, None, 0)
        await saver.aput(config_for("t"), checkpoint, metadata_for(0, "w"), versions)
        opened.set()
        while not release.is_set():  # keep this loop (and its pool) alive
            await asyncio.sleep(0.01)
        try:
            await saver.aget_tuple(config_for("t"))
            other_loop_result.append(None)
        except BaseException as exc:
            other_loop_result.append(exc)

    other = threading.Thread(target=asyncio.run, args=(other_thread_user(),))
    other.start()
    assert opened.wait(JOIN)

    async def close_here() -> None:
        assert await saver.aget_tuple(config_for("t")) is not None
        await asyncio.wait_for(saver.aclose(), JOIN)

    asyncio.run(close_here())
    release.set()
    other.join(JOIN)
    assert not other.is_alive()
    assert isinstance(other_loop_result[0], SaverClosedError)
    if backend in ("postgres", "redis"):
        asyncio.run(_drop(saver))


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
async def test_blocking_close_on_a_running_loop_is_refused_not_deadlocked(backend: str, tmp_path: Path) -> None:
    saver = make_saver(backend, tmp_path)
    await saver.asetup()
    try:
        with pytest.raises(SyncCallInEventLoopError, match="aclose"):
            saver.close()
        assert not saver.closed
    finally:
        drop = getattr(saver.backend, "drop_all", None)
        if drop is not None:
            await drop()
        await saver.aclose()
    assert saver.closed


async def test_memory_close_works_on_a_running_loop() -> None:
    saver = make_saver("memory", Path("."))
    saver.close()
    with pytest.raises(SaverClosedError, match=r"MemorySaver.*\.aput_writes\(\)"):
        await saver.aput_writes(config_for("t", "c"), [("a", 1)], "task")


@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_every_async_call_after_aclose_is_refused(backend: str, tmp_path: Path) -> None:
    saver = make_saver(backend, tmp_path)
    await saver.asetup()
    drop = getattr(saver.backend, "drop_all", None)
    if drop is not None:
        await drop()
    await saver.aclose()
    await saver.aclose()
    config = config_for("t", "c")
    checkpoint, versions = next_checkpoint(saver, None, 0)
    calls: dict[str, Any] = {
        "get_tuple": lambda: saver.aget_tuple(config),
        "put": lambda: saver.aput(config, checkpoint, {}, versions),
        "put_writes": lambda: saver.aput_writes(config, [("a", 1)], "task"),
        "delete_thread": lambda: saver.adelete_thread("t"),
        "delete_for_runs": lambda: saver.adelete_for_runs(["r"]),
        "copy_thread": lambda: saver.acopy_thread("t", "u"),
        "prune": lambda: saver.aprune(["t"]),
        "setup": saver.asetup,
        "save_state": lambda: saver.asave_state("t", None),  # type: ignore[arg-type]
        "load_state": lambda: saver.aload_state("t"),
        "list_workflows": saver.alist_workflows,
        "history": lambda: saver.ahistory("t"),
    }
    for method, call in calls.items():
        with pytest.raises(SaverClosedError, match=rf"{type(saver).__name__}\(.*\)\.a{method}\(\)"):
            await call()
    with pytest.raises(SaverClosedError, match=r"\.alist\(\)"):
        async for _ in saver.alist(config):
            pass
    clone = saver.with_allowlist([dict])
    with pytest.raises(SaverClosedError):
        await clone.aget_tuple(config)


def test_close_timeout_is_validated() -> None:
    for bad in (-1, float("inf"), float("nan"), "5", True):
        with pytest.raises(InvalidConfigError, match="close_timeout"):
            make_saver("memory", Path("."), close_timeout=bad)


# -- a call stuck in I/O is cut short: SaverClosedError, and nothing half-written -----------


def _blocked_put(saver: UnifiedCheckpointSaver, thread_id: str, outcome: list[BaseException | None]) -> None:
    try:
        _put_one(saver, thread_id)
        outcome.append(None)
    except BaseException as exc:
        outcome.append(exc)


async def _stored_whole_or_not_at_all(backend: str, location: str, thread_id: str) -> int:
    """How many checkpoints the thread stores, after checking each reads back whole."""
    reader = open_saver(backend, location)
    try:
        tuples = [t async for t in reader.alist(config_for(thread_id))]
        for tup in tuples:
            assert tup.checkpoint["channel_values"]["counter"] == 0
            assert tup.checkpoint["channel_values"]["static"]["written"] == "once"
        assert await raw.checkpoint_count(reader, thread_id) == len(tuples)
        return len(tuples)
    finally:
        await reader.aclose()


def test_sqlite_put_waiting_on_a_lock_is_cut_short(tmp_path: Path) -> None:
    import sqlite3

    path = str(tmp_path / "locked.sqlite")
    # SQLite cannot interrupt a wait for another connection's lock: the call is cut short
    # when busy_timeout ends it (close does not wait for that, see CLOSE_WAIT).
    saver = open_saver("sqlite", path, close_timeout=0.1, busy_timeout=2.0)
    saver.setup()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    outcome: list[BaseException | None] = []
    putter = threading.Thread(target=_blocked_put, args=(saver, "t", outcome))
    putter.start()
    closer = threading.Thread(target=saver.close)
    try:
        while not saver._gate.busy():
            pass
        closer.start()
        closer.join(JOIN)
        assert not closer.is_alive(), "close() hung"
        putter.join(JOIN)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert isinstance(outcome[0], SaverClosedError) and outcome[0].in_flight
    assert "put()" in str(outcome[0])
    assert asyncio.run(_stored_whole_or_not_at_all("sqlite", path, "t")) == 0


def test_postgres_put_waiting_on_a_lock_is_cut_short() -> None:
    import asyncpg

    from langgraph_unified_store.backends.postgres.keys import lock_key as _lock_key

    from ..support import POSTGRES_DSN

    schema = unique("lus_close")
    saver = open_saver("postgres", schema, close_timeout=0.1)
    saver.setup()

    async def hold() -> Any:
        connection = await asyncpg.connect(POSTGRES_DSN)
        await connection.execute("SELECT pg_advisory_lock($1::bigint)", _lock_key(schema, "t"))
        return connection

    async def release(connection: Any) -> None:
        await connection.close()

    holder_loop = asyncio.new_event_loop()
    holder = holder_loop.run_until_complete(hold())
    outcome: list[BaseException | None] = []
    putter = threading.Thread(target=_blocked_put, args=(saver, "t", outcome))
    putter.start()
    try:
        while not saver._gate.busy():
            pass
        closer = threading.Thread(target=saver.close)
        closer.start()
        closer.join(JOIN)
        assert not closer.is_alive(), "close() waited for the stuck call"
        putter.join(JOIN)
        assert not putter.is_alive()
    finally:
        holder_loop.run_until_complete(release(holder))
        holder_loop.close()
    assert isinstance(outcome[0], SaverClosedError) and outcome[0].in_flight
    assert asyncio.run(_stored_whole_or_not_at_all("postgres", schema, "t")) == 0
    cleanup = open_saver("postgres", schema)
    asyncio.run(_drop(cleanup))


async def test_postgres_async_call_waiting_on_a_lock_is_cut_short_by_aclose_from_another_task() -> None:
    import asyncpg

    from langgraph_unified_store.backends.postgres.keys import lock_key as _lock_key

    from ..support import POSTGRES_DSN

    schema = unique("lus_close")
    saver = open_saver("postgres", schema, close_timeout=0.1)
    await saver.asetup()
    holder = await asyncpg.connect(POSTGRES_DSN)
    try:
        await holder.execute("SELECT pg_advisory_lock($1::bigint)", _lock_key(schema, "t"))
        checkpoint, versions = next_checkpoint(saver, None, 0)
        put = asyncio.ensure_future(
            saver.aput(config_for("t"), checkpoint, metadata_for(0, "w"), versions)
        )
        while not saver._gate.busy():
            await asyncio.sleep(0.001)
        await asyncio.wait_for(saver.aclose(), JOIN)
        with pytest.raises(SaverClosedError, match=r"\.aput\(\): the saver was closed during"):
            await asyncio.wait_for(put, JOIN)
    finally:
        await holder.close()
    assert await _stored_whole_or_not_at_all("postgres", schema, "t") == 0
    await _drop(open_saver("postgres", schema))


async def test_redis_call_stuck_on_a_paused_server_is_cut_short(sandbox_redis: Any) -> None:
    import redis.asyncio as aioredis

    prefix = unique("lus_close")
    saver = open_saver("redis", prefix, url=sandbox_redis.url, close_timeout=0.1)
    await saver.asetup()
    admin = aioredis.Redis.from_url(sandbox_redis.url)
    try:
        await admin.execute_command("CLIENT", "PAUSE", 30000, "WRITE")
        outcome: list[BaseException | None] = []
        putter = threading.Thread(target=_blocked_put, args=(saver, "t", outcome))
        putter.start()
        while not saver._gate.busy():
            await asyncio.sleep(0.001)
        await asyncio.wait_for(saver.aclose(), JOIN)
        await asyncio.to_thread(putter.join, JOIN)
        assert isinstance(outcome[0], SaverClosedError) and outcome[0].in_flight
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
    reader = open_saver("redis", prefix, url=sandbox_redis.url)
    try:
        tuples = [t async for t in reader.alist(config_for("t"))]
        assert await raw.checkpoint_count(reader, "t") == len(tuples) <= 1
        await reader.backend.drop_all()  # type: ignore[attr-defined]
    finally:
        await reader.aclose()
        await admin.aclose()


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_framework_hooks_after_close_raise_saver_closed(backend: str, tmp_path: Path) -> None:
    """The adapters' sync hooks (CrewAI persistence) go through ``run_blocking``."""
    saver = make_saver(backend, tmp_path)
    saver.setup()
    if backend in ("postgres", "redis"):
        saver.run_blocking(saver.backend.drop_all())  # type: ignore[attr-defined]
    saver.close()
    with pytest.raises(SaverClosedError, match=r"aget_tuple\(\)"):
        saver.run_blocking(saver.aget_tuple(config_for("t")))


async def test_postgres_pool_closed_by_its_owner_is_a_clear_error() -> None:
    import asyncpg

    from langgraph_unified_store import BackendUnavailableError, PostgresSaver

    from ..support import POSTGRES_DSN

    pool = await asyncpg.create_pool(POSTGRES_DSN, min_size=1, max_size=2)
    saver = PostgresSaver(pool, schema=unique("lus_close"))
    await saver.asetup()
    await saver.backend.drop_all()
    await pool.close()
    with pytest.raises(BackendUnavailableError, match="given pool"):
        await saver.aget_tuple(config_for("t"))
    await saver.aclose()


def _loop_ending_with_calls_in_flight(backend: str, location: str) -> None:
    saver = open_saver(backend, location)

    async def busy() -> None:
        await saver.asetup()

        async def writer(thread_id: str) -> None:
            previous = None
            # Bounded: on Redis a cancel delivered inside redis-py's read is now and then
            # absorbed (the task goes on), and the workload grows with the step.
            for step in range(1_500):
                checkpoint, versions = next_checkpoint(saver, previous, step)
                parent = previous["id"] if previous else None
                await saver.aput(config_for(thread_id, parent), checkpoint, metadata_for(step, "w"), versions)
                previous = checkpoint
                await asyncio.sleep(0)

        writers = [asyncio.ensure_future(writer(f"t{n}")) for n in range(3)]
        await asyncio.sleep(0.2)  # then return: asyncio.run cancels the writers mid-call
        assert not any(w.done() for w in writers)

    for _ in range(3):
        asyncio.run(busy())

    async def later() -> Any:
        return await asyncio.wait_for(saver.aget_tuple(config_for("t0")), JOIN)

    assert asyncio.run(later()) is not None
    assert saver.get_tuple(config_for("t1")) is not None
    closer = threading.Thread(target=saver.close)
    closer.start()
    closer.join(JOIN)
    assert not closer.is_alive(), "close() hung"
    if backend in ("postgres", "redis"):
        asyncio.run(_drop(open_saver(backend, location)))


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_a_loop_ending_with_calls_in_flight_breaks_nothing(
    backend: str, tmp_path: Path, captured: list[warnings.WarningMessage]
) -> None:
    """asyncio.run() returning while tasks are mid-call (it cancels them) used to kill
    aiosqlite's thread: every later call on the saver then waited forever."""
    _loop_ending_with_calls_in_flight(backend, _location(backend, tmp_path))
    gc.collect()
    assert [str(w.message) for w in captured] == []
