"""delete_threads on every backend, both call styles: by age (timedelta, seconds, an aware
datetime), by metadata filter, both, with a limit; it returns exactly the threads it
deleted and the rows they had, and leaves every other thread as it was."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..contract.chat import chat
from ..reliability import raw
from .conftest import Calls, FakeClock
from .helpers import NONE_LEFT, counts_of, nothing_left, raw_counts, seed, snapshot

Open = Callable[..., Awaitable[UnifiedCheckpointSaver]]
THREADS = ("old-a", "old-b", "old-c", "new-a", "new-b")


async def _threads(saver: UnifiedCheckpointSaver, fake_clock: FakeClock) -> float:
    """old-* written at t0, new-* at t0 + 100, now t0 + 200; old-a and new-a belong to
    user "a" (old-a only in a subgraph namespace). Returns t0."""
    t0 = fake_clock.now
    await seed(saver, "old-a", 2, user="b")
    await seed(saver, "old-a", 1, ns="sub", user="a")
    await seed(saver, "old-b", 3, user="b")
    await chat(saver, "old-c", 2, user="c")
    fake_clock.advance(100)
    await seed(saver, "new-a", 2, user="a")
    await seed(saver, "new-b", 1, user="b")
    fake_clock.advance(100)
    return t0


async def _check(
    saver: UnifiedCheckpointSaver, c: Calls, call: Callable[[], Awaitable[Any]], deleted: list[str]
) -> None:
    kept = [t for t in THREADS if t not in deleted]
    before_counts = await raw_counts(saver, deleted)
    before_kept = {t: await snapshot(saver, t) for t in kept}
    kept_counts = await raw_counts(saver, kept)
    removed = await call()
    assert sorted(removed.thread_ids) == sorted(deleted)
    assert counts_of(removed) == counts_of(before_counts)
    assert await nothing_left(saver, deleted) == {}
    assert {t: await snapshot(saver, t) for t in kept} == before_kept
    assert counts_of(await raw_counts(saver, kept)) == counts_of(kept_counts)
    assert await raw.orphans(saver, kept) == NONE_LEFT
    assert sorted(await c.all_threads()) == sorted(kept)


@pytest.mark.parametrize("age", ["timedelta", "seconds", "datetime", "naive-age-float"])
async def test_by_age(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock, age: str
) -> None:
    saver = await open_lc()
    c = calls(saver)
    t0 = await _threads(saver, fake_clock)
    older_than: Any = {
        "timedelta": timedelta(seconds=150),
        "seconds": 150,
        "naive-age-float": 150.0,
        "datetime": datetime.fromtimestamp(t0 + 50, UTC),
    }[age]
    await _check(saver, c, lambda: c.delete_threads(older_than), ["old-a", "old-b", "old-c"])
    # Nothing more is that old.
    assert (await c.delete_threads(older_than)).thread_ids == []


async def test_by_age_is_strict(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc()
    c = calls(saver)
    t0 = await _threads(saver, fake_clock)
    cutoff = datetime.fromtimestamp(t0 + 100, UTC)  # exactly new-*'s last write: kept
    await _check(saver, c, lambda: c.delete_threads(cutoff), ["old-a", "old-b", "old-c"])


async def test_by_filter_in_any_namespace(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc()
    c = calls(saver)
    await _threads(saver, fake_clock)
    await _check(saver, c, lambda: c.delete_threads(filter={"user": "a"}), ["old-a", "new-a"])


async def test_by_age_and_filter(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc()
    c = calls(saver)
    await _threads(saver, fake_clock)
    await _check(
        saver, c, lambda: c.delete_threads(timedelta(seconds=150), filter={"user": "b"}),
        ["old-a", "old-b"],
    )


async def test_filter_matches_type_exactly(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc()
    c = calls(saver)
    await seed(saver, "int", 1, tier=1)
    await seed(saver, "text", 1, tier="1")
    await seed(saver, "true", 1, tier=True)
    removed = await c.delete_threads(filter={"tier": 1})
    assert removed.thread_ids == ["int"]
    assert sorted(await c.all_threads()) == ["text", "true"]
    assert (await c.delete_threads(filter={"tier": True})).thread_ids == ["true"]


async def test_with_limit(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc()
    c = calls(saver)
    await _threads(saver, fake_clock)
    old = ["old-a", "old-b", "old-c"]
    before = {t: await raw_counts(saver, [t]) for t in old}
    seen: list[str] = []
    for _ in range(3):
        removed = await c.delete_threads(150, limit=1)
        assert len(removed.thread_ids) == 1 and removed.thread_ids[0] in old
        assert counts_of(removed) == counts_of(before[removed.thread_ids[0]])
        seen += removed.thread_ids
    assert sorted(seen) == old
    assert (await c.delete_threads(150, limit=1)).thread_ids == []
    assert sorted(await c.all_threads()) == ["new-a", "new-b"]
    assert await nothing_left(saver, old) == {}
    removed = await c.delete_threads(filter={"user": "b"}, limit=5)
    assert removed.thread_ids == ["new-b"]
