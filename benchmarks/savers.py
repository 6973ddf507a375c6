"""How the benchmark opens, measures and cleans up each saver, ours and the official ones.

Every workload phase gets a fresh *store* (its own SQLite file, Postgres schema or Redis
key prefix), so one phase's data never slows or inflates another's figures. All names
start with ``lusbench_<run id>`` so the runner can sweep leftovers of its own run.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POSTGRES_DSN = os.environ.get("LUS_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ("memory", "sqlite", "postgres", "redis")


class Unavailable(Exception):
    """This saver cannot run here; the message says why (shown in the report's row)."""


@dataclass
class Store:
    """Where one phase keeps its data: a name that is unique in this run, and a folder."""

    name: str
    folder: Path

    @property
    def sqlite_path(self) -> Path:
        return self.folder / f"{self.name}.sqlite"


@dataclass(frozen=True)
class SaverSpec:
    key: str
    backend: str
    ours: bool
    label: str
    async_label: str
    sync_label: str

    @property
    def baseline_key(self) -> str:
        """The saver this one is compared with (RedisSaver: our PostgresSaver)."""
        if self.ours:
            return "postgres" if self.backend == "redis" else f"official-{self.backend}"
        return self.key


SPECS: dict[str, SaverSpec] = {
    spec.key: spec
    for spec in (
        SaverSpec("memory", "memory", True, "MemorySaver", "MemorySaver", "MemorySaver"),
        SaverSpec("sqlite", "sqlite", True, "SQLiteSaver", "SQLiteSaver", "SQLiteSaver"),
        SaverSpec("postgres", "postgres", True, "PostgresSaver", "PostgresSaver", "PostgresSaver"),
        SaverSpec("redis", "redis", True, "RedisSaver", "RedisSaver", "RedisSaver"),
        SaverSpec(
            "official-memory",
            "memory",
            False,
            "InMemorySaver (official)",
            "InMemorySaver",
            "InMemorySaver",
        ),
        SaverSpec(
            "official-sqlite",
            "sqlite",
            False,
            "AsyncSqliteSaver / SqliteSaver (official)",
            "AsyncSqliteSaver",
            "SqliteSaver",
        ),
        SaverSpec(
            "official-postgres",
            "postgres",
            False,
            "AsyncPostgresSaver / PostgresSaver (official)",
            "AsyncPostgresSaver",
            "PostgresSaver",
        ),
        SaverSpec(
            "official-redis",
            "redis",
            False,
            "AsyncRedisSaver / RedisSaver (official)",
            "AsyncRedisSaver",
            "RedisSaver",
        ),
    )
}


def specs_for(backends: list[str]) -> list[SaverSpec]:
    """Each of ours next to the official saver of its backend."""
    chosen = [s for s in SPECS.values() if s.backend in backends]
    return sorted(chosen, key=lambda s: (BACKENDS.index(s.backend), not s.ours))


# -- availability ----------------------------------------------------------------------------


def _our_class(backend: str) -> Any:
    try:
        entry = importlib.import_module("langgraph_unified_store.registry").backend_named(backend)
        return entry.saver_class()
    except Exception as exc:  # a saver still being written fails in many ways
        raise Unavailable(
            f"loading our {backend} saver failed: {type(exc).__name__}: {exc}"
        ) from exc


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def redis_modules() -> list[str]:
    """Names of the modules loaded in the Redis server (empty on plain Redis)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return [_text(m.get(b"name", m.get("name", "?"))) for m in client.module_list()]
    finally:
        client.close()


def check_available(spec: SaverSpec) -> None:
    """Raise ``Unavailable`` with the reason when ``spec`` cannot run on this machine."""
    if spec.ours:
        _our_class(spec.backend)
    if spec.backend == "postgres":
        import psycopg

        try:
            psycopg.connect(POSTGRES_DSN, connect_timeout=5).close()
        except Exception as exc:
            raise Unavailable(f"PostgreSQL at {POSTGRES_DSN} unreachable: {exc}") from exc
    if spec.backend == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
        try:
            version = client.info("server").get("redis_version", "?")
        except Exception as exc:
            raise Unavailable(f"Redis at {REDIS_URL} unreachable: {exc}") from exc
        finally:
            client.close()
        if spec.key == "official-redis":
            modules = redis_modules()
            missing = [m for m in ("ReJSON", "search") if m not in modules]
            if missing:
                raise Unavailable(
                    f"the official saver (langgraph-checkpoint-redis) needs the RedisJSON and "
                    f"RediSearch modules; this Redis {version} server has "
                    f"{', '.join(modules) if modules else 'no modules'} (MODULE LIST), "
                    f"so JSON.SET and FT.CREATE fail"
                )
            try:
                importlib.import_module("langgraph.checkpoint.redis")
            except ImportError as exc:
                raise Unavailable(
                    "the server has the modules, but langgraph-checkpoint-redis is not installed"
                ) from exc


# -- opening savers ----------------------------------------------------------------------------


def _pg_kwargs(schema: str) -> dict[str, Any]:
    from psycopg.rows import dict_row

    # What the official savers require of a connection, plus our own schema.
    return {
        "autocommit": True,
        "prepare_threshold": 0,
        "row_factory": dict_row,
        "options": f"-c search_path={schema}",
    }


def _pg_execute(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        cursor = conn.execute(sql, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def _our_saver(spec: SaverSpec, store: Store) -> Any:
    cls = _our_class(spec.backend)
    if spec.backend == "memory":
        return cls()
    if spec.backend == "sqlite":
        return cls(store.sqlite_path)
    from langgraph_unified_store.registry import backend_named

    # The option that keeps this store's data apart on the shared server (schema, prefix).
    isolate = backend_named(spec.backend).namespace_option
    assert isolate is not None
    return cls(POSTGRES_DSN if spec.backend == "postgres" else REDIS_URL, **{isolate: store.name})


@asynccontextmanager
async def open_async(spec: SaverSpec, store: Store) -> AsyncIterator[Any]:
    """The saver for ``ainvoke`` and single operations, set up and closed afterwards."""
    if spec.ours:
        saver = _our_saver(spec, store)
        await saver.asetup()
        try:
            yield saver
        finally:
            await saver.aclose()
        return
    if spec.backend == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver()
    elif spec.backend == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(str(store.sqlite_path)) as saver:
            await saver.setup()
            yield saver
    elif spec.backend == "postgres":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg_pool import AsyncConnectionPool

        _pg_execute(f'CREATE SCHEMA IF NOT EXISTS "{store.name}"')
        # A pool as large as the busiest workload, so the saver is not starved of connections.
        async with AsyncConnectionPool(
            POSTGRES_DSN, kwargs=_pg_kwargs(store.name), min_size=1, max_size=8, open=False
        ) as pool:
            saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
            await saver.setup()
            yield saver
    else:
        from langgraph.checkpoint.redis.aio import AsyncRedisSaver

        async with AsyncRedisSaver.from_conn_string(REDIS_URL) as saver:
            await saver.asetup()
            yield saver


@contextmanager
def open_sync(spec: SaverSpec, store: Store) -> Iterator[Any]:
    """The saver for ``invoke``: ours through its blocking API, the official sync classes."""
    if spec.ours:
        saver = _our_saver(spec, store)
        saver.setup()
        try:
            yield saver
        finally:
            saver.close()
        return
    if spec.backend == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver()
    elif spec.backend == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(str(store.sqlite_path), check_same_thread=False)
        try:
            saver = SqliteSaver(conn)
            saver.setup()
            yield saver
        finally:
            conn.close()
    elif spec.backend == "postgres":
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg_pool import ConnectionPool

        _pg_execute(f'CREATE SCHEMA IF NOT EXISTS "{store.name}"')
        with ConnectionPool(
            POSTGRES_DSN, kwargs=_pg_kwargs(store.name), min_size=1, max_size=8, open=True
        ) as pool:
            saver = PostgresSaver(pool)  # type: ignore[arg-type]
            saver.setup()
            yield saver
    else:
        from langgraph.checkpoint.redis import RedisSaver

        with RedisSaver.from_conn_string(REDIS_URL) as saver:
            saver.setup()
            yield saver


# -- measuring storage --------------------------------------------------------------------------


def payload_bytes(*roots: Any) -> int:
    """Bytes of every ``bytes`` and ``str`` reachable in an in-process saver's storage.

    Containers and byte strings shared between structures are counted once; each string
    occurrence (keys, ids, type tags) is counted, as it is what a record costs to keep.
    """
    seen: set[int] = set()
    total = 0
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if isinstance(obj, str):
            total += len(obj.encode())
            continue
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (bytes, bytearray, memoryview)):
            total += len(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            stack.extend(getattr(obj, f.name) for f in dataclasses.fields(obj))
    return total


def _memory_roots(spec: SaverSpec, saver: Any) -> list[Any]:
    if spec.ours:
        backend = saver.backend
        # Everything the backend keeps, but not its lock or other plumbing.
        return [v for v in vars(backend).values() if isinstance(v, (dict, list, tuple))]
    return [saver.storage, saver.writes, saver.blobs]


def _sqlite_bytes(path: Path) -> int:
    if path.exists():
        try:
            conn = sqlite3.connect(str(path), timeout=5)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
        except sqlite3.Error:
            pass  # still counted below, WAL included
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")]
    return sum(f.stat().st_size for f in files if f.exists())


def _postgres_bytes(schema: str) -> int:
    rows = _pg_execute(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'm', 'p')",
        (schema,),
    )
    return int(rows[0][0])


def _redis_keys(client: Any, pattern: str) -> list[bytes]:
    return list(client.scan_iter(match=pattern, count=1000))


def _redis_bytes(pattern: str) -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return sum(
            int(client.memory_usage(k, samples=0) or 0) for k in _redis_keys(client, pattern)
        )
    finally:
        client.close()


def storage_detail(spec: SaverSpec, store: Store) -> dict[str, int]:
    """Where a store's bytes are: per table (and index) or per kind of key, largest first."""
    detail: dict[str, int] = {}
    if spec.backend == "sqlite" and store.sqlite_path.exists():
        conn = sqlite3.connect(str(store.sqlite_path))
        try:
            rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.Error:
            rows = []  # SQLite built without dbstat
        finally:
            conn.close()
        detail = {str(name): int(size) for name, size in rows}
    elif spec.backend == "postgres":
        rows = _pg_execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'm', 'p')",
            (store.name,),
        )
        detail = {str(name): int(size) for name, size in rows}
    elif spec.backend == "redis" and spec.ours:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            for key in _redis_keys(client, f"*{store.name}*"):
                # <prefix>:{t<tag>}:<kind>: group by kind, whatever the thread.
                text = key.decode(errors="replace")[len(store.name) :]
                kind = text.rsplit("}", 1)[-1] if "}" in text else text
                group = f"{kind} ({_text(client.type(key))})"
                size = int(client.memory_usage(key, samples=0) or 0)
                detail[group] = detail.get(group, 0) + size
        finally:
            client.close()
    return dict(sorted(detail.items(), key=lambda kv: kv[1], reverse=True))


def storage_bytes(spec: SaverSpec, store: Store, saver: Any) -> tuple[int, str]:
    """The bytes a store holds, and how they were measured (for the report)."""
    if spec.backend == "memory":
        return payload_bytes(*_memory_roots(spec, saver)), "bytes/str payload of stored records"
    if spec.backend == "sqlite":
        return _sqlite_bytes(store.sqlite_path), "database file + WAL after a TRUNCATE checkpoint"
    if spec.backend == "postgres":
        return _postgres_bytes(store.name), "pg_total_relation_size of the schema's tables"
    if spec.ours:
        return _redis_bytes(f"*{store.name}*"), "sum of MEMORY USAGE of the prefix's keys"
    return _redis_bytes("checkpoint*"), "sum of MEMORY USAGE of checkpoint* keys"


# -- cleaning up --------------------------------------------------------------------------------


async def drop_store(spec: SaverSpec, store: Store, thread_ids: list[str]) -> None:
    """Remove what a phase stored: ours through ``drop_all``, the official Redis saver
    thread by thread (its keys have no prefix of ours), then a sweep by name."""
    if spec.backend in ("memory", "sqlite"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(store.sqlite_path) + suffix).unlink(missing_ok=True)
        return
    if spec.ours:
        saver = _our_saver(spec, store)
        try:
            drop_all: Callable[[], Any] | None = getattr(saver.backend, "drop_all", None)
            if drop_all is not None:
                await drop_all()
        finally:
            await saver.aclose()
    elif spec.backend == "redis":
        async with open_async(spec, store) as official:
            for thread_id in thread_ids:
                await official.adelete_thread(thread_id)
    sweep_store(spec.backend, store.name)


def sweep_store(backend: str, name: str) -> None:
    """Delete a store by name alone (also used for a whole run's leftovers via a LIKE prefix)."""
    if backend == "postgres":
        _pg_execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    elif backend == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = _redis_keys(client, f"*{name}*")
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
        finally:
            client.close()


def sweep_run(run_id: str) -> int:
    """Drop every schema and key of this benchmark run; returns how many were left over."""
    prefix = f"lusbench_{run_id}_"
    left = 0
    try:
        schemas = _pg_execute(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix,)
        )
        for (schema,) in schemas:
            sweep_store("postgres", schema)
        left += len(schemas)
    except Exception:
        pass
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = _redis_keys(client, f"*{prefix}*")
        finally:
            client.close()
        left += len(keys)
        sweep_store("redis", prefix)
    except Exception:
        pass
    return left
