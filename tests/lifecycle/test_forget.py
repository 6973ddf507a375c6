"""forget(filter) on every backend, both call styles: every thread with a matching
checkpoint in any namespace is erased whole (lifecycle storage included), the receipt
counts what storage held, and the re-check verifies it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..contract.chat import chat
from ..reliability import raw
from .conftest import Calls, FakeClock
from .helpers import NONE_LEFT, counts_of, nothing_left, raw_counts, seed, snapshot

Open = Callable[..., Awaitable[UnifiedCheckpointSaver]]


async def test_forget_erases_every_matching_thread(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls]
) -> None:
    saver = await open_lc()
    c = calls(saver)
    await seed(saver, "root", 2, subject="x")
    await seed(saver, "in-sub", 2, subject="y")
    await seed(saver, "in-sub", 1, ns="child:1", subject="x")
    await chat(saver, "chat", 2, subject="x")
    await seed(saver, "other", 2, subject="y")
    await chat(saver, "other-chat", 1, subject="xx")
    erased = ["chat", "in-sub", "root"]
    before = await raw_counts(saver, erased)
    kept = {t: await snapshot(saver, t) for t in ("other", "other-chat")}
    receipt = await c.forget({"subject": "x"})
    assert sorted(receipt.thread_ids) == erased
    assert counts_of(receipt) == counts_of(before)
    assert receipt.verified is True and receipt.remaining == []
    assert receipt.filter == {"subject": "x"}
    assert orjson.loads(orjson.dumps(receipt.as_dict()))["verified"] is True
    assert await nothing_left(saver, erased) == {}
    assert {t: await snapshot(saver, t) for t in kept} == kept
    assert await raw.orphans(saver, list(kept)) == NONE_LEFT
    assert sorted(await c.all_threads()) == ["other", "other-chat"]
    again = await c.forget({"subject": "x"})
    assert again.thread_ids == [] and again.verified is True
    assert counts_of(again) == (0, 0, 0, 0)


async def test_forget_needs_every_key_to_match(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls]
) -> None:
    saver = await open_lc()
    c = calls(saver)
    await seed(saver, "both", 1, subject="x", tenant=7)
    await seed(saver, "subject-only", 1, subject="x", tenant=8)
    await seed(saver, "split", 1, subject="x")
    await seed(saver, "split", 1, ns="sub", tenant=7)  # each key matches, never together
    receipt = await c.forget({"subject": "x", "tenant": 7})
    assert receipt.thread_ids == ["both"] and receipt.verified
    assert sorted(await c.all_threads()) == ["split", "subject-only"]


async def test_forget_erases_expired_threads_not_yet_swept(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc(ttl=100)
    c = calls(saver)
    await seed(saver, "expired", 2, subject="x")
    fake_clock.advance(150)
    await seed(saver, "live", 1, subject="x")
    before = await raw_counts(saver, ["expired", "live"])
    receipt = await c.forget({"subject": "x"})
    assert sorted(receipt.thread_ids) == ["expired", "live"]
    assert counts_of(receipt) == counts_of(before)
    assert receipt.verified
    assert await nothing_left(saver, ["expired", "live"]) == {}


async def test_forget_of_a_pinned_thread_with_a_ttl_leaves_nothing(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls]
) -> None:
    saver = await open_lc(ttl=100)
    c = calls(saver)
    await seed(saver, "pinned", 1, subject="x")
    await c.set_ttl("pinned", None)
    await seed(saver, "own", 1, subject="x")
    await c.set_ttl("own", 1000)
    receipt = await c.forget({"subject": "x"})
    assert sorted(receipt.thread_ids) == ["own", "pinned"] and receipt.verified
    assert await nothing_left(saver, ["own", "pinned"]) == {}
    # A thread written again under the same id starts with the saver's ttl, not its own.
    await seed(saver, "pinned", 1)
    [info] = (await c.list_threads()).threads
    assert info.expires_at is not None


async def test_the_raw_check_sees_lifecycle_storage(open_lc: Open, lc_backend: str) -> None:
    """``raw.thread_left`` would see a lifecycle row or index entry left behind."""
    saver = await open_lc(ttl=100)
    await seed(saver, "t", 1)
    left = await raw.thread_left(saver, "t")
    if lc_backend in ("sqlite", "postgres"):
        table = "threads" if lc_backend == "sqlite" else "lus_threads"
        assert any(entry.endswith(f"in table {table}") for entry in left), left
    elif lc_backend == "redis":
        assert any(entry.startswith("member of") for entry in left), left
        assert any(entry.startswith("key") for entry in left), left
    else:
        assert left == ["memory thread entry"]
    await saver.adelete_thread("t")
    assert await raw.thread_left(saver, "t") == []
