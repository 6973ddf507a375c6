"""The long-term memory store and node cache suite: every backend, built through the
registry (``store_class`` / ``cache_class`` with the backend's location option, as
``tests.support.open_saver`` builds savers), held to LangGraph's ``InMemoryStore`` and
``InMemoryCache`` where our rules agree with theirs (``core.store_rules``).

``Place`` is one isolated location on a backend (its own SQLite file, PostgreSQL schema
or Redis key prefix; memory has none, so every store of a memory place is its own);
what a test stored there is dropped from the server afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from langgraph_unified_store.registry import backend_named

from ..support import ALL_BACKENDS, POSTGRES_DSN, REDIS_URL, SERVER_URLS, unique

BACKENDS = [
    pytest.param(name, marks=[getattr(pytest.mark, name)] if name in ("postgres", "redis") else [])
    for name in ALL_BACKENDS
]
ON_A_LOCATION = [param for param in BACKENDS if param.values[0] != "memory"]
"""The backends whose stores open a location (a file, a schema, a prefix) that several
stores can share; memory's store is its own place."""

START = 1_700_000_000.0
"""Where every test clock starts (whole seconds: every backend stores them exactly)."""

DIMS = 16


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fake_vector(text: str, dims: int = DIMS) -> list[float]:
    """A deterministic embedding of ``text``: floats in [-1, 1) from its SHA-256."""
    out: list[float] = []
    counter = 0
    while len(out) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend((n / 2**31) - 1.0 for n in struct.unpack(">8I", digest))
        counter += 1
    return out[:dims]


def fake_embed(texts: Sequence[str]) -> list[list[float]]:
    return [fake_vector(text) for text in texts]


@dataclass
class Place:
    """One isolated location on a backend, and how to open its store and cache."""

    backend: str
    location: str | None
    opened: list[Any] = field(default_factory=list)

    def _open(self, make: str, options: dict[str, Any]) -> Any:
        entry = backend_named(self.backend)
        cls = getattr(entry, make)()
        if entry.namespace_option is not None:
            made = cls(SERVER_URLS[self.backend], **{entry.namespace_option: self.location}, **options)
        elif entry.conn_of_url is not None:
            made = cls(self.location, **options)
        else:
            made = cls(**options)
        self.opened.append(made)
        return made

    def store(self, **options: Any) -> Any:
        """A store on this place (``index``, ``ttl``, ``clock`` ...)."""
        return self._open("store_class", options)

    def cache(self, **options: Any) -> Any:
        """A node cache on this place (``serde``, ``clock`` ...)."""
        return self._open("cache_class", options)

    def url(self) -> str:
        """The URL ``create_store`` / ``create_cache`` take for this place's server or file."""
        if self.backend == "memory":
            return "memory://"
        if self.backend == "sqlite":
            return f"sqlite:///{self.location}"
        return SERVER_URLS[self.backend]

    def location_options(self) -> dict[str, Any]:
        """The keyword option that points a store at this place (none for a file or memory)."""
        option = backend_named(self.backend).namespace_option
        return {} if option is None else {option: self.location}

    def conn(self) -> Any:
        """What ``from_conn_string`` takes: the file path or the server URL."""
        return self.location if self.backend == "sqlite" else self.url()

    def drop(self) -> None:
        """Close what a test left open, then remove what was stored on a server."""
        for made in self.opened:
            with contextlib.suppress(Exception):  # a store the test used on its own loop
                made.close()
        if self.backend == "postgres":
            asyncio.run(_drop_schema(str(self.location)))
        elif self.backend == "redis":
            _drop_prefix(str(self.location))


async def _drop_schema(schema: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_DSN)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


def _drop_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start : start + 500])
    finally:
        client.close()


def new_place(backend: str, directory: Path) -> Place:
    """A fresh, isolated place on ``backend`` (``unique`` names: alphanumerics and '_')."""
    if backend == "memory":
        return Place(backend, None)
    if backend == "sqlite":
        return Place(backend, str(directory / f"{unique('store')}.sqlite"))
    return Place(backend, unique("lus_store_test"))


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def place(backend_name: str, tmp_path: Path) -> Iterator[Place]:
    made = new_place(backend_name, tmp_path)
    try:
        yield made
    finally:
        made.drop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
