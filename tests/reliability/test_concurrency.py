"""Concurrency: many writers at once on one saver, and two processes on one store.

Sixteen writers share one saver: threads on the blocking API, asyncio tasks on the
test's own event loop (same thread), and threads each running their own event loop
(different threads, different loops). Each writes a chain on its own thread and a
chain on one thread they all share (same list items, so insert-if-absent races).
Then two processes write to the same SQLite file, Postgres schema and Redis prefix.
No call may fail, nothing acknowledged may be lost, and ``list()`` stays newest first.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from langgraph.checkpoint.base import CheckpointTuple

from langgraph_unified_store import SyncCallInEventLoopError
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import config_for, drop_saver, open_saver
from . import figures
from .workload import (
    Acked,
    metadata_for,
    next_checkpoint,
    state_at,
    verify_chain,
    write_chain_async,
    write_chain_sync,
)

ROOT = Path(__file__).resolve().parents[2]
OWN_STEPS = 20
SHARED_STEPS = 6
SHARED_THREAD = "shared"
# 16 writers: 6 blocking threads, 6 tasks on the test loop, 4 threads with their own loop.
WRITER_KINDS = ("sync-thread",) * 6 + ("task",) * 6 + ("loop-thread",) * 4


def verify_store(
    tuples_of: Callable[[str], list[CheckpointTuple]],
    acked: dict[str, Acked],
    shared_acked: dict[str, Acked],
    where: str,
) -> tuple[int, int]:
    """Each writer's own chain and its chain on the shared thread, checked exactly."""
    checkpoints = writes = 0
    for writer, own in acked.items():
        c, w = verify_chain(tuples_of(f"own-{writer}"), own.checkpoints, own.writes, f"{where} {writer}")
        checkpoints, writes = checkpoints + c, writes + w
    shared = tuples_of(SHARED_THREAD)
    ids = [t.checkpoint["id"] for t in shared]
    assert ids == sorted(ids, reverse=True), f"{where}: shared thread not listed newest first"
    by_writer: defaultdict[str, list[CheckpointTuple]] = defaultdict(list)
    for tup in shared:
        by_writer[tup.metadata["writer"]].append(tup)
    assert set(by_writer) == set(shared_acked), f"{where}: writers on the shared thread differ"
    for writer, chain in by_writer.items():
        got = shared_acked[writer]
        c, w = verify_chain(chain, got.checkpoints, got.writes, f"{where} shared {writer}")
        checkpoints, writes = checkpoints + c, writes + w
    return checkpoints, writes


@pytest.mark.timeout(120)
async def test_sixteen_mixed_writers_lose_nothing(
    saver: UnifiedCheckpointSaver, backend_name: str
) -> None:
    acked = {f"w{n}": Acked() for n in range(len(WRITER_KINDS))}
    shared_acked = {f"w{n}": Acked() for n in range(len(WRITER_KINDS))}
    errors: list[BaseException] = []
    start = threading.Barrier(sum(kind != "task" for kind in WRITER_KINDS))

    async def write_async(writer: str) -> None:
        await write_chain_async(saver, f"own-{writer}", OWN_STEPS, writer, acked[writer])
        await write_chain_async(saver, SHARED_THREAD, SHARED_STEPS, writer, shared_acked[writer])

    def write_sync(writer: str) -> None:
        write_chain_sync(saver, f"own-{writer}", OWN_STEPS, writer, acked[writer])
        write_chain_sync(saver, SHARED_THREAD, SHARED_STEPS, writer, shared_acked[writer])

    def in_thread(writer: str, kind: str) -> None:
        try:
            start.wait()
            if kind == "sync-thread":
                write_sync(writer)
            else:
                asyncio.run(write_async(writer))
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=in_thread, args=(f"w{n}", kind), name=f"writer-w{n}")
        for n, kind in enumerate(WRITER_KINDS)
        if kind != "task"
    ]
    for thread in threads:
        thread.start()
    tasks = [
        asyncio.create_task(write_async(f"w{n}"))
        for n, kind in enumerate(WRITER_KINDS)
        if kind == "task"
    ]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for thread in threads:
        await asyncio.to_thread(thread.join)
    errors.extend(r for r in results if isinstance(r, BaseException))
    assert not errors, f"{backend_name}: {len(errors)} writers failed, first: {errors[0]!r}"

    listed: dict[str, list[CheckpointTuple]] = {}
    for thread_id in [*(f"own-{w}" for w in acked), SHARED_THREAD]:
        listed[thread_id] = [t async for t in saver.alist(config_for(thread_id))]
    checkpoints, writes = verify_store(listed.__getitem__, acked, shared_acked, backend_name)
    assert checkpoints == len(WRITER_KINDS) * (OWN_STEPS + SHARED_STEPS)
    # The blocking API sees the same thing from a plain thread.
    sync_listed = await asyncio.to_thread(lambda: list(saver.list(config_for(SHARED_THREAD))))
    assert [t.checkpoint["id"] for t in sync_listed] == [
        t.checkpoint["id"] for t in listed[SHARED_THREAD]
    ]
    figures.count(backend_name, figures.CONCURRENT_WRITERS, len(WRITER_KINDS))
    figures.count(backend_name, figures.CHECKPOINTS_VERIFIED, checkpoints)
    figures.count(backend_name, figures.WRITES_VERIFIED, writes)


PROCESSES = 2


@pytest.mark.timeout(180)
@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
async def test_two_processes_on_one_store(backend: str, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:10]
    location = str(tmp_path / "shared.sqlite") if backend == "sqlite" else f"lus_procs_{suffix}"
    verifier = open_saver(backend, location)
    try:
        await verifier.asetup()
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.reliability.concurrent_child",
                backend, location, f"p{n}",
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for n in range(PROCESSES)
        ]
        for child in children:
            assert child.stdout is not None
            ready = await asyncio.wait_for(child.stdout.readline(), 60)
            assert ready.strip() == b"READY", f"{backend} child did not start: {ready!r}"
        # Both are connected and set up: let them go at the same moment.
        outputs = await asyncio.gather(*(child.communicate(b"GO\n") for child in children))
        acked: dict[str, Acked] = {}
        shared_acked: dict[str, Acked] = {}
        for child, (out, err) in zip(children, outputs, strict=True):
            assert child.returncode == 0, f"{backend} child failed:\n{err.decode()[-4000:]}"
            report = json.loads(out.decode().strip().splitlines()[-1])
            for writer, got in report["own"].items():
                acked[writer] = Acked()
                acked[writer].checkpoints, acked[writer].writes = got
            for writer, got in report["shared"].items():
                shared_acked[writer] = Acked()
                shared_acked[writer].checkpoints, shared_acked[writer].writes = got
        listed: dict[str, list[CheckpointTuple]] = {}
        for thread_id in [*(f"own-{w}" for w in acked), SHARED_THREAD]:
            listed[thread_id] = [t async for t in verifier.alist(config_for(thread_id))]
        checkpoints, writes = verify_store(
            listed.__getitem__, acked, shared_acked, f"{backend} two processes"
        )
        writers = len(acked)
        assert writers == PROCESSES * 8
        assert checkpoints == writers * (OWN_STEPS + SHARED_STEPS)
        figures.count(backend, figures.CONCURRENT_WRITERS, writers)
        figures.count(backend, figures.CHECKPOINTS_VERIFIED, checkpoints)
        figures.count(backend, figures.WRITES_VERIFIED, writes)
    finally:
        await drop_saver(verifier)


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
async def test_writer_continues_a_thread_another_saver_deleted(backend: str, tmp_path: Path) -> None:
    """Process B deletes a thread while process A is in the middle of a run on it; A's next
    checkpoint is acknowledged, so it must read back whole."""
    suffix = uuid.uuid4().hex[:10]
    location = str(tmp_path / "two.sqlite") if backend == "sqlite" else f"lus_stale_{suffix}"
    writer, deleter = open_saver(backend, location), open_saver(backend, location)
    try:
        await writer.asetup()
        previous = None
        for step in range(3):
            checkpoint, versions = next_checkpoint(writer, previous, step)
            await writer.aput(config_for("t", previous["id"] if previous else None), checkpoint,
                              metadata_for(step, "a"), versions)
            previous = checkpoint
        await deleter.adelete_thread("t")
        assert previous is not None
        checkpoint, versions = next_checkpoint(writer, previous, 3)
        config = await writer.aput(config_for("t", previous["id"]), checkpoint, metadata_for(3, "a"), versions)
        got = await deleter.aget_tuple(config)
        assert got is not None
        assert got.checkpoint["channel_values"]["messages"] == state_at(3)["messages"]
    finally:
        await deleter.aclose()
        await drop_saver(writer)


@pytest.mark.timeout(60)
async def test_blocking_call_inside_a_running_loop_fails_fast(
    saver: UnifiedCheckpointSaver, backend_name: str
) -> None:
    """langchain-ai/langgraph#7857: a blocking call made on a thread that runs an event loop
    deadlocks with the official savers. Here it is refused at once, on every backend,
    while other writers keep going, and the saver is fine afterwards."""
    acked = Acked()
    busy = asyncio.create_task(write_chain_async(saver, "busy", 10, "busy", acked))

    async def blocking_inside_loop() -> None:
        saver.put(config_for("t"), *next_checkpoint(saver, None, 0)[:1], metadata_for(0, "x"), {})

    for call in (
        blocking_inside_loop,
        lambda: asyncio.sleep(0, saver.get_tuple(config_for("busy"))),
        lambda: asyncio.sleep(0, list(saver.list(None))),
    ):
        with pytest.raises(SyncCallInEventLoopError):
            await asyncio.wait_for(call(), 10)
    await busy
    tuples = [t async for t in saver.alist(config_for("busy"))]
    verify_chain(tuples, acked.checkpoints, acked.writes, f"{backend_name} busy")
