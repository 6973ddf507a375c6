"""Removals racing live writers, on every backend, the removal through both call styles
(the blocking one on a worker thread, truly in parallel with the loop's writers): a
thread written after the cutoff (or, for sweep, written after it expired) is never
removed, nothing expired comes back, and every surviving checkpoint loads whole."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph_unified_store.core.lifecycle import Removed
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..contract.chat import chat, messages
from ..reliability import raw
from ..support import thread_config
from .conftest import Calls, FakeClock
from .helpers import NONE_LEFT, all_load, nothing_left

Open = Callable[..., Awaitable[UnifiedCheckpointSaver]]
THREADS = [f"t{n:02d}" for n in range(12)]
WRITTEN = THREADS[::2]
TURNS = 3


async def _race(
    saver: UnifiedCheckpointSaver, removal: Callable[[], Awaitable[Removed]]
) -> tuple[Removed, dict[str, Any]]:
    """Run ``removal`` while a writer per WRITTEN thread chats TURNS more turns; returns
    what was removed and each writer's last view of its messages."""
    last: dict[str, Any] = {}

    async def writer(thread_id: str) -> None:
        for _ in range(TURNS):
            last[thread_id] = await chat(saver, thread_id, 1)
            await asyncio.sleep(0)

    removed, *_ = await asyncio.gather(removal(), *(writer(t) for t in WRITTEN))
    return removed, last


async def _survivors_whole(saver: UnifiedCheckpointSaver, removed: Removed) -> None:
    assert len(removed.thread_ids) == len(set(removed.thread_ids))
    assert set(removed.thread_ids) <= set(THREADS)
    gone = [t for t in THREADS if t not in WRITTEN]
    assert await nothing_left(saver, gone) == {}
    assert await all_load(saver, WRITTEN) > 0
    assert await raw.orphans(saver, THREADS) == NONE_LEFT


async def _ids(saver: UnifiedCheckpointSaver) -> dict[str, set[str]]:
    return {
        t: {c.checkpoint["id"] async for c in saver.alist(thread_config(t))} for t in THREADS
    }


async def _old_gone_or_kept(
    saver: UnifiedCheckpointSaver, before: dict[str, set[str]], removed: Removed
) -> None:
    """A removed thread's old checkpoints never come back (a writer that read the thread
    before it went may write its values again, as new checkpoints); a kept one keeps all."""
    now = await _ids(saver)
    for thread_id, old in before.items():
        if thread_id in removed.thread_ids:
            assert not old & now[thread_id], thread_id
        else:
            assert old <= now[thread_id], thread_id


async def test_delete_threads_racing_writers(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc()
    c = calls(saver)
    for thread_id in THREADS:
        await chat(saver, thread_id, 1)
    before = await _ids(saver)
    fake_clock.advance(100)
    removed, last = await _race(saver, lambda: c.delete_threads(50))
    await _survivors_whole(saver, removed)
    for thread_id in WRITTEN:
        final = await messages(saver, thread_id)
        assert final == last[thread_id], "a write after the cutoff is never removed"
    await _old_gone_or_kept(saver, before, removed)


async def test_delete_threads_in_small_batches_racing_writers(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc()
    c = calls(saver)
    for thread_id in THREADS:
        await chat(saver, thread_id, 1)
    before = await _ids(saver)
    fake_clock.advance(100)

    async def in_batches() -> Removed:
        total = Removed()
        while True:
            removed = await c.delete_threads(50, limit=2)
            assert len(removed.thread_ids) <= 2
            if not removed.thread_ids:
                return total
            total.add(removed)

    removed, last = await _race(saver, in_batches)
    await _survivors_whole(saver, removed)
    for thread_id in WRITTEN:
        final = await messages(saver, thread_id)
        assert final == last[thread_id]
    await _old_gone_or_kept(saver, before, removed)


async def test_sweep_racing_writers(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc(ttl=100)
    c = calls(saver)
    for thread_id in THREADS:
        await chat(saver, thread_id, 1)
    fake_clock.advance(101)
    removed, last = await _race(saver, c.sweep)
    await _survivors_whole(saver, removed)
    for thread_id in WRITTEN:
        final = await messages(saver, thread_id)
        assert final == last[thread_id], "a thread written since it expired is never swept"
        assert len(final) == 3 * TURNS, "nothing expired comes back"
    assert (await c.sweep()).thread_ids == []
    assert sorted(await c.all_threads()) == WRITTEN
