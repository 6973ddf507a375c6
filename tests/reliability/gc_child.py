"""Child process of the garbage-collection race test (``test_gc_races.py``).

``python -m tests.reliability.gc_child write BACKEND LOCATION NAME API STEPS``: one writer
that, through the blocking (``sync``) or async API, writes a chain of STEPS checkpoints
(each the child of its own previous one, with two pending writes) on the thread every
writer shares and on a thread of its own. Every put names the blobs of its parent's
channels that did not change, which the collector may be removing at that moment.

``python -m tests.reliability.gc_child collect BACKEND LOCATION NAMES MAX_ROUNDS``: prunes
(keep_latest), deletes writers' runs and their own threads, in a loop, alternating the two
APIs, until told to stop on stdin or after MAX_ROUNDS rounds (or GC_SECONDS).

Both print ``READY`` once set up and wait for a line on stdin; the writer then prints one
JSON line: the (thread, checkpoint id, step) of every checkpoint acknowledged, how many
of those read back (whole) right after, and how many puts were refused for relying on
something collected meanwhile (and re-sent).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
import time
from typing import Any

from langgraph.checkpoint.base import Checkpoint

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.errors import ItemsMissingError

from ..support import config_for, open_saver
from .workload import (
    check_tuple,
    metadata_for,
    next_checkpoint,
    writes_after,
)

SHARED_THREAD = "shared"
GC_SECONDS = 60.0


def run_of(name: str, step: int) -> str:
    """Ten runs per writer, taking turns: deleting one removes a tenth of its checkpoints,
    sometimes its head."""
    return f"{name}-run{step % 10}"


def _step_args(
    saver: UnifiedCheckpointSaver, name: str, thread_id: str, previous: Checkpoint | None, step: int
) -> tuple[Any, ...]:
    checkpoint, versions = next_checkpoint(saver, previous, step)
    metadata = {**metadata_for(step, name), "run_id": run_of(name, step)}
    parent = previous["id"] if previous else None
    return config_for(thread_id, parent), checkpoint, metadata, versions


def count_resends(saver: UnifiedCheckpointSaver) -> list[int]:
    """Count the puts the backend refused because something they relied on was gone
    (each is then re-sent whole by the core): the race did happen, and was survived."""
    refused = [0]
    put = saver.backend.put_checkpoint

    async def counting(*args: Any, **kwargs: Any) -> None:
        try:
            await put(*args, **kwargs)
        except ItemsMissingError:
            refused[0] += 1
            raise

    saver.backend.put_checkpoint = counting  # type: ignore[method-assign]
    return refused


async def write(
    saver: UnifiedCheckpointSaver, name: str, api: str, steps: int
) -> tuple[list[Any], int]:
    """The chains, each checkpoint read back right after it was acknowledged: it may be
    collected already, but if it is there it must be whole. Returns what was acknowledged
    and how many of those reads found their checkpoint."""
    acked: list[Any] = []
    found = 0
    heads: dict[str, Checkpoint | None] = {SHARED_THREAD: None, f"own-{name}": None}
    for step in range(steps):
        for thread_id, previous in list(heads.items()):
            config, checkpoint, metadata, versions = _step_args(saver, name, thread_id, previous, step)
            task = f"task-{name}-{step}"
            if api == "sync":
                stored = await asyncio.to_thread(saver.put, config, checkpoint, metadata, versions)
                await asyncio.to_thread(saver.put_writes, stored, writes_after(step), task)
                got = await asyncio.to_thread(saver.get_tuple, stored)
            else:
                stored = await saver.aput(config, checkpoint, metadata, versions)
                await saver.aput_writes(stored, writes_after(step), task_id=task)
                got = await saver.aget_tuple(stored)
            acked.append([thread_id, checkpoint["id"], step])
            if got is not None:
                assert check_tuple(got, f"{name} {thread_id} via {api}") == step
                found += 1
            heads[thread_id] = checkpoint
    return acked, found


async def collect(
    saver: UnifiedCheckpointSaver, names: list[str], rounds: int, stop: threading.Event
) -> int:
    """Rounds of garbage collection until ``stop`` (or the bound); returns how many ran."""
    rng = random.Random(12)
    threads = [SHARED_THREAD, *(f"own-{n}" for n in names)]
    started = time.monotonic()
    done = 0
    while done < rounds and not stop.is_set() and time.monotonic() - started < GC_SECONDS:
        blocking = done % 2 == 1
        roll = rng.random()
        if roll < 0.6:
            call: Any = (saver.prune, saver.aprune), ([rng.choice(threads)],)
        elif roll < 0.9:
            runs = [run_of(rng.choice(names), rng.randrange(0, 10)) for _ in range(3)]
            call = (saver.delete_for_runs, saver.adelete_for_runs), (runs,)
        else:
            call = (saver.delete_thread, saver.adelete_thread), (f"own-{rng.choice(names)}",)
        (sync_fn, async_fn), args = call
        if blocking:
            await asyncio.to_thread(sync_fn, *args)
        else:
            await async_fn(*args)
        done += 1
        await asyncio.sleep(rng.uniform(0, 0.01))
    return done


async def main(argv: list[str]) -> None:
    mode, backend, location = argv[:3]
    saver = open_saver(backend, location)
    await saver.asetup()
    print("READY", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    if mode == "write":
        name, api, steps = argv[3], argv[4], int(argv[5])
        resent = count_resends(saver)
        acked, found = await write(saver, name, api, steps)
        await saver.aclose()
        print(json.dumps({"acked": acked, "found": found, "resent": resent[0]}), flush=True)
        return
    names, rounds = argv[3].split(","), int(argv[4])
    stop = threading.Event()
    # The parent writes a second line once the writers are done.
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    done = await collect(saver, names, rounds, stop)
    await saver.aclose()
    print(json.dumps({"rounds": done}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
