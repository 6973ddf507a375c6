"""TTL on every backend, through the async and the blocking API, on a fake clock: an
expired thread is gone to every read at once, sweep removes it from storage, writes (and
with refresh_on_read, reads) restart the ttl, set_ttl overrides or pins it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.errors import CheckpointNotFoundError

from ..contract.chat import chat, messages
from ..reliability import raw
from ..support import config_for, open_saver, thread_config
from .conftest import Calls, FakeClock
from .helpers import NONE_LEFT, counts_of, nothing_left, raw_counts, seed

Open = Callable[..., Awaitable[UnifiedCheckpointSaver]]
TTL = 100.0



async def visible(c: Calls, thread_id: str) -> dict[str, bool]:
    """Where a thread shows, read by every read the saver has."""
    return {
        "get_tuple": await c.get_tuple(config_for(thread_id)) is not None,
        "list": bool(await c.list(thread_config(thread_id))),
        "list_global": any(
            t.config["configurable"]["thread_id"] == thread_id for t in await c.list(None)
        ),
        "list_filtered": any(
            t.config["configurable"]["thread_id"] == thread_id
            for t in await c.list(None, filter={"owner": thread_id})
        ),
        "list_workflows": thread_id in await c.list_workflows(),
        "list_threads": thread_id in await c.all_threads(),
    }


ALL = dict.fromkeys(
    ("get_tuple", "list", "list_global", "list_filtered", "list_workflows", "list_threads"), True
)
NONE = dict.fromkeys(ALL, False)


async def test_expired_thread_is_invisible_at_once_and_sweep_removes_it(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc(ttl=TTL)
    c = calls(saver)
    await seed(saver, "old", 3, owner="old")
    await seed(saver, "old", 1, ns="sub", owner="old")
    fake_clock.advance(50)
    await seed(saver, "young", 2, owner="young")
    assert await visible(c, "old") == ALL
    before = await raw_counts(saver, ["old"])
    fake_clock.advance(TTL - 50)  # "old" expires exactly now: at its expiry it is gone
    assert await visible(c, "old") == NONE
    assert await visible(c, "young") == ALL
    assert await raw.checkpoint_count(saver, "old") == 4, "not swept yet: still stored"
    removed = await c.sweep()
    assert removed.thread_ids == ["old"]
    assert counts_of(removed) == counts_of(before)
    assert await nothing_left(saver, ["old"]) == {}
    assert await visible(c, "young") == ALL
    assert (await c.sweep()).thread_ids == []
    fake_clock.advance(50)
    assert (await c.sweep()).thread_ids == ["young"]
    assert await nothing_left(saver, ["old", "young"]) == {}


async def test_sweep_limit(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc(ttl=TTL)
    c = calls(saver)
    for n in range(3):
        await seed(saver, f"t{n}", 1, writes=False)
    fake_clock.advance(TTL + 1)
    first = await c.sweep(limit=2)
    assert len(first.thread_ids) == 2
    rest = await c.sweep()
    assert sorted(first.thread_ids + rest.thread_ids) == ["t0", "t1", "t2"]
    assert await nothing_left(saver, ["t0", "t1", "t2"]) == {}


async def test_writes_refresh_the_expiry(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc(ttl=TTL)
    c = calls(saver)
    configs = await seed(saver, "t", 1, writes=False)
    fake_clock.advance(60)
    await saver.aput_writes(configs[-1], [("v", "later")], "task-2")  # a write refreshes
    fake_clock.advance(60)
    assert await c.get_tuple(config_for("t")) is not None
    fake_clock.advance(30)
    await seed(saver, "t", 1, ns="sub", writes=False)  # so does a checkpoint, any namespace
    fake_clock.advance(TTL - 1)
    assert await visible(c, "t") == ALL
    fake_clock.advance(1)
    assert await visible(c, "t") == NONE
    assert (await c.sweep()).thread_ids == ["t"]


@pytest.mark.parametrize("refresh", [True, False])
async def test_refresh_on_read(
    open_lc: Open,
    calls: Callable[[UnifiedCheckpointSaver], Calls],
    fake_clock: FakeClock,
    refresh: bool,
    lc_backend: str,
    request: pytest.FixtureRequest,
) -> None:
    saver = await open_lc(ttl=TTL, refresh_on_read=refresh)
    c = calls(saver)
    await seed(saver, "got", 1)
    await seed(saver, "listed", 1)
    written = fake_clock.now
    fake_clock.advance(60)
    assert await c.get_tuple(config_for("got")) is not None
    assert await c.list(config_for("listed"))
    fake_clock.advance(60)  # past the write's expiry, within the read's
    for thread_id in ("got", "listed"):
        assert (await c.get_tuple(config_for(thread_id)) is not None) is refresh, thread_id
    if refresh:
        page = await c.list_threads()
        info = next(t for t in page.threads if t.thread_id == "got")
        assert info.last_write == pytest.approx(written, abs=1e-3), "a read is no write"
        assert info.expires_at is not None and info.expires_at > written + TTL
        fake_clock.advance(TTL + 1)
        assert await c.get_tuple(config_for("got")) is None
    assert sorted((await c.sweep()).thread_ids) == ["got", "listed"]


async def test_set_ttl_overrides_and_pins(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc(ttl=TTL)
    c = calls(saver)
    for thread_id in ("longer", "shorter", "pinned", "plain"):
        await seed(saver, thread_id, 1)
    written = fake_clock.now
    await c.set_ttl("longer", timedelta(seconds=500))
    await c.set_ttl("shorter", 10)
    await c.set_ttl("pinned", None)
    infos = {t.thread_id: t for t in (await c.list_threads()).threads}
    assert infos["longer"].expires_at == pytest.approx(written + 500, abs=1e-2)
    assert infos["shorter"].expires_at == pytest.approx(written + 10, abs=1e-2)
    assert infos["plain"].expires_at == pytest.approx(written + TTL, abs=1e-2)
    assert infos["pinned"].expires_at is None
    fake_clock.advance(11)
    assert await c.get_tuple(config_for("shorter")) is None
    fake_clock.advance(TTL)
    assert await c.get_tuple(config_for("plain")) is None
    assert await c.get_tuple(config_for("longer")) is not None
    assert sorted((await c.sweep()).thread_ids) == ["plain", "shorter"]
    fake_clock.advance(400)
    assert await c.get_tuple(config_for("longer")) is None
    fake_clock.advance(10**6)
    assert await c.get_tuple(config_for("pinned")) is not None
    assert (await c.sweep()).thread_ids == ["longer"]
    # A thread's own ttl outlives a write: it still applies after the next one.
    await seed(saver, "pinned", 1, ns="sub")
    fake_clock.advance(10**6)
    assert await visible(c, "pinned") == ALL
    await c.set_ttl("pinned", 5)  # from its last write: already past
    assert await c.get_tuple(config_for("pinned")) is None
    assert (await c.sweep()).thread_ids == ["pinned"]


async def test_set_ttl_without_a_saver_ttl(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc()
    c = calls(saver)
    await seed(saver, "t", 1)
    await seed(saver, "forever", 1)
    assert (await c.list_threads()).threads[0].expires_at is None
    await c.set_ttl("t", 30)
    fake_clock.advance(31)
    assert await visible(c, "t") == NONE
    assert await visible(c, "forever") == ALL
    assert (await c.sweep()).thread_ids == ["t"]
    assert await nothing_left(saver, ["t"]) == {}


async def test_set_ttl_on_a_missing_or_expired_thread(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc(ttl=TTL)
    c = calls(saver)
    with pytest.raises(CheckpointNotFoundError):
        await c.set_ttl("never-written", 10)
    with pytest.raises(CheckpointNotFoundError):
        await c.set_ttl("never-written", None)
    await seed(saver, "t", 1)
    fake_clock.advance(TTL)
    with pytest.raises(CheckpointNotFoundError):
        await c.set_ttl("t", None)  # expired: pinning cannot bring it back
    assert await c.get_tuple(config_for("t")) is None
    assert await nothing_left(saver, ["never-written"]) == {}


async def test_a_write_to_an_expired_thread_starts_fresh(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc(ttl=TTL)
    c = calls(saver)
    old = await chat(saver, "t", 3)
    old_ids = [t.checkpoint["id"] for t in await c.list(thread_config("t"))]
    first_write = fake_clock.now
    fake_clock.advance(TTL + 1)
    fresh = await chat(saver, "t", 1)
    assert len(old) == 9 and len(fresh) == 3, "the new chat sees none of the old turns"
    listed = await c.list(thread_config("t"))
    assert not {t.checkpoint["id"] for t in listed} & set(old_ids)
    for checkpoint_id in old_ids:
        assert await c.get_tuple(config_for("t", checkpoint_id)) is None
    [info] = (await c.list_threads()).threads
    assert info.first_write > first_write + TTL
    assert info.checkpoints == len(listed)
    assert await raw.orphans(saver, ["t"]) == NONE_LEFT
    assert await raw.checkpoint_count(saver, "t") == len(listed)
    assert (await c.sweep()).thread_ids == []
    assert await messages(saver, "t") == fresh


async def test_a_hand_made_put_to_an_expired_thread_starts_fresh(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc(ttl=TTL)
    c = calls(saver)
    old = await seed(saver, "t", 3)
    await seed(saver, "t", 2, ns="sub")
    fake_clock.advance(TTL)
    # The child of the expired head: its parent and inherited values are gone too.
    await seed(saver, "t", 1, ns="sub")
    listed = await c.list(thread_config("t"))
    assert len(listed) == 1 and listed[0].config["configurable"]["checkpoint_ns"] == "sub"
    assert await c.get_tuple(old[-1]) is None
    assert await raw.checkpoint_count(saver, "t") == 1
    assert await raw.orphans(saver, ["t"]) == NONE_LEFT


async def test_background_sweeper_removes_expired_threads_and_stops_on_close(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc(ttl=TTL, sweep_interval=0.05)
    c = calls(saver)
    sweeper = saver._sweeper
    assert sweeper is not None and sweeper.running
    await seed(saver, "t", 2)
    await seed(saver, "kept", 1)
    await c.set_ttl("kept", None)
    fake_clock.advance(TTL + 1)
    deadline = time.monotonic() + 10
    while await nothing_left(saver, ["t"]) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # the sweeper runs in real time: wait for its next round
    assert await nothing_left(saver, ["t"]) == {}
    assert sweeper.sweeps >= 1
    assert await c.get_tuple(config_for("kept")) is not None
    await c.close()
    assert saver._sweeper is None
    assert not sweeper.running, "close ends the sweeper's thread"


async def test_real_time_expiry(
    open_lc: Open, lc_backend: str, tmp_path: Any
) -> None:
    """The one test on the real clock: a ttl of 1 s, 1.5 s of sleep."""
    saver = await open_lc(ttl=1, clock=None)
    await seed(saver, "t", 2)
    await seed(saver, "pinned", 1)
    await saver.aset_ttl("pinned", None)
    assert await saver.aget_tuple(config_for("t")) is not None
    await asyncio.sleep(1.5)
    assert await saver.aget_tuple(config_for("t")) is None
    assert not [x async for x in saver.alist(thread_config("t"))]
    assert "t" not in await saver.alist_workflows()
    assert [t.thread_id for t in (await saver.alist_threads()).threads] == ["pinned"]
    if lc_backend == "redis":
        # Redis expires the thread's keys itself; only the global indexes wait for a sweep.
        left = await raw.thread_left(saver, "t")
        assert all(entry.startswith("member of") for entry in left), left
    swept = await asyncio.to_thread(saver.sweep)
    if lc_backend != "redis":  # Redis may have dropped every key already: nothing to count
        assert swept.thread_ids == ["t"]
    assert await nothing_left(saver, ["t"]) == {}
    assert await saver.aget_tuple(config_for("pinned")) is not None
    # Another saver on the same storage sees the same (nothing of "t").
    if lc_backend in ("postgres", "redis"):
        from .conftest import location_of

        other = open_saver(lc_backend, str(location_of(saver)), ttl=1)
        try:
            assert await other.aget_tuple(config_for("t")) is None
            assert await other.aget_tuple(config_for("pinned")) is not None
        finally:
            await other.aclose()


async def test_a_read_of_an_expired_thread_does_not_delay_its_sweep(
    open_lc: Open,
    calls: Callable[[UnifiedCheckpointSaver], Calls],
    fake_clock: FakeClock,
    lc_backend: str,
    request: pytest.FixtureRequest,
) -> None:
    """With refresh_on_read, reading a thread that has expired finds nothing and refreshes
    nothing: the next sweep removes it."""
    saver = await open_lc(ttl=TTL, refresh_on_read=True)
    c = calls(saver)
    await seed(saver, "t", 1)
    fake_clock.advance(TTL + 1)
    assert await c.get_tuple(config_for("t")) is None
    assert await c.list(thread_config("t")) == []
    assert (await c.sweep()).thread_ids == ["t"]
    assert await nothing_left(saver, ["t"]) == {}
