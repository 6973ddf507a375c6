"""Health checks (``core.health``): the saver's and the store's ``health()`` / ``ahealth()``
on every backend, against real servers: healthy once set up, migrations pending before
(nothing created by looking), an older or a newer schema, unreachable servers, Redis
cluster mode, and the rules themselves on generated cases."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st
from redis import exceptions as redis_errors

from langgraph_unified_store import HealthReport, InvalidConfigError, SaverClosedError
from langgraph_unified_store.backends.postgres import PostgresSaver
from langgraph_unified_store.backends.postgres import migrations as pg_migrations
from langgraph_unified_store.backends.postgres.sql import bind
from langgraph_unified_store.backends.redis import RedisSaver
from langgraph_unified_store.backends.redis.database import module_names
from langgraph_unified_store.backends.sqlite import SQLiteSaver
from langgraph_unified_store.backends.sqlite.migrations import SCHEMA_VERSION as SQLITE_VERSION
from langgraph_unified_store.core.health import BackendProbe, judge
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.registry import backend_named

from .support import ALL_BACKENDS, POSTGRES_DSN, REDIS_URL, drop_saver, make_saver, unique

PG_VERSION = pg_migrations.SCHEMA_VERSION
LATEST = {"sqlite": SQLITE_VERSION, "postgres": PG_VERSION}


def every_migration(backend: str) -> tuple[int, ...]:
    """The migrations a fresh database of this backend has pending: 1 to the latest."""
    return tuple(range(1, LATEST[backend] + 1))

# Fields the two APIs may differ in: the time of one round trip.
TIMED = {"round_trip_ms": None}
# How long a check of a closed port may take (refused at once; generous for a busy box).
UNREACHABLE_BOUND = 4.0
VERSIONED = ("sqlite", "postgres")


def untimed(report: HealthReport) -> HealthReport:
    return dataclasses.replace(report, **TIMED)


def assert_healthy(report: HealthReport, backend: str) -> None:
    assert report.ok, report
    assert report.backend == backend
    assert report.reachable and not report.problems and not report.pending_migrations
    assert report.schema_version == report.expected_schema_version
    if backend in VERSIONED:
        assert report.schema_version == LATEST[backend]
    if backend != "memory":
        assert report.server_version
        assert report.round_trip_ms is not None and report.round_trip_ms >= 0
        assert report.location
    orjson.dumps(report.as_dict())  # JSON-ready as it is


# -- every backend, set up -------------------------------------------------------------------


async def test_healthy_after_setup(saver: UnifiedCheckpointSaver, backend_name: str) -> None:
    assert_healthy(await saver.ahealth(), backend_name)


async def test_sync_and_async_give_the_same_report(saver: UnifiedCheckpointSaver, backend_name: str) -> None:
    blocking = await asyncio.to_thread(saver.health)
    assert_healthy(blocking, backend_name)
    assert untimed(blocking) == untimed(await saver.ahealth())


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_blocking_health_before_and_after_setup(backend: str, tmp_path: Path) -> None:
    saver = make_saver(backend, tmp_path)
    try:
        before = saver.health()
        if backend in VERSIONED:
            assert before.pending_migrations == every_migration(backend) and not before.ok
        else:
            assert before.ok  # nothing to set up
        saver.setup()
        assert_healthy(saver.health(), backend)
    finally:
        asyncio.run(drop_saver(saver))


# -- before setup: pending, and nothing created ------------------------------------------------


async def test_sqlite_before_setup_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite"
    saver = SQLiteSaver(str(path))
    try:
        report = await saver.ahealth()
        assert report.reachable and not report.ok
        assert report.schema_version == 0 and report.expected_schema_version == SQLITE_VERSION
        assert report.pending_migrations == tuple(range(1, SQLITE_VERSION + 1))
        assert "setup()" in report.problems[0]
        assert untimed(await asyncio.to_thread(saver.health)) == untimed(report)
        assert not path.exists()
    finally:
        await saver.aclose()


async def test_sqlite_in_a_missing_directory_is_unreachable(tmp_path: Path) -> None:
    saver = SQLiteSaver(str(tmp_path / "nowhere" / "db.sqlite"))
    try:
        report = await saver.ahealth()
        assert not report.reachable and "directory does not exist" in report.problems[0]
    finally:
        await saver.aclose()


async def test_sqlite_file_that_is_no_database(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"not a database at all, " * 100)
    saver = SQLiteSaver(str(path))
    try:
        report = await saver.ahealth()
        assert not report.reachable and "cannot read SQLite database" in report.problems[0]
    finally:
        await saver.aclose()


async def test_postgres_before_setup_creates_nothing(admin: Any) -> None:
    schema = unique("lus_health")
    saver = PostgresSaver(POSTGRES_DSN, schema=schema)
    try:
        report = await saver.ahealth()
        assert report.reachable and report.server_version and not report.ok
        assert report.schema_version == 0 and report.pending_migrations == every_migration("postgres")
        assert untimed(await asyncio.to_thread(saver.health)) == untimed(report)
        assert not await admin.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema)
    finally:
        await drop_saver(saver)


async def test_redis_before_setup_creates_nothing() -> None:
    prefix = unique("lus_health")
    saver = RedisSaver(REDIS_URL, prefix=prefix)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        report = await saver.ahealth()
        assert report.ok and report.cluster is False and report.modules is not None
        assert report.schema_version is None and report.expected_schema_version is None
        assert [key async for key in client.scan_iter(match=f"{prefix}:*")] == []
    finally:
        await client.aclose()
        await drop_saver(saver)


# -- older and newer schemas ------------------------------------------------------------------


async def test_postgres_schema_at_migration_1_reports_the_rest_pending(admin: Any) -> None:
    schema = unique("lus_health")
    quoted = pg_migrations.quote_schema(schema)
    await admin.execute(bind(pg_migrations.CREATE_SCHEMA, quoted))
    await admin.execute(bind(pg_migrations.MIGRATIONS_TABLE_DDL, quoted))
    await admin.execute(bind(pg_migrations.MIGRATION_1, quoted))
    await admin.execute(bind(pg_migrations.INSERT_SCHEMA_VERSION, quoted), 1)
    saver = PostgresSaver(POSTGRES_DSN, schema=schema)
    try:
        report = await saver.ahealth()
        assert report.reachable and not report.ok
        assert (report.schema_version, report.expected_schema_version) == (1, PG_VERSION)
        assert report.pending_migrations == every_migration("postgres")[1:]
        assert "version 1" in report.problems[0] and f"2 to {PG_VERSION}" in report.problems[0]
        await saver.asetup()
        assert_healthy(await saver.ahealth(), "postgres")
    finally:
        await drop_saver(saver)


async def test_postgres_newest_migration_missing_and_a_future_one(admin: Any) -> None:
    schema = unique("lus_health")
    saver = PostgresSaver(POSTGRES_DSN, schema=schema)
    try:
        await saver.asetup()
        table = f'"{schema}".lus_migrations'
        await admin.execute(f"DELETE FROM {table} WHERE version = $1", PG_VERSION)
        behind = await saver.ahealth()
        assert behind.schema_version == PG_VERSION - 1 and not behind.ok
        assert behind.pending_migrations == (PG_VERSION,)
        assert f"migration(s) {PG_VERSION}" in behind.problems[0]
        await admin.execute(f"INSERT INTO {table} (version) VALUES ($1), ($2)", PG_VERSION, PG_VERSION + 1)
        ahead = await saver.ahealth()
        assert ahead.reachable and ahead.schema_version == PG_VERSION + 1 and not ahead.pending_migrations
        assert not ahead.ok and "newer than this code knows" in ahead.problems[0]
        assert untimed(await asyncio.to_thread(saver.health)) == untimed(ahead)
    finally:
        await drop_saver(saver)


async def test_sqlite_older_and_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "versions.sqlite"
    saver = SQLiteSaver(str(path))
    try:
        await saver.asetup()
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM lus_schema_migrations WHERE version >= 3")
        behind = await saver.ahealth()
        assert behind.schema_version == 2 and behind.pending_migrations == every_migration("sqlite")[2:]
        with sqlite3.connect(path) as db:
            db.executemany(
                "INSERT INTO lus_schema_migrations (version) VALUES (?)",
                [(v,) for v in (*every_migration("sqlite")[2:], SQLITE_VERSION + 5)],
            )
        ahead = await saver.ahealth()
        assert ahead.schema_version == SQLITE_VERSION + 5 and not ahead.ok and "newer" in ahead.problems[0]
        assert untimed(await asyncio.to_thread(saver.health)) == untimed(ahead)
    finally:
        await saver.aclose()


async def test_redis_threads_of_an_earlier_release_are_a_pending_upgrade() -> None:
    saver = RedisSaver(REDIS_URL, prefix=unique("lus_health"))
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        # A thread an earlier release indexed only by expiry: in the threads index alone.
        await client.zadd(saver.backend._threads_key, {b"legacy": float("inf")})
        report = await saver.ahealth()
        assert report.reachable and not report.ok
        assert report.pending_migrations == ("index 1 thread(s) an earlier release indexed only by expiry",)
        assert untimed(await asyncio.to_thread(saver.health)) == untimed(report)
    finally:
        await client.aclose()
        await drop_saver(saver)


# -- unreachable ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "where"),
    [
        pytest.param(
            lambda: PostgresSaver("postgresql://postgres@127.0.0.1:1/test"), "127.0.0.1:1",
            id="postgres", marks=pytest.mark.postgres,
        ),
        pytest.param(
            lambda: RedisSaver("redis://127.0.0.1:1/0"), "127.0.0.1:1",
            id="redis", marks=pytest.mark.redis,
        ),
    ],
)
async def test_unreachable_server_is_a_report(make: Any, where: str) -> None:
    saver = make()
    try:
        started = time.monotonic()
        report = await saver.ahealth(timeout=2)
        blocking = await asyncio.to_thread(saver.health, timeout=2)
        assert time.monotonic() - started < 2 * UNREACHABLE_BOUND
        for found in (report, blocking):
            assert not found.reachable and not found.ok
            assert len(found.problems) == 1 and where in found.problems[0]
            assert found.server_version is None and found.round_trip_ms is None
        assert report == blocking
    finally:
        await saver.aclose()


@pytest.mark.postgres
async def test_unreachable_store() -> None:
    entry = backend_named("postgres")
    store = entry.store_class()("postgresql://postgres@127.0.0.1:1/test", schema=unique("lus_health"))
    try:
        report = await store.ahealth(timeout=2)
        assert not report.reachable and "127.0.0.1:1" in report.problems[0]
    finally:
        await store.aclose()


# -- Redis: modules, cluster ------------------------------------------------------------------


async def test_redis_module_list_refused_is_unknown_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    saver = RedisSaver(REDIS_URL, prefix=unique("lus_health"))
    connection = saver.backend._connection
    execute_one = connection.execute_one

    async def refusing(operation: str, call: Any) -> Any:
        class Probe:
            command: tuple[Any, ...] = ()

            def execute_command(self, *args: Any) -> None:
                Probe.command = args

        assert call.command is not None
        call.command(Probe())
        if Probe.command[:2] == ("MODULE", "LIST"):
            raise redis_errors.ResponseError("unknown command 'MODULE'")
        return await execute_one(operation, call)

    monkeypatch.setattr(connection, "execute_one", refusing)
    try:
        report = await saver.ahealth()
        assert report.ok and report.modules is None
        assert any("MODULE LIST refused" in note for note in report.notes)
    finally:
        await drop_saver(saver)


def test_module_names_in_either_answer_form() -> None:
    resp2 = [[b"name", b"search", b"ver", 20400], [b"name", b"ReJSON", b"ver", 20600]]
    resp3 = [{b"name": b"search", b"ver": 20400}, {"name": "ReJSON", "ver": 20600}]
    assert module_names(resp2) == module_names(resp3) == ("ReJSON", "search")
    assert module_names([]) == module_names(None) == ()


async def test_redis_cluster_mode_is_reported(cluster_url: str) -> None:
    right = RedisSaver(cluster_url, cluster=True, prefix=unique("lus_health"))
    wrong = RedisSaver(cluster_url, cluster=False, prefix=unique("lus_health"))
    try:
        report = await right.ahealth()
        assert report.ok and report.cluster is True and report.server_version
        assert untimed(await asyncio.to_thread(right.health)) == untimed(report)
        mismatch = await wrong.ahealth()
        assert mismatch.reachable and mismatch.cluster is True and not mismatch.ok
        assert "cluster=False" in mismatch.problems[0]
    finally:
        await right.aclose()
        await wrong.aclose()


# -- the store and the cache ------------------------------------------------------------------


def _open(backend: str, make: str, tmp_path: Path) -> Any:
    entry = backend_named(backend)
    cls = getattr(entry, make)()
    if entry.namespace_option is not None:
        server = POSTGRES_DSN if backend == "postgres" else REDIS_URL
        return cls(server, **{entry.namespace_option: unique("lus_health")})
    if entry.conn_of_url is not None:
        return cls(str(tmp_path / f"{unique('store')}.sqlite"))
    return cls()


@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_store_health_before_and_after_setup(backend: str, tmp_path: Path) -> None:
    store = _open(backend, "store_class", tmp_path)
    try:
        before = await store.ahealth()
        assert before.reachable and before.backend == backend
        if backend in VERSIONED:
            assert before.pending_migrations == every_migration(backend) and not before.ok
        await store.asetup()
        after = await store.ahealth()
        assert_healthy(after, backend)
        assert untimed(await asyncio.to_thread(store.health)) == untimed(after)
    finally:
        drop = getattr(store.backend, "drop_all", None)
        if drop is not None:
            await drop()
        if backend == "postgres":
            await store.backend._run(
                lambda conn: conn.execute(pg_migrations.drop_statement(store.backend.schema)), setup=False
            )
        await store.aclose()


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_cache_health(backend: str, tmp_path: Path) -> None:
    cache = _open(backend, "cache_class", tmp_path)
    try:
        await cache.asetup()
        assert_healthy(await cache.ahealth(), backend)
    finally:
        await cache.aclose()


# -- closed, bad input -------------------------------------------------------------------------


async def test_closed_saver_and_store_refuse(tmp_path: Path) -> None:
    saver = SQLiteSaver(str(tmp_path / "closed.sqlite"))
    await saver.aclose()
    with pytest.raises(SaverClosedError):
        await saver.ahealth()
    with pytest.raises(SaverClosedError):
        await asyncio.to_thread(saver.health)
    store = _open("sqlite", "store_class", tmp_path)
    await store.aclose()
    with pytest.raises(SaverClosedError):
        await store.ahealth()
    with pytest.raises(SaverClosedError):
        await asyncio.to_thread(store.health)


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), "5", True])
async def test_bad_timeout(timeout: Any, tmp_path: Path) -> None:
    saver = SQLiteSaver(str(tmp_path / "t.sqlite"))
    try:
        with pytest.raises(InvalidConfigError, match="health: timeout"):
            await saver.ahealth(timeout=timeout)
    finally:
        await saver.aclose()


# -- the rules ---------------------------------------------------------------------------------

versions = st.none() | st.integers(min_value=0, max_value=12)


@given(
    current=versions,
    expected=versions,
    upgrades=st.lists(st.text(min_size=1, max_size=8), max_size=2),
    cluster=st.none() | st.booleans(),
    configured=st.none() | st.booleans(),
)
def test_judge_rules(
    current: int | None, expected: int | None, upgrades: list[str], cluster: bool | None, configured: bool | None
) -> None:
    probe = BackendProbe(
        schema_version=current,
        expected_schema_version=expected,
        pending_upgrades=tuple(upgrades),
        cluster=cluster,
        cluster_configured=configured,
    )
    report = judge("x", probe)
    known = current is not None and expected is not None
    numbered = tuple(range(current + 1, expected + 1)) if known and current < expected else ()  # type: ignore[operator]
    assert report.pending_migrations == (*numbered, *upgrades)
    newer = known and current > expected  # type: ignore[operator]
    mismatch = cluster is not None and configured is not None and cluster != configured
    assert report.ok == (not numbered and not upgrades and not newer and not mismatch)
    assert report.reachable
    assert len(report.problems) == bool(numbered) + len(upgrades) + newer + mismatch
    assert orjson.loads(orjson.dumps(report.as_dict()))["ok"] == report.ok
