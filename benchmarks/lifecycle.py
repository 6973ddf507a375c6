"""The data lifecycle at scale: ``delete_threads`` over many small threads, and a bounded
``MemorySaver`` that many threads pass through.

    python -m benchmarks.lifecycle                      # 100,000 threads on SQLite and PostgreSQL
    python -m benchmarks.lifecycle --quick              # 2,000 threads, seconds
    python -m benchmarks.lifecycle --threads 20000 --backends sqlite --out /tmp/l.json

``delete_threads``: each backend gets a fresh store holding ``--threads`` small threads
(one checkpoint each, a short message of varied text) written "long ago" through an
injected clock, plus a tenth as many recent ones; then one ``delete_threads(older_than=)``
call removes the old ones. Reported: the call's wall time, threads removed per second,
and the peak of this process's resident memory during the call above what it held
before (sampled every 5 ms), i.e. what the client needed to delete them all.

``bounded memory``: 10,000 threads, one checkpoint each, through ``MemorySaver(
max_threads=100)`` and through an unbounded one; the Python heap (tracemalloc) after every
1,000 threads. The bounded saver's stays flat; the unbounded one's grows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import empty_checkpoint

from .chat import _WORDS
from .savers import POSTGRES_DSN

OLD_AGE = 30 * 86_400.0
"""How long ago the old threads were written (the cutoff is half that)."""
WRITE_CONCURRENCY = {"sqlite": 1, "postgres": 8}


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


class PeakRss:
    """The highest resident set size seen while the block runs, sampled on a thread."""

    def __init__(self, every: float = 0.005) -> None:
        self.every = every
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _rss_bytes())
            self._done.wait(self.every)

    def __enter__(self) -> PeakRss:
        self.peak = _rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


async def _put_thread(saver: Any, thread_id: str, rng: random.Random, user: str) -> None:
    checkpoint = empty_checkpoint()
    version = saver.get_next_version(None, None)
    checkpoint["channel_values"] = {"summary": _text(rng, 12)}
    checkpoint["channel_versions"] = {"summary": version}
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    await saver.aput(config, checkpoint, {"source": "input", "step": 0, "user": user}, {"summary": version})


async def _fill(saver: Any, prefix: str, count: int, concurrency: int, seed: int) -> None:
    rng = random.Random(seed)
    for start in range(0, count, concurrency * 50):
        batch = range(start, min(count, start + concurrency * 50))
        if concurrency == 1:
            for n in batch:
                await _put_thread(saver, f"{prefix}-{n:07d}", rng, f"u{n % 97}")
        else:
            queue = list(batch)

            async def worker(queue: list[int] = queue) -> None:
                while queue:
                    n = queue.pop()
                    await _put_thread(saver, f"{prefix}-{n:07d}", rng, f"u{n % 97}")

            await asyncio.gather(*(worker() for _ in range(concurrency)))


def _open(backend: str, folder: Path, clock: Any) -> Any:
    if backend == "sqlite":
        from langgraph_unified_store import SQLiteSaver

        return SQLiteSaver(folder / "lifecycle.sqlite", clock=clock)
    from langgraph_unified_store import PostgresSaver

    schema = f"lusbench_lc_{uuid.uuid4().hex[:8]}"
    return PostgresSaver(POSTGRES_DSN, schema=schema, clock=clock)


async def _drop(saver: Any) -> None:
    drop = getattr(saver.backend, "drop_all", None)
    if drop is not None:
        await drop()
    await saver.aclose()


async def delete_threads_run(backend: str, threads: int, folder: Path) -> dict[str, Any]:
    now = [time.time() - OLD_AGE]
    saver = _open(backend, folder, lambda: now[0])
    try:
        await saver.asetup()
        started = time.perf_counter()
        await _fill(saver, "old", threads, WRITE_CONCURRENCY[backend], 1)
        now[0] = time.time()
        recent = max(1, threads // 10)
        await _fill(saver, "new", recent, WRITE_CONCURRENCY[backend], 2)
        fill_s = time.perf_counter() - started
        gc.collect()
        with PeakRss() as rss:
            before = _rss_bytes()
            started = time.perf_counter()
            removed = await saver.adelete_threads(older_than=OLD_AGE / 2)
            seconds = time.perf_counter() - started
        assert len(removed.thread_ids) == threads, (len(removed.thread_ids), threads)
        left, cursor = 0, None
        while True:
            page = await saver.alist_threads(limit=1_000, cursor=cursor)
            left += len(page.threads)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert left == recent, (left, recent)
        return {
            "threads": threads,
            "kept": recent,
            "fill_seconds": round(fill_s, 1),
            "delete_seconds": round(seconds, 2),
            "threads_per_second": round(threads / seconds),
            "checkpoints_removed": removed.checkpoints,
            "blobs_removed": removed.blobs,
            "client_peak_rss_above_start_mb": round((rss.peak - before) / 2**20, 1),
            "client_rss_before_mb": round(before / 2**20, 1),
        }
    finally:
        await _drop(saver)


async def bounded_memory_run(threads: int = 10_000, bound: int = 100, every: int = 1_000) -> dict[str, Any]:
    from langgraph_unified_store import MemorySaver

    result: dict[str, Any] = {}
    for label, saver in (("max_threads=100", MemorySaver(max_threads=bound)), ("unbounded", MemorySaver())):
        rng = random.Random(3)
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        samples = []
        for n in range(threads):
            await _put_thread(saver, f"t-{n:06d}", rng, f"u{n % 97}")
            if (n + 1) % every == 0:
                gc.collect()
                samples.append(round((tracemalloc.get_traced_memory()[0] - base) / 2**20, 2))
        tracemalloc.stop()
        result[label] = {
            "sample_every_threads": every,
            "heap_mb": samples,
            "threads_kept": len(saver.backend._threads),
        }
        await saver.aclose()
    return result


def _markdown(result: dict[str, Any]) -> str:
    lines = [
        "| backend | threads deleted | kept | delete_threads (s) | threads/s | client peak RSS above start (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for backend, row in result["delete_threads"].items():
        lines.append(
            f"| {backend} | {row['threads']:,} | {row['kept']:,} | {row['delete_seconds']} | "
            f"{row['threads_per_second']:,} | {row['client_peak_rss_above_start_mb']} |"
        )
    lines += ["", "| MemorySaver | heap (MB), sampled every N threads | N | threads kept |", "|---|---|---:|---:|"]
    for label, row in result["bounded_memory"].items():
        heap = ", ".join(map(str, row["heap_mb"]))
        lines.append(f"| {label} | {heap} | {row['sample_every_threads']:,} | {row['threads_kept']:,} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    parser.add_argument("--quick", action="store_true", help="2,000 threads, 2,000 through memory")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    threads = 2_000 if args.quick else args.threads
    result: dict[str, Any] = {"delete_threads": {}}
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backends:
            result["delete_threads"][backend] = asyncio.run(delete_threads_run(backend, threads, Path(folder)))
            print(backend, result["delete_threads"][backend], file=sys.stderr)
    result["bounded_memory"] = asyncio.run(
        bounded_memory_run(2_000 if args.quick else 10_000, every=200 if args.quick else 1_000)
    )
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)
    print(_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
