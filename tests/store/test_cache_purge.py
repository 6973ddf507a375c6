"""Expired node-cache entries never pile up: BaseCache has no sweep, so a set removes
the entries expired by then (Redis: each read removes a bounded number first)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from langgraph_unified_store.registry import backend_named

from ..support import ALL_BACKENDS, POSTGRES_DSN, REDIS_URL, SERVER_URLS, unique

BACKENDS = [
    pytest.param(name, marks=[getattr(pytest.mark, name)] if name in SERVER_URLS else [])
    for name in ALL_BACKENDS
]


def _cache(backend: str, tmp_path: Path, clock: Any) -> tuple[Any, str]:
    entry = backend_named(backend)
    cls = entry.cache_class()
    if backend == "memory":
        return cls(clock=clock), ""
    if backend == "sqlite":
        path = str(tmp_path / "cache.db")
        return cls(path, clock=clock), path
    place = unique("lus_cache")
    assert entry.namespace_option is not None
    return cls(SERVER_URLS[backend], **{entry.namespace_option: place}, clock=clock), place


async def _stored(backend: str, cache: Any, place: str) -> int:
    if backend == "memory":
        return len(cache.backend._cache)
    if backend == "sqlite":
        with sqlite3.connect(place) as db:
            return int(db.execute("SELECT count(*) FROM node_cache").fetchone()[0])
    if backend == "postgres":
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            return int(await conn.fetchval(f"SELECT count(*) FROM {place}.lus_node_cache"))
        finally:
            await conn.close()
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return int(await client.hlen(f"{place}:{{cache}}:entries"))
    finally:
        await client.aclose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_expired_entries_do_not_pile_up(backend: str, tmp_path: Path) -> None:
    now = [1_000_000.0]
    cache, place = _cache(backend, tmp_path, lambda: now[0])
    try:
        await cache.aset({(("node",), f"k{n}"): ({"n": n}, 10) for n in range(20)})
        await cache.aset({(("node",), "forever"): ({"n": -1}, None)})
        assert await _stored(backend, cache, place) == 21
        now[0] += 11
        assert await cache.aget([(("node",), "k0")]) == {}
        await cache.aset({(("other",), "fresh"): ({"n": 0}, 10)})
        assert await _stored(backend, cache, place) == 2
        assert await cache.aget([(("node",), "forever"), (("other",), "fresh")]) == {
            (("node",), "forever"): {"n": -1},
            (("other",), "fresh"): {"n": 0},
        }
    finally:
        drop = getattr(cache.backend, "drop_all", None)
        if drop is not None:
            await drop()
        await cache.aclose()
