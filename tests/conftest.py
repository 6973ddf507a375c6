"""Fixtures every test module may use, and the server markers.

A test that needs PostgreSQL or Redis carries the ``postgres`` or ``redis`` marker, so
``pytest -m "not postgres and not redis"`` runs without servers. Most get it here,
automatically: a test or module named for a server (``test_redis_...``,
``test_postgres_migration.py``), a test parametrized with a server backend (any parameter whose value is
"postgres" or "redis", e.g. the ``backend_name`` of the ``saver`` fixture), or using a
fixture that reaches a server (``SERVER_FIXTURES``). A module whose every test needs a
server says so with ``pytestmark``; the few others carry the marker themselves. Without
``-m`` (as in CI) everything runs, and a server that cannot be reached fails its tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from .redis_servers import start_cluster
from .support import ALL_BACKENDS, POSTGRES_DSN, SERVER_BACKENDS, saver_for

# Fixtures that reach a server (shared or private), and the marker a test using one gets.
SERVER_FIXTURES = {
    "admin": "postgres",
    "pg": "postgres",
    "v1_schema": "postgres",
    "bouncer_dsn": "postgres",
    "private_database": "postgres",
    "private_postgres": "postgres",
    "rsaver": "redis",
    "private_redis": "redis",
    "redis_with_password": "redis",
    "cluster_url": "redis",
    "csaver": "redis",
}


def servers_needed(item: pytest.Item) -> set[str]:
    """The servers ``item`` needs, as far as its name, parameters and fixtures show."""
    needed: set[str] = set()
    # A test or module named for a server: test_postgres_..., test_redis.py.
    for name in (getattr(item, "originalname", item.name), Path(str(item.fspath)).stem):
        needed.update(word for word in name.split("_") if word in SERVER_BACKENDS)
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        needed.update(
            v for v in callspec.params.values() if isinstance(v, str) and v in SERVER_BACKENDS
        )
    for name in getattr(item, "fixturenames", ()):
        if name in SERVER_FIXTURES:
            needed.add(SERVER_FIXTURES[name])
    return needed


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for server in sorted(servers_needed(item)):
            item.add_marker(getattr(pytest.mark, server))


@pytest.fixture(params=ALL_BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def saver(backend_name: str, tmp_path: Path) -> AsyncIterator[UnifiedCheckpointSaver]:
    async with saver_for(backend_name, tmp_path) as made:
        yield made


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A three-node Redis Cluster on loopback ports, shared by the tests that need one
    (none stops its nodes)."""
    servers, url = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield url
    finally:
        servers.stop()


@pytest.fixture
async def admin() -> AsyncIterator[Any]:
    """A plain asyncpg connection to the test database, for looking behind a saver."""
    connection = await asyncpg.connect(POSTGRES_DSN)
    try:
        yield connection
    finally:
        await connection.close()
