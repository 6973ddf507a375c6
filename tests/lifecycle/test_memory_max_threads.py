"""MemorySaver(max_threads=N): never more than N threads; the least recently used one
(written or read) is evicted whole. Both call styles."""

from __future__ import annotations

from typing import Any

import pytest

from langgraph_unified_store import MemorySaver
from langgraph_unified_store.errors import InvalidConfigError

from ..contract.chat import chat, messages
from ..reliability import raw
from ..support import config_for, thread_config
from .conftest import Calls, FakeClock
from .helpers import NONE_LEFT, seed


def _stored(saver: MemorySaver) -> list[str]:
    return list(saver.backend._threads)  # type: ignore[attr-defined]


async def test_the_least_recently_used_thread_is_evicted(api: str, fake_clock: FakeClock) -> None:
    saver = MemorySaver(max_threads=3, clock=fake_clock)
    c = Calls(saver, api)
    for thread_id in ("a", "b", "c"):
        await seed(saver, thread_id, 2)
    assert await c.get_tuple(config_for("a")) is not None  # a read is a use
    await seed(saver, "d", 1)
    assert sorted(_stored(saver)) == ["a", "c", "d"], "b was the least recently used"
    assert await c.get_tuple(config_for("b")) is None
    assert await c.list(config_for("c"))  # so is listing a thread
    await seed(saver, "e", 1)
    assert sorted(_stored(saver)) == ["c", "d", "e"]
    await saver.aput_writes(
        (await c.get_tuple(config_for("d"))).config, [("v", "again")], "task"  # type: ignore[union-attr]
    )
    await seed(saver, "c", 1)  # a write to a stored thread evicts nothing
    await seed(saver, "f", 1)
    assert sorted(_stored(saver)) == ["c", "d", "f"]
    assert sorted(await c.list_workflows()) == ["c", "d", "f"]
    assert sorted(await c.all_threads()) == ["c", "d", "f"]
    assert saver.backend.evicted == 3  # type: ignore[attr-defined]
    assert await raw.orphans(saver, ["c", "d", "f"]) == NONE_LEFT
    await c.close()


async def test_never_more_than_max_threads(api: str, fake_clock: FakeClock) -> None:
    saver = MemorySaver(max_threads=4, clock=fake_clock)
    c = Calls(saver, api)
    for n in range(12):
        await seed(saver, f"t{n}", 1, writes=False)
        if n % 3 == 0:
            await c.get_tuple(config_for("t0"))  # t0 stays in use
        assert len(_stored(saver)) <= 4
    assert "t0" in _stored(saver)
    assert sorted(await c.all_threads()) == ["t0", "t10", "t11", "t9"]
    # A whole chat on an evicted thread starts over; the kept ones read back whole.
    kept = await chat(saver, "chat", 2)
    for n in range(4):
        await seed(saver, f"u{n}", 1)
    assert await messages(saver, "chat") is None
    await chat(saver, "chat", 1)
    assert len(await messages(saver, "chat") or []) == 3 and len(kept) == 6
    assert len(await c.list(thread_config("chat"))) > 0
    await c.close()


async def test_max_threads_with_a_ttl(api: str, fake_clock: FakeClock) -> None:
    saver = MemorySaver(max_threads=2, ttl=100, clock=fake_clock)
    c = Calls(saver, api)
    await seed(saver, "a", 1)
    await seed(saver, "b", 1)
    fake_clock.advance(100)
    assert await c.all_threads() == []
    await seed(saver, "c", 1)
    assert len(_stored(saver)) <= 2
    assert (await c.sweep()).thread_ids in (["b"], [])
    assert await c.all_threads() == ["c"]
    await c.close()


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True])
def test_a_bad_max_threads(bad: Any) -> None:
    with pytest.raises(InvalidConfigError, match="max_threads"):
        MemorySaver(max_threads=bad)
