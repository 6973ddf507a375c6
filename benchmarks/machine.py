"""Facts about the machine and software a run measured, printed with every report."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from . import savers

PACKAGES = (
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-sqlite",
    "langgraph-checkpoint-postgres",
    "langgraph-checkpoint-redis",
    "aiosqlite",
    "asyncpg",
    "psycopg",
    "redis",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _postgres_version() -> str:
    try:
        version = str(savers._pg_execute("SHOW server_version")[0][0])
        settings = savers._pg_execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('fsync', 'synchronous_commit', 'shared_buffers') ORDER BY name"
        )
        return f"{version} ({', '.join(f'{k}={v}' for k, v in settings)})"
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"


def _redis_version() -> str:
    try:
        import redis

        client = redis.Redis.from_url(savers.REDIS_URL)
        try:
            version = str(client.info("server").get("redis_version", "?"))
        finally:
            client.close()
        modules = savers.redis_modules()
        return f"{version} (modules: {', '.join(modules) if modules else 'none'})"
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"


def postgres_commit_ms(samples: int = 100) -> float | None:
    """Median time of a one-row INSERT committed on its own: the floor under every
    durable checkpoint write (each put and put_writes is a transaction)."""
    import secrets
    import statistics
    import time

    import psycopg

    schema = f"lusbench_floor_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(savers.POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
            try:
                conn.execute(f'CREATE TABLE "{schema}".t (x int)')
                times = []
                for _ in range(samples):
                    start = time.perf_counter()
                    conn.execute(f'INSERT INTO "{schema}".t VALUES (1)')
                    times.append((time.perf_counter() - start) * 1000)
                return round(statistics.median(times), 3)
            finally:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    except Exception:
        return None


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def machine_facts() -> dict[str, Any]:
    packages: dict[str, str] = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "not installed"
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": _sqlite_version(),
        "postgresql": _postgres_version(),
        "redis": _redis_version(),
        "packages": packages,
    }
