"""Child process of the close-under-load test: rounds of closing a saver while 3-8
writers (blocking threads, asyncio tasks, or both) are in the middle of calls.

Usage: python -m tests.reliability.close_child BACKEND LOCATION ROUNDS SEED

A crash (SIGSEGV) or a hang kills or stalls only this process, which the test sees.
Each round, every writer loops put / put_writes / get_tuple / list on its own thread
until the saver refuses it; close comes from the main thread, a worker thread, another
task, or two closers at once, with ``close_timeout`` 0 (cut every call in flight short)
or the default. Then the round checks, with a fresh saver and raw reads:

- every writer ended with ``SaverClosedError`` (no other exception, no hang);
- every call after close raises ``SaverClosedError`` naming the saver and the method;
- every acknowledged checkpoint and write is stored whole, and every stored checkpoint
  reads back exactly (nothing half-written), and storage holds no checkpoint list() hides;
- no I/O thread or aiosqlite thread is left running, and asyncio logged no error
  ("Task was destroyed but it is pending", "Event loop is closed"...) and no warning
  (unclosed transport, coroutine never awaited) was raised.

Prints one JSON line: per round, the mode and what each writer saw acknowledged.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import random
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from langgraph_unified_store import SaverClosedError
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import config_for, open_saver
from . import raw
from .workload import (
    Acked,
    metadata_for,
    next_checkpoint,
    verify_chain,
    writes_after,
)

JOIN_TIMEOUT = 60.0
MODES = ("sync", "async", "mixed")

problems: list[str] = []


class _Recorder(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        problems.append(f"log {record.name}: {record.getMessage()}")


def _on_warning(message: Any, category: Any, filename: str, lineno: int, *_: Any) -> None:
    problems.append(f"warning {category.__name__}: {message} ({filename}:{lineno})")


def _on_unraisable(info: Any) -> None:
    problems.append(f"unraisable {info.exc_type.__name__}: {info.exc_value} in {info.object!r}")


def _closed(exc: BaseException) -> bool:
    return isinstance(exc, SaverClosedError)


class Writer:
    """One writer's chain on its own LangGraph thread, until the saver is closed."""

    def __init__(self, saver: UnifiedCheckpointSaver, thread_id: str) -> None:
        self.saver = saver
        self.thread_id = thread_id
        self.acked = Acked()
        self.ended: BaseException | None = None

    def run_sync(self) -> None:
        saver, previous, step = self.saver, None, 0
        try:
            while True:
                checkpoint, versions = next_checkpoint(saver, previous, step)
                parent = previous["id"] if previous else None
                config = saver.put(
                    config_for(self.thread_id, parent), checkpoint, metadata_for(step, "w"), versions
                )
                self.acked.checkpoint(checkpoint["id"])
                saver.put_writes(config, writes_after(step), task_id=f"task-{step}")
                self.acked.write(checkpoint["id"])
                assert saver.get_tuple(config) is not None
                assert len(list(saver.list(config_for(self.thread_id), limit=2))) >= 1
                previous, step = checkpoint, step + 1
        except BaseException as exc:
            self.ended = exc

    async def run_async(self) -> None:
        saver, previous, step = self.saver, None, 0
        try:
            while True:
                checkpoint, versions = next_checkpoint(saver, previous, step)
                parent = previous["id"] if previous else None
                config = await saver.aput(
                    config_for(self.thread_id, parent), checkpoint, metadata_for(step, "w"), versions
                )
                self.acked.checkpoint(checkpoint["id"])
                await saver.aput_writes(config, writes_after(step), task_id=f"task-{step}")
                self.acked.write(checkpoint["id"])
                assert await saver.aget_tuple(config) is not None
                assert len([t async for t in saver.alist(config_for(self.thread_id), limit=2)]) >= 1
                previous, step = checkpoint, step + 1
                await asyncio.sleep(0)  # an in-process saver never suspends: let others run
        except BaseException as exc:
            self.ended = exc


def _after_close_calls(saver: UnifiedCheckpointSaver) -> list[tuple[str, Callable[[], Any]]]:
    config = config_for("after-close", "1")
    checkpoint, versions = next_checkpoint(saver, None, 0)
    return [
        ("get_tuple", lambda: saver.get_tuple(config)),
        ("list", lambda: list(saver.list(config))),
        ("put", lambda: saver.put(config, checkpoint, {}, versions)),
        ("put_writes", lambda: saver.put_writes(config, [("a", 1)], "task")),
        ("delete_thread", lambda: saver.delete_thread("after-close")),
        ("delete_for_runs", lambda: saver.delete_for_runs(["run"])),
        ("copy_thread", lambda: saver.copy_thread("after-close", "other")),
        ("prune", lambda: saver.prune(["after-close"])),
        ("setup", saver.setup),
        ("list_workflows", saver.list_workflows),
        ("load_state", lambda: saver.load_state("after-close")),
        ("aget_tuple", lambda: asyncio.run(saver.aget_tuple(config))),
        ("alist", lambda: asyncio.run(_drain(saver, config))),
        ("aput", lambda: asyncio.run(saver.aput(config, checkpoint, {}, versions))),
        ("aput_writes", lambda: asyncio.run(saver.aput_writes(config, [("a", 1)], "task"))),
        ("adelete_thread", lambda: asyncio.run(saver.adelete_thread("after-close"))),
        ("asetup", lambda: asyncio.run(saver.asetup())),
    ]


async def _drain(saver: UnifiedCheckpointSaver, config: Any) -> None:
    async for _ in saver.alist(config):
        pass


def check_refused_after_close(saver: UnifiedCheckpointSaver, where: str) -> None:
    for method, call in _after_close_calls(saver):
        try:
            call()
        except SaverClosedError as exc:
            if f".{method}()" not in str(exc) or type(saver).__name__ not in str(exc):
                problems.append(f"{where}: {method} after close: unclear message {exc}")
        except BaseException as exc:
            problems.append(f"{where}: {method} after close raised {type(exc).__name__}: {exc}")
        else:
            problems.append(f"{where}: {method} after close did not raise")


def _closer(saver: UnifiedCheckpointSaver, how: str) -> Callable[[], None]:
    def close() -> None:
        if how == "twice":
            other = threading.Thread(target=saver.close)
            other.start()
            saver.close()
            other.join(JOIN_TIMEOUT)
            if other.is_alive():
                problems.append("the second concurrent close() hung")
        else:
            saver.close()
        saver.close()  # idempotent

    return close


def _leftover_threads() -> list[str]:
    deadline = time.monotonic() + 5
    while True:
        left = [
            t.name
            for t in threading.enumerate()
            if t.is_alive() and (t.name.endswith("-io") or type(t).__module__.startswith("aiosqlite"))
        ]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


async def one_round(backend: str, location: str, number: int, rng: random.Random) -> dict[str, Any]:
    mode = MODES[number % len(MODES)]
    close_timeout = 0.0 if number % 2 else 5.0
    saver = open_saver(backend, location, close_timeout=close_timeout)
    await asyncio.to_thread(saver.setup) if mode == "sync" else await saver.asetup()
    count = rng.randint(3, 8)
    writers = [Writer(saver, f"r{number}-w{i}") for i in range(count)]
    threaded = writers if mode == "sync" else writers[: count // 2] if mode == "mixed" else []
    tasks_of = [w for w in writers if w not in threaded]
    threads = [threading.Thread(target=w.run_sync, name=f"writer-{w.thread_id}") for w in threaded]
    for thread in threads:
        thread.start()
    tasks = [asyncio.ensure_future(w.run_async()) for w in tasks_of]
    await asyncio.sleep(rng.uniform(0.05, 0.4))
    how = rng.choice(["main", "worker", "twice"]) if mode == "sync" else rng.choice(["aclose", "worker"])
    started = time.monotonic()
    if mode == "sync" and how == "main":
        # The main thread blocks in close(): run it off the loop, as a sync program would.
        await asyncio.to_thread(_closer(saver, how))
    elif mode == "sync":
        closer = threading.Thread(target=_closer(saver, how))
        closer.start()
        await asyncio.to_thread(closer.join, JOIN_TIMEOUT)
    elif how == "aclose":
        closing = [asyncio.ensure_future(saver.aclose()), asyncio.ensure_future(saver.aclose())]
        await asyncio.wait_for(asyncio.gather(*closing), JOIN_TIMEOUT)
    else:
        await asyncio.wait_for(asyncio.to_thread(_closer(saver, "worker")), JOIN_TIMEOUT)
    took = time.monotonic() - started
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=JOIN_TIMEOUT)
        if pending:
            problems.append(f"round {number}: {len(pending)} writer task(s) hung after aclose")
    for thread in threads:
        await asyncio.to_thread(thread.join, JOIN_TIMEOUT)
        if thread.is_alive():
            problems.append(f"round {number}: writer thread {thread.name} hung after close")
    where = f"round {number} ({mode}, close {how}, close_timeout={close_timeout:g})"
    for writer in writers:
        if writer.ended is None or not _closed(writer.ended):
            problems.append(f"{where}: writer {writer.thread_id} ended with {writer.ended!r}")
    await asyncio.to_thread(check_refused_after_close, saver, where)

    # Everything acknowledged is stored whole; nothing stored is half-written.
    reader = UnifiedCheckpointSaver(saver.backend) if backend == "memory" else open_saver(backend, location)
    try:
        for writer in writers:
            tuples = [t async for t in reader.alist(config_for(writer.thread_id))]
            verify_chain(tuples, writer.acked.checkpoints, writer.acked.writes, f"{where}, {writer.thread_id}")
            stored = await raw.checkpoint_count(reader, writer.thread_id)
            if stored != len(tuples):
                problems.append(f"{where}: {writer.thread_id} stores {stored} checkpoints, lists {len(tuples)}")
    finally:
        await reader.aclose()
    left = _leftover_threads()
    if left:
        problems.append(f"{where}: threads left running after close: {left}")
    return {
        "mode": mode,
        "close": how,
        "close_timeout": close_timeout,
        "close_seconds": round(took, 3),
        "cut_short": sum(isinstance(w.ended, SaverClosedError) and w.ended.in_flight for w in writers),
        "writers": {w.thread_id: [len(w.acked.checkpoints), len(w.acked.writes)] for w in writers},
    }


async def main(backend: str, location: str, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    results = []
    for number in range(rounds):
        results.append(await one_round(backend, location, number, rng))
        gc.collect()
    if backend != "memory":
        cleanup = open_saver(backend, location)
        drop = getattr(cleanup.backend, "drop_all", None)
        if drop is not None:
            await drop()
        await cleanup.aclose()
    print(json.dumps({"rounds": results, "problems": problems}), flush=True)


if __name__ == "__main__":
    logging.getLogger("asyncio").addHandler(_Recorder(logging.WARNING))
    logging.getLogger("langgraph_unified_store").addHandler(_Recorder(logging.ERROR))
    warnings.simplefilter("ignore")
    warnings.simplefilter("always", ResourceWarning)
    warnings.simplefilter("always", RuntimeWarning)
    warnings.showwarning = _on_warning
    sys.unraisablehook = _on_unraisable
    backend, location, rounds, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    asyncio.run(main(backend, location, rounds, seed), debug=False)
    gc.collect()
    if problems:
        print(json.dumps({"late_problems": problems}), flush=True)
