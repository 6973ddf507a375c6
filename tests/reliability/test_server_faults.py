"""Server faults: connections killed mid-run, a real outage and restart, an unreachable port.

- Redis: ``CLIENT KILL TYPE normal SKIPME yes`` from a control connection, repeatedly,
  while writers on both APIs are busy. It runs on a private redis-server, so no other
  user of the shared server ever loses a connection.
- PostgreSQL: ``pg_terminate_backend`` of every other backend of the database, from a
  control connection, on a database created for the test on the shared server.
- A real outage: a private redis-server stopped with SHUTDOWN NOSAVE, and a private
  PostgreSQL cluster stopped with ``pg_ctl -m immediate`` (a crash, to the clients).
  Calls during the outage fail within a bound with ``BackendUnavailableError``; after a
  restart on the same port the same saver works again, and Postgres kept everything
  acknowledged before the crash. The shared servers are never stopped.

A call that fails during a fault must fail as a ``ConnectionError`` (which
``BackendUnavailableError`` is); the writers then retry it, as an application would.
The saver is never rebuilt, and no acknowledged checkpoint or write may be lost.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import redis.asyncio as aioredis
from langgraph.checkpoint.base import Checkpoint

from langgraph_unified_store import BackendUnavailableError
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import POSTGRES_DSN, config_for, drop_saver, open_saver
from . import figures
from .private_servers import PrivatePostgres, PrivateRedis, free_port
from .workload import (
    Acked,
    metadata_for,
    next_checkpoint,
    state_at,
    verify_chain,
    writes_after,
)

T = TypeVar("T")
KILLS = 12
ATTEMPTS = 6
OUTAGE_BOUND = 30.0


class Faults:
    """What the writers saw fail: every failure must be a ConnectionError."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()

    def seen(self, exc: BaseException) -> None:
        with self.lock:
            self.errors.append(exc)


async def retry_async(faults: Faults, call: Callable[..., Awaitable[T]], *args: Any) -> T:
    for _ in range(ATTEMPTS):
        try:
            return await call(*args)
        except ConnectionError as exc:
            faults.seen(exc)
            await asyncio.sleep(0.05)
    raise AssertionError(f"still failing after {ATTEMPTS} attempts: {faults.errors[-1]!r}")


def retry_sync(faults: Faults, call: Callable[..., T], *args: Any) -> T:
    for _ in range(ATTEMPTS):
        try:
            return call(*args)
        except ConnectionError as exc:
            faults.seen(exc)
            time.sleep(0.05)
    raise AssertionError(f"still failing after {ATTEMPTS} attempts: {faults.errors[-1]!r}")


async def async_writer(
    saver: UnifiedCheckpointSaver, thread_id: str, stop: asyncio.Event, acked: Acked, faults: Faults
) -> None:
    previous: Checkpoint | None = None
    step = 0
    while not stop.is_set():
        checkpoint, versions = next_checkpoint(saver, previous, step)
        parent = previous["id"] if previous else None
        config = await retry_async(
            faults, saver.aput,
            config_for(thread_id, parent), checkpoint, metadata_for(step, "a"), versions,
        )
        acked.checkpoint(checkpoint["id"])
        await retry_async(faults, saver.aput_writes, config, writes_after(step), f"task-{step}")
        acked.write(checkpoint["id"])
        previous, step = checkpoint, step + 1


def sync_writer(
    saver: UnifiedCheckpointSaver, thread_id: str, stop: threading.Event, acked: Acked, faults: Faults
) -> None:
    previous: Checkpoint | None = None
    step = 0
    while not stop.is_set():
        checkpoint, versions = next_checkpoint(saver, previous, step)
        parent = previous["id"] if previous else None
        config = retry_sync(
            faults, saver.put,
            config_for(thread_id, parent), checkpoint, metadata_for(step, "s"), versions,
        )
        acked.checkpoint(checkpoint["id"])
        retry_sync(faults, saver.put_writes, config, writes_after(step), f"task-{step}")
        acked.write(checkpoint["id"])
        previous, step = checkpoint, step + 1


async def run_with_kills(
    saver: UnifiedCheckpointSaver, kill: Callable[[], Awaitable[int]], backend: str
) -> Faults:
    """Writers on both APIs while ``kill`` drops the saver's connections at random moments;
    then everything acknowledged must be there and the saver must work on first try."""
    faults = Faults()
    stop_async, stop_sync = asyncio.Event(), threading.Event()
    acked_async, acked_sync = Acked(), Acked()
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            sync_writer(saver, "faults-sync", stop_sync, acked_sync, faults)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=in_thread)
    thread.start()
    writer = asyncio.create_task(async_writer(saver, "faults-async", stop_async, acked_async, faults))
    killed = 0
    rng = random.Random()
    try:
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.03, 0.12))
            killed += await kill()
    finally:
        stop_async.set()
        stop_sync.set()
        await asyncio.to_thread(thread.join)
        await writer
    assert not errors, f"the blocking writer failed: {errors[0]!r}"
    assert killed >= KILLS, f"only {killed} connections were killed"
    for thread_id, acked in (("faults-async", acked_async), ("faults-sync", acked_sync)):
        assert acked.checkpoints, f"{thread_id} acknowledged nothing"
        tuples = [t async for t in saver.alist(config_for(thread_id))]
        checkpoints, writes = verify_chain(tuples, acked.checkpoints, acked.writes, f"{backend} {thread_id}")
        figures.count(backend, figures.CHECKPOINTS_VERIFIED, checkpoints)
        figures.count(backend, figures.WRITES_VERIFIED, writes)
    for exc in faults.errors:
        assert isinstance(exc, BackendUnavailableError), f"unclear failure: {exc!r}"
    # After the faults, the same saver works at once, on both APIs.
    await saver.aput_writes(config_for("faults-async", acked_async.checkpoints[-1]), [("x", 1)], "after")
    assert await asyncio.to_thread(saver.get_tuple, config_for("faults-sync")) is not None
    figures.count(backend, figures.FAULTS_SURVIVED, killed)
    return faults


# -- Redis: clients killed -----------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.timeout(120)
async def test_redis_clients_killed_mid_run(private_redis: PrivateRedis) -> None:
    saver = open_saver("redis", f"lus_faults_{uuid.uuid4().hex[:8]}", url=private_redis.url)
    control = aioredis.Redis.from_url(private_redis.url)
    try:
        await saver.asetup()

        async def kill() -> int:
            return int(await control.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))

        await run_with_kills(saver, kill, "redis")
    finally:
        await control.aclose()
        await drop_saver(saver)


# -- PostgreSQL: backends terminated ------------------------------------------------------


@pytest.fixture
async def private_database() -> AsyncIterator[str]:
    """A database of its own on the shared server: terminating "every other backend of
    the current database" then only touches this test's connections."""
    name = f"lus_faults_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield POSTGRES_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


TERMINATE = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


@pytest.mark.timeout(120)
async def test_postgres_backends_terminated_mid_run(private_database: str) -> None:
    saver = open_saver("postgres", "lus_faults", dsn=private_database)
    control = await asyncpg.connect(private_database)
    try:
        await saver.asetup()

        async def kill() -> int:
            return int(await control.fetchval(TERMINATE))

        await run_with_kills(saver, kill, "postgres")
    finally:
        await control.close()
        await drop_saver(saver)


# -- real outages -------------------------------------------------------------------------


async def _fails_clearly(call: Callable[[], Awaitable[Any]], what: str) -> BackendUnavailableError:
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as caught:
        await asyncio.wait_for(call(), OUTAGE_BOUND)
    message = str(caught.value)
    assert "unavailable" in message or "cannot" in message or "could not" in message, (
        f"{what}: unclear error {message!r}"
    )
    assert time.monotonic() - started < OUTAGE_BOUND, f"{what} took longer than the bound"
    return caught.value


async def _works_again(call: Callable[[], Awaitable[T]]) -> T:
    """The same saver answers again once the server is back (no rebuild)."""
    deadline = time.monotonic() + OUTAGE_BOUND
    while True:
        try:
            return await asyncio.wait_for(call(), OUTAGE_BOUND)
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _outage_round(
    saver: UnifiedCheckpointSaver, stop: Callable[[], None], start: Callable[[], None],
    backend: str, durable: bool,
) -> None:
    before = await saver.aput(*_one("outage", 0, saver))
    stop()
    # Both APIs fail clearly, within the bound, while the server is down.
    await _fails_clearly(lambda: saver.aput(*_one("outage", 1, saver)), "async put")
    await _fails_clearly(lambda: saver.aget_tuple(config_for("outage")), "async get")
    await _fails_clearly(lambda: asyncio.to_thread(saver.put, *_one("outage", 2, saver)), "sync put")
    await _fails_clearly(lambda: asyncio.to_thread(lambda: list(saver.list(None))), "sync list")
    start()
    fresh = f"after-outage-{uuid.uuid4().hex[:6]}"
    after = await _works_again(lambda: saver.aput(*_one(fresh, 3, saver)))
    assert await asyncio.to_thread(saver.get_tuple, after) is not None
    got = await saver.aget_tuple(before)
    if durable:
        assert got is not None, f"{backend} lost a checkpoint acknowledged before the crash"
    figures.count(backend, figures.FAULTS_SURVIVED)


def _one(thread_id: str, step: int, saver: UnifiedCheckpointSaver) -> tuple[Any, ...]:
    checkpoint, versions = next_checkpoint(saver, None, step)
    return config_for(thread_id), checkpoint, metadata_for(step, "outage"), versions


@pytest.mark.timeout(180)
async def test_redis_outage_and_restart(private_redis: PrivateRedis) -> None:
    saver = open_saver("redis", "lus_outage", url=private_redis.url, socket_timeout=2.0)
    try:
        await saver.asetup()
        for _ in range(2):
            await _outage_round(saver, private_redis.stop, private_redis.start, "redis", durable=False)
    finally:
        await drop_saver(saver)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.mark.timeout(180)
async def test_postgres_crash_and_restart(private_postgres: PrivatePostgres) -> None:
    saver = open_saver("postgres", "lus_outage", dsn=private_postgres.dsn, connect_timeout=3.0)
    try:
        await saver.asetup()
        for _ in range(2):
            await _outage_round(
                saver, private_postgres.stop, private_postgres.start, "postgres", durable=True
            )
    finally:
        await drop_saver(saver)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", ["postgres", "redis"])
async def test_unreachable_server_fails_within_a_bound(backend: str) -> None:
    port = free_port()  # nobody listens here
    if backend == "postgres":
        saver = open_saver("postgres", "lus_none", dsn=f"postgresql://postgres@127.0.0.1:{port}/test")
    else:
        saver = open_saver("redis", "lus_none", url=f"redis://127.0.0.1:{port}/0")
    try:
        error = await _fails_clearly(saver.asetup, "setup")
        assert str(port) in str(error), f"the error does not say where: {error}"
        await _fails_clearly(lambda: asyncio.to_thread(saver.setup), "sync setup")
        await _fails_clearly(lambda: saver.aget_tuple(config_for("t")), "get")
        figures.count(backend, figures.FAULTS_SURVIVED)
    finally:
        await saver.aclose()




@pytest.mark.timeout(120)
async def test_redis_run_continued_across_a_restart_that_lost_the_data(
    private_redis: PrivateRedis,
) -> None:
    """A run in flight when a cache-only Redis restarts: its next checkpoint must still be
    complete (or refused), never acknowledged and unreadable."""
    saver = open_saver("redis", "lus_lost", url=private_redis.url, socket_timeout=2.0)
    try:
        previous = None
        for step in range(3):
            checkpoint, versions = next_checkpoint(saver, previous, step)
            await saver.aput(config_for("run", previous["id"] if previous else None), checkpoint,
                             metadata_for(step, "run"), versions)
            previous = checkpoint
        private_redis.stop()
        private_redis.start()
        assert previous is not None
        checkpoint, versions = next_checkpoint(saver, previous, 3)
        config = await _works_again(lambda: saver.aput(
            config_for("run", previous["id"]), checkpoint, metadata_for(3, "run"), versions
        ))
        got = await saver.aget_tuple(config)
        assert got is not None and got.checkpoint["channel_values"]["messages"] == state_at(3)["messages"]
    finally:
        await drop_saver(saver)


# -- SQLite: another process holds the write lock -----------------------------------------


def _hold_write_lock(path: str, seconds: float, held: threading.Event) -> None:
    """What another process's long write transaction looks like to the saver."""
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        db.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(seconds)
        db.execute("COMMIT")
    finally:
        db.close()


@pytest.mark.timeout(120)
async def test_sqlite_waits_out_a_foreign_write_lock(tmp_path: Path) -> None:
    """langchain-ai/langgraph#8136: "database is locked" under concurrent writers. A write
    lock another process holds for a while is waited out, on both APIs."""
    path = str(tmp_path / "locked.sqlite")
    saver = open_saver("sqlite", path, busy_timeout=5.0)
    try:
        await saver.asetup()
        for _ in range(3):
            held = threading.Event()
            holder = threading.Thread(target=_hold_write_lock, args=(path, 0.5, held))
            holder.start()
            await asyncio.to_thread(held.wait)
            acked_async, acked_sync = Acked(), Acked()
            await asyncio.gather(
                _chain(saver, "locked-async", acked_async),
                asyncio.to_thread(_chain_sync, saver, "locked-sync", acked_sync),
            )
            await asyncio.to_thread(holder.join)
            figures.count("sqlite", figures.FAULTS_SURVIVED)
        for thread_id in ("locked-async", "locked-sync"):
            tuples = [t async for t in saver.alist(config_for(thread_id))]
            assert len(tuples) == 3 * 5, f"{thread_id}: {len(tuples)} checkpoints"
    finally:
        await saver.aclose()


@pytest.mark.timeout(60)
async def test_sqlite_lock_held_past_busy_timeout_fails_clearly(tmp_path: Path) -> None:
    """Past ``busy_timeout`` the call fails within a bound, as BackendUnavailableError
    naming the file, and the same saver works once the lock is released."""
    path = str(tmp_path / "locked.sqlite")
    impatient = open_saver("sqlite", path, busy_timeout=0.3)
    try:
        await impatient.asetup()
        held = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, 2.0, held))
        holder.start()
        await asyncio.to_thread(held.wait)
        try:
            error = await _fails_clearly(lambda: impatient.aput(*_one("impatient", 0, impatient)), "put")
            assert "locked.sqlite" in str(error), str(error)
        finally:
            await asyncio.to_thread(holder.join)
        config, checkpoint, metadata, versions = _one("impatient", 1, impatient)
        stored = await impatient.aput(config, checkpoint, metadata, versions)
        assert stored["configurable"]["checkpoint_id"] == checkpoint["id"], stored
        # The put that timed out stored nothing; the one after the lock stored exactly
        # its checkpoint: the thread lists that one alone, with every value and its metadata.
        listed = [t async for t in impatient.alist(config_for("impatient"))]
        assert [t.checkpoint["id"] for t in listed] == [checkpoint["id"]]
        # A first checkpoint of a thread names no "static" blob (written only at step 0).
        assert listed[0].checkpoint["channel_values"] == state_at(1)
        assert listed[0].metadata == metadata
        assert listed[0].parent_config is None
    finally:
        await impatient.aclose()


async def _chain(saver: UnifiedCheckpointSaver, thread_id: str, acked: Acked) -> None:
    from .workload import write_chain_async

    await write_chain_async(saver, f"{thread_id}", 5, uuid.uuid4().hex[:6], acked)


def _chain_sync(saver: UnifiedCheckpointSaver, thread_id: str, acked: Acked) -> None:
    from .workload import write_chain_sync

    write_chain_sync(saver, thread_id, 5, uuid.uuid4().hex[:6], acked)
