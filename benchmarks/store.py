"""The long-term memory store: ours next to the official store of each backend, in one run.

    python -m benchmarks.store                        # 10,000 items, 5 repeats, all backends
    python -m benchmarks.store --quick                # 300 items, seconds
    python -m benchmarks.store --backends memory sqlite --out /tmp/store.json
    python -m benchmarks.store --profile sqlite:search_range   # cProfile of ours in that phase

Each backend gets fresh stores (a unique SQLite file, PostgreSQL schema, Redis prefix),
ours and the official one(s), all open at once and filled with the same ``--items``
items of varied text (``abatch`` of 500 puts). Then every phase runs ``--repeats`` times,
the stores taking turns within each repetition (so a noisy neighbour slows both alike):

- ``put``: ``aput`` one at a time (an existing key each, new value), ``--puts`` of them;
- ``get``: ``aget`` of random existing keys, ``--gets`` of them;
- ``search_eq``: ``asearch(("memories",), filter={"kind": "fact", "user": "u7"})``
  (varied users), ``--searches`` of them, over all the items;
- ``search_range``: ``asearch(("memories",), filter={"score": {"$gt": 0.5}})``, as many;
- ``vector``: on stores indexed with a fake 256-dim embedding (``embed``: numpy vectors
  seeded by a hash of each word, summed, the same function for both sides, nothing
  downloads), ``asearch(("docs",), query=...)`` over ``--items`` indexed items,
  ``--vector-searches`` of them (fewer: each ranks every item).

Figures are operations per second from the median phase time. Where a backend's official
store has several documented configurations (AsyncPostgresStore on one connection, in
pipeline mode, on a pool; AsyncSqliteStore as ``from_conn_string`` opens it and with our
journal settings), each runs and the fastest per operation is the baseline. Ratios are
official time / ours: above 1, ours is faster.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import io
import json
import pstats
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from langgraph.store.base import PutOp

from . import savers
from .chat import _WORDS
from .savers import POSTGRES_DSN, REDIS_URL

BACKENDS = ("memory", "sqlite", "postgres", "redis")
PHASES = ("put", "get", "search_eq", "search_range", "vector")
TARGET_PHASES = ("put", "get", "search_eq", "search_range")
TARGET = 1.5
DIMS = 256
KINDS = ("fact", "preference", "event", "task")
USERS = 100
FILL_CHUNK = 500


@dataclass(frozen=True)
class Sizes:
    items: int
    puts: int
    gets: int
    searches: int
    repeats: int
    vector_searches: int


FULL = Sizes(items=10_000, puts=1_000, gets=1_000, searches=200, repeats=5, vector_searches=20)
QUICK = Sizes(items=300, puts=100, gets=100, searches=20, repeats=2, vector_searches=10)


# -- the data --------------------------------------------------------------------------------


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


@cache
def _word_vector(word: str) -> Any:
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng(seed).standard_normal(DIMS)


def embed(texts: list[str]) -> list[list[float]]:
    """A deterministic 256-dim embedding: the sum of each word's seeded vector, normalised,
    so texts sharing words are near. Both sides call exactly this function."""
    vectors = []
    for text in texts:
        total = np.zeros(DIMS)
        for word in text.split():
            total = total + _word_vector(word)
        norm = float(np.linalg.norm(total)) or 1.0
        vectors.append((total / norm).tolist())
    return vectors


INDEX: dict[str, Any] = {"dims": DIMS, "embed": embed, "fields": ["text"]}


def _value(rng: random.Random, n: int) -> dict[str, Any]:
    user = f"u{rng.randrange(USERS)}"
    return {
        "text": _text(rng, rng.randint(12, 30)),
        "kind": rng.choice(KINDS),
        "user": user,
        "score": round(rng.random(), 4),
        "tags": [rng.choice(_WORDS) for _ in range(3)],
        "n": n,
    }


def _key(n: int) -> str:
    return f"item-{n:06d}"


def _namespace(n: int, root: str = "memories") -> tuple[str, ...]:
    return (root, f"group{n % 20}")


@dataclass
class Workload:
    """Every input of every phase, made before any clock starts."""

    sizes: Sizes
    seed: int = 15
    fill: list[PutOp] = field(default_factory=list)
    docs: list[PutOp] = field(default_factory=list)
    puts: list[list[tuple[tuple[str, ...], str, dict[str, Any]]]] = field(default_factory=list)
    gets: list[list[tuple[tuple[str, ...], str]]] = field(default_factory=list)
    eq_filters: list[list[dict[str, Any]]] = field(default_factory=list)
    queries: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        n_items = self.sizes.items
        self.fill = [PutOp(_namespace(n), _key(n), _value(rng, n)) for n in range(n_items)]
        self.docs = [PutOp(_namespace(n, "docs"), _key(n), _value(rng, n)) for n in range(n_items)]
        for rep in range(self.sizes.repeats):
            base = rep * self.sizes.puts
            self.puts.append(
                [
                    (_namespace(m), _key(m), _value(rng, m))
                    for m in ((base + i) % n_items for i in range(self.sizes.puts))
                ]
            )
            self.gets.append(
                [(_namespace(m), _key(m)) for m in (rng.randrange(n_items) for _ in range(self.sizes.gets))]
            )
            self.eq_filters.append(
                [{"kind": "fact", "user": f"u{rng.randrange(USERS)}"} for _ in range(self.sizes.searches)]
            )
            self.queries.append([_text(rng, rng.randint(4, 8)) for _ in range(self.sizes.vector_searches)])
        embed([op.value["text"] for op in self.docs if op.value])  # warm the word vectors


RANGE_FILTER = {"score": {"$gt": 0.5}}


# -- the stores ------------------------------------------------------------------------------


class Unavailable(Exception):
    """This store (or this phase of it) cannot run here; the message says why."""


@dataclass
class Names:
    """Unique names for one run's data on the shared servers, and what to drop after."""

    run: str = field(default_factory=lambda: secrets.token_hex(3))
    folder: Path = Path(".")
    schemas: list[str] = field(default_factory=list)
    count: int = 0

    def next(self, what: str) -> str:
        self.count += 1
        return f"lusbench_store_{self.run}_{what}_{self.count}"

    def schema(self, what: str) -> str:
        name = self.next(what)
        self.schemas.append(name)
        return name

    def drop_schemas(self) -> None:
        for schema in self.schemas:
            savers._pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass(frozen=True)
class Contender:
    key: str
    """``ours`` or ``official`` / ``official:<configuration>``."""
    label: str
    open: Callable[[Names, dict[str, Any] | None], Any]
    """(names, index) -> an async context manager yielding a set-up store."""

    @property
    def ours(self) -> bool:
        return self.key == "ours"


@asynccontextmanager
async def _ours(backend: str, names: Names, index: dict[str, Any] | None) -> AsyncIterator[Any]:
    if backend == "memory":
        from langgraph_unified_store.backends.memory_store import MemoryStore

        store: Any = MemoryStore(index=index)  # type: ignore[arg-type]
    elif backend == "sqlite":
        from langgraph_unified_store.backends.sqlite.store import SQLiteStore

        store = SQLiteStore(names.folder / f"{names.next('ours')}.sqlite", index=index)  # type: ignore[arg-type]
    elif backend == "postgres":
        from langgraph_unified_store.backends.postgres.store import PostgresStore

        store = PostgresStore(POSTGRES_DSN, schema=names.schema("ours"), index=index)  # type: ignore[arg-type]
    else:
        from langgraph_unified_store.backends.redis.store import RedisStore

        store = RedisStore(REDIS_URL, prefix=names.next("ours"), index=index)  # type: ignore[arg-type]
    await store.asetup()
    try:
        yield store
    finally:
        if backend == "redis":
            await store.backend.drop_all()
        await store.aclose()


@asynccontextmanager
async def _official_memory(names: Names, index: dict[str, Any] | None) -> AsyncIterator[Any]:
    from langgraph.store.memory import InMemoryStore

    yield InMemoryStore(index=index)  # type: ignore[arg-type]


def _official_sqlite(journal: bool) -> Callable[[Names, dict[str, Any] | None], Any]:
    @asynccontextmanager
    async def open_store(names: Names, index: dict[str, Any] | None) -> AsyncIterator[Any]:
        from langgraph.store.sqlite.aio import AsyncSqliteStore

        path = str(names.folder / f"{names.next('official')}.sqlite")
        async with AsyncSqliteStore.from_conn_string(path, index=index) as store:  # type: ignore[arg-type]
            if journal:
                await store.conn.execute("PRAGMA journal_mode=WAL")
                await store.conn.execute("PRAGMA synchronous=NORMAL")
            try:
                await store.setup()
            except Exception as exc:
                if index is None:
                    raise
                raise Unavailable(
                    "the official SqliteStore searches vectors with the sqlite-vec extension, and "
                    "this Python's sqlite3 is built without extension loading: setup() fails with "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            yield store

    return open_store


def _official_postgres(how: str) -> Callable[[Names, dict[str, Any] | None], Any]:
    @asynccontextmanager
    async def open_store(names: Names, index: dict[str, Any] | None) -> AsyncIterator[Any]:
        from langgraph.store.postgres.aio import AsyncPostgresStore
        from langgraph.store.postgres.base import PoolConfig

        schema = names.schema("official")
        savers._pg_execute(f'CREATE SCHEMA "{schema}"')
        dsn = f"{POSTGRES_DSN}?options=-csearch_path%3D{schema}"
        options: dict[str, Any] = {"index": index}
        if how == "pipeline":
            options["pipeline"] = True
        elif how == "pool":
            options["pool_config"] = PoolConfig(min_size=1, max_size=4)
        # setup() once on a plain connection: its CREATE INDEX CONCURRENTLY migrations fail
        # inside a pipeline, and the docs have setup() run once, before use.
        async with AsyncPostgresStore.from_conn_string(dsn, index=index) as plain:  # type: ignore[arg-type]
            try:
                await plain.setup()
            except Exception as exc:
                if index is None:
                    raise
                raise Unavailable(
                    "the official PostgresStore indexes vectors with pgvector, which this "
                    f"PostgreSQL lacks: setup() fails with {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0]}"
                ) from exc
        async with AsyncPostgresStore.from_conn_string(dsn, **options) as store:
            yield store

    return open_store


def _redis_official_reason() -> str:
    try:
        modules = savers.redis_modules()
    except Exception as exc:
        return f"Redis unreachable: {exc}"
    try:
        __import__("langgraph.store.redis")
        installed = "installed"
    except ImportError:
        installed = "not installed here"
    return (
        "the official RedisStore (langgraph-checkpoint-redis, "
        f"{installed}) needs the RedisJSON and RediSearch modules; this server has "
        f"{', '.join(modules) if modules else 'none'} (MODULE LIST)"
    )


def contenders(backend: str) -> list[Contender]:
    def ours(names: Names, index: dict[str, Any] | None) -> Any:
        return _ours(backend, names, index)

    labels = {"memory": "MemoryStore", "sqlite": "SQLiteStore", "postgres": "PostgresStore", "redis": "RedisStore"}
    found = [Contender("ours", labels[backend], ours)]
    if backend == "memory":
        found.append(Contender("official", "InMemoryStore", _official_memory))
    elif backend == "sqlite":
        found.append(Contender("official", "AsyncSqliteStore (from_conn_string)", _official_sqlite(False)))
        found.append(
            Contender(
                "official:wal",
                "AsyncSqliteStore + WAL, synchronous=NORMAL (our defaults)",
                _official_sqlite(True),
            )
        )
    elif backend == "postgres":
        found.append(Contender("official", "AsyncPostgresStore (one connection)", _official_postgres("plain")))
        found.append(
            Contender("official:pipeline", "AsyncPostgresStore (pipeline=True)", _official_postgres("pipeline"))
        )
        found.append(Contender("official:pool", "AsyncPostgresStore (pool, 1-4)", _official_postgres("pool")))
    return found


def check_backend(backend: str) -> None:
    try:
        if backend in ("postgres", "redis"):
            savers.check_available(savers.SPECS[backend])
    except savers.Unavailable as exc:
        raise Unavailable(str(exc)) from exc


# -- the phases ------------------------------------------------------------------------------


async def _fill(store: Any, ops: list[PutOp]) -> float:
    started = time.perf_counter()
    for start in range(0, len(ops), FILL_CHUNK):
        await store.abatch(ops[start : start + FILL_CHUNK])
    return time.perf_counter() - started


def _phase(name: str, work: Workload, rep: int) -> Callable[[Any], Awaitable[int]]:
    """The coroutine function of one repetition of a phase; returns how many ops it did."""

    async def put(store: Any) -> int:
        for namespace, key, value in work.puts[rep]:
            await store.aput(namespace, key, value)
        return len(work.puts[rep])

    async def get(store: Any) -> int:
        for namespace, key in work.gets[rep]:
            if await store.aget(namespace, key) is None:
                raise AssertionError(f"{namespace}/{key} missing")
        return len(work.gets[rep])

    async def search_eq(store: Any) -> int:
        for wanted in work.eq_filters[rep]:
            for item in await store.asearch(("memories",), filter=wanted, limit=10):
                assert item.value["kind"] == "fact" and item.value["user"] == wanted["user"]
        return len(work.eq_filters[rep])

    async def search_range(store: Any) -> int:
        for _ in range(work.sizes.searches):
            found = await store.asearch(("memories",), filter=RANGE_FILTER, limit=10)
            assert len(found) == 10 and all(i.value["score"] > 0.5 for i in found)
        return work.sizes.searches

    async def vector(store: Any) -> int:
        for query in work.queries[rep]:
            found = await store.asearch(("docs",), query=query, limit=10)
            assert len(found) == 10 and found[0].score is not None
        return len(work.queries[rep])

    return {"put": put, "get": get, "search_eq": search_eq, "search_range": search_range, "vector": vector}[name]


async def _timed(operation: Callable[[Any], Awaitable[int]], store: Any) -> tuple[int, float]:
    started = time.perf_counter()
    ops = await operation(store)
    return ops, time.perf_counter() - started


def _profile_text(profile: cProfile.Profile, lines: int = 25) -> str:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).strip_dirs().sort_stats("cumulative").print_stats(lines)
    return out.getvalue()


async def _run_phases(
    phases: tuple[str, ...],
    stores: dict[str, Any],
    work: Workload,
    profile_phases: list[str],
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """ops/s (median of the repetitions) per phase and contender, and a profile of ours."""
    samples: dict[str, dict[str, list[float]]] = {p: {k: [] for k in stores} for p in phases}
    ops_done: dict[str, int] = {}
    profiles: dict[str, str] = {}
    for phase in phases:
        for rep in range(work.sizes.repeats):
            operation = _phase(phase, work, rep)
            order = list(stores) if rep % 2 == 0 else list(reversed(stores))
            for key in order:
                ops, seconds = await _timed(operation, stores[key])
                samples[phase][key].append(seconds)
                ops_done[phase] = ops
        if phase in profile_phases:
            profile = cProfile.Profile()
            profile.enable()
            await _phase(phase, work, 0)(stores["ours"])
            profile.disable()
            profiles[phase] = _profile_text(profile)
    figures = {
        phase: {key: ops_done[phase] / statistics.median(times) for key, times in by_key.items()}
        for phase, by_key in samples.items()
    }
    return figures, profiles


async def measure_backend(
    backend: str, work: Workload, folder: Path, profile_phases: list[str] | None = None
) -> dict[str, Any]:
    """Every phase of every contender of one backend (see the module docstring)."""
    names = Names(folder=folder)
    found = contenders(backend)
    result: dict[str, Any] = {
        "stores": {c.key: {"label": c.label, "ops_per_s": {}} for c in found},
        "unavailable": {},
        "profiles": {},
    }
    if backend == "redis":
        result["unavailable"]["official"] = _redis_official_reason()
    try:
        for indexed, phases in ((False, TARGET_PHASES), (True, ("vector",))):
            async with AsyncExitStack() as stack:
                stores: dict[str, Any] = {}
                for contender in found:
                    try:
                        stores[contender.key] = await stack.enter_async_context(
                            contender.open(names, INDEX if indexed else None)
                        )
                    except Unavailable as exc:
                        result["unavailable"].setdefault(f"{contender.key} vector", str(exc))
                for key, store in stores.items():
                    seconds = await _fill(store, work.docs if indexed else work.fill)
                    result["stores"][key]["fill_indexed_s" if indexed else "fill_s"] = round(seconds, 3)
                figures, profiles = await _run_phases(phases, stores, work, profile_phases or [])
                for phase, by_key in figures.items():
                    for key, rate in by_key.items():
                        result["stores"][key]["ops_per_s"][phase] = round(rate, 1)
                result["profiles"].update(profiles)
            print(f"[store] {backend} {'vector' if indexed else 'plain'} done", file=sys.stderr)
    finally:
        names.drop_schemas()
    result["baseline"] = _baseline(result["stores"])
    ours = result["stores"]["ours"]["ops_per_s"]
    result["ratios"] = {
        phase: round(ours[phase] / result["baseline"][phase]["ops_per_s"], 2)
        if phase in ours and phase in result["baseline"] and result["baseline"][phase]["ops_per_s"]
        else None
        for phase in PHASES
    }
    return result


def _baseline(stores: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The fastest official configuration per phase."""
    best: dict[str, dict[str, Any]] = {}
    for key, store in stores.items():
        if key == "ours":
            continue
        for phase, rate in store["ops_per_s"].items():
            if phase not in best or rate > best[phase]["ops_per_s"]:
                best[phase] = {"ops_per_s": rate, "store": key}
    return best


# -- the report ------------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for backend, result in results.items():
        for phase in TARGET_PHASES:
            ratio = result.get("ratios", {}).get(phase)
            verdict = "not measured" if ratio is None else ("met" if ratio >= TARGET else "missed")
            found.append({"backend": backend, "phase": phase, "ratio": ratio, "verdict": verdict})
    return found


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "langgraph_unified_store"], capture_output=True,
            text=True, cwd=Path(__file__).parent,
        ).stdout.strip()
        return out.stdout.strip() + (" (library code modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| backend | op | ours (ops/s) | official (ops/s) | official store | official / ours time |",
        "|---|---|---:|---:|---|---:|",
    ]
    reasons: list[str] = []
    for backend, result in report["backends"].items():
        if "reason" in result:
            lines.append(f"| {backend} | - | - | - | {result['reason']} | - |")
            continue
        ours = result["stores"]["ours"]["ops_per_s"]
        for phase in PHASES:
            base = result["baseline"].get(phase)
            if base is None:
                reason = result["unavailable"].get("official vector") or result["unavailable"].get(
                    "official", "unavailable"
                )
                if reason not in reasons:
                    reasons.append(reason)
                official, label, ratio = "-", f"unavailable ({reasons.index(reason) + 1})", "-"
            else:
                official = _rate(base["ops_per_s"])
                label = result["stores"][base["store"]]["label"]
                ratio = f"{result['ratios'][phase]:.2f}x"
            lines.append(f"| {backend} | {phase} | {_rate(ours.get(phase))} | {official} | {label} | {ratio} |")
    lines += [""] + [f"({n}) {reason}" for n, reason in enumerate(reasons, 1)]
    lines += ["", "| backend | op | ratio | target | verdict |", "|---|---|---:|---:|---|"]
    for target in report["targets"]:
        ratio = "-" if target["ratio"] is None else f"{target['ratio']:.2f}x"
        lines.append(f"| {target['backend']} | {target['phase']} | {ratio} | >= {TARGET}x | {target['verdict']} |")
    lines += ["", "Every configuration measured (ops/s):", ""]
    lines += ["| backend | store | " + " | ".join(PHASES) + " | fill s (plain / indexed) |"]
    lines += ["|---|---|" + "---:|" * len(PHASES) + "---|"]
    for backend, result in report["backends"].items():
        for store in result.get("stores", {}).values():
            cells = " | ".join(_rate(store["ops_per_s"].get(p)) for p in PHASES)
            fills = f"{store.get('fill_s', '-')} / {store.get('fill_indexed_s', '-')}"
            lines.append(f"| {backend} | {store['label']} | {cells} | {fills} |")
    return "\n".join(lines)


async def run(backends: list[str], sizes: Sizes, profile: dict[str, list[str]]) -> dict[str, Any]:
    work = Workload(sizes)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lusbench_store_") as folder:
        for backend in backends:
            try:
                check_backend(backend)
                results[backend] = await measure_backend(backend, work, Path(folder), profile.get(backend))
            except Unavailable as exc:
                results[backend] = {"reason": str(exc).replace("|", "/")}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="300 items, 100 puts/gets, 20 (10 vector) searches, 2 repeats"
    )
    parser.add_argument("--items", type=int, default=FULL.items)
    parser.add_argument("--puts", type=int, default=FULL.puts)
    parser.add_argument("--gets", type=int, default=FULL.gets)
    parser.add_argument("--searches", type=int, default=FULL.searches)
    parser.add_argument("--repeats", type=int, default=FULL.repeats)
    parser.add_argument(
        "--vector-searches", type=int, default=FULL.vector_searches,
        help="each ranks every item, ~0.3 s on 10,000 items even in memory",
    )
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument(
        "--profile", action="append", default=[], metavar="BACKEND:PHASE",
        help="after the phase's repetitions, run it once more under cProfile (ours only)",
    )
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes(
        args.items, args.puts, args.gets, args.searches, args.repeats, args.vector_searches
    )
    profile: dict[str, list[str]] = {}
    for wanted in args.profile:
        backend, _, phase = wanted.partition(":")
        if backend not in BACKENDS or phase not in PHASES:
            parser.error(f"--profile {wanted!r}: BACKEND:PHASE, one of {BACKENDS} and {PHASES}")
        profile.setdefault(backend, []).append(phase)
    started = time.perf_counter()
    results = asyncio.run(run(args.backends, sizes, profile))
    report: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "command": "python -m benchmarks.store " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": _commit(),
        "sizes": sizes.__dict__,
        "seconds": round(time.perf_counter() - started, 1),
        "backends": results,
        "targets": targets(results),
    }
    for backend, result in results.items():
        for phase, text in result.get("profiles", {}).items():
            print(f"## cProfile: ours, {backend} {phase}\n{text}")
    text = markdown(report)
    print(text)
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
