"""Bad input to the lifecycle API, on every backend, both call styles: each raises
InvalidConfigError naming the argument, and storage is byte for byte as before."""

from __future__ import annotations

import importlib
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.errors import InvalidConfigError

from ..reliability import raw
from .conftest import Calls, FakeClock
from .helpers import seed

Open = Callable[..., Awaitable[UnifiedCheckpointSaver]]

BAD_TTLS = [-1, 0, -0.0, math.nan, math.inf, -math.inf, timedelta(0), timedelta(seconds=-5),
            "10", True, [10]]


@pytest.fixture
async def seeded(open_lc: Open, fake_clock: FakeClock) -> UnifiedCheckpointSaver:
    saver = await open_lc(ttl=1000)
    await seed(saver, "a", 2, user="a")
    await seed(saver, "a", 1, ns="sub", user="a")
    await seed(saver, "b", 1, user="b")
    await saver.aset_ttl("b", None)
    fake_clock.advance(10)
    return saver


async def _refused(
    saver: UnifiedCheckpointSaver, cases: list[tuple[Callable[[], Awaitable[Any]], str]]
) -> None:
    """Each call raises InvalidConfigError naming its argument; storage stays as it was.
    (One saver for all the cases of a kind: the checks run before any storage call.)"""
    before = await raw.lifecycle_state(saver)
    for number, (call, naming) in enumerate(cases):
        with pytest.raises(InvalidConfigError, match=naming):
            await call()
        assert await raw.lifecycle_state(saver) == before, f"case {number} changed storage"


def _beyond(backend: str) -> float:
    from langgraph_unified_store.registry import backend_named

    entry = backend_named(backend)
    backend_class = getattr(importlib.import_module(entry.module), entry.backend)
    return float(backend_class.max_ttl) * 2


async def test_bad_ttl_and_lifecycle_options(open_lc: Open, lc_backend: str) -> None:
    cases: list[tuple[str, Any]] = [("ttl", bad) for bad in [*BAD_TTLS, _beyond(lc_backend)]]
    cases += [("refresh_on_read", "yes"), ("clock", 5), ("sweep_interval", 0),
              ("sweep_interval", -1), ("sweep_interval", math.nan)]
    for option, bad in cases:
        with pytest.raises(InvalidConfigError, match=option):
            await open_lc(**{option: bad})


async def test_bad_set_ttl(
    seeded: UnifiedCheckpointSaver, calls: Callable[[UnifiedCheckpointSaver], Calls]
) -> None:
    c = calls(seeded)
    bad_ttls = [*BAD_TTLS, seeded.backend.max_ttl * 2, seeded.backend.max_ttl + 1e6]
    await _refused(
        seeded,
        [(lambda bad=bad: c.set_ttl("a", bad), "ttl") for bad in bad_ttls]
        + [(lambda bad=bad: c.set_ttl(bad, 10), "thread") for bad in ["", None, 1.5, "nul\x00"]],
    )


async def test_set_ttl_at_the_backends_max_is_taken(
    seeded: UnifiedCheckpointSaver, calls: Callable[[UnifiedCheckpointSaver], Calls]
) -> None:
    c = calls(seeded)
    await c.set_ttl("a", seeded.backend.max_ttl)
    infos = {t.thread_id: t for t in (await c.list_threads()).threads}
    assert infos["a"].expires_at is not None
    assert infos["a"].expires_at == pytest.approx(
        infos["a"].last_write + seeded.backend.max_ttl, rel=1e-9
    )


async def test_bad_prune(
    seeded: UnifiedCheckpointSaver, calls: Callable[[UnifiedCheckpointSaver], Calls]
) -> None:
    c = calls(seeded)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"strategy": "keep_last", "keep": 0}, "keep"),
        ({"strategy": "keep_last", "keep": -1}, "keep"),
        ({"strategy": "keep_last", "keep": 1.5}, "keep"),
        ({"strategy": "keep_last", "keep": True}, "keep"),
        ({"strategy": "keep_last"}, "keep"),
        ({"strategy": "keep_latest", "keep": 2}, "keep"),
        ({"strategy": "delete", "keep": 1}, "keep"),
        ({"strategy": "keep_first"}, "strategy"),
    ]
    await _refused(
        seeded, [(lambda kw=kw: c.prune(["a", "b"], **kw), naming) for kw, naming in cases]
    )


async def test_bad_delete_threads(
    seeded: UnifiedCheckpointSaver,
    calls: Callable[[UnifiedCheckpointSaver], Calls],
    fake_clock: FakeClock,
) -> None:
    c = calls(seeded)
    cases: list[tuple[tuple[Any, ...], dict[str, Any], str]] = [
        ((timedelta(seconds=-10),), {}, "older_than"),
        ((-5,), {}, "older_than"),
        ((datetime.fromtimestamp(fake_clock.now + 60, UTC),), {}, "older_than"),  # the future
        ((datetime(2020, 1, 1),), {}, "older_than"),  # naive
        ((math.nan,), {}, "older_than"),
        ((math.inf,), {}, "older_than"),
        (("yesterday",), {}, "older_than"),
        ((True,), {}, "older_than"),
        ((), {}, "older_than"),  # neither an age nor a filter
        ((), {"filter": {}}, "older_than"),
        ((5,), {"filter": {1: "x"}}, "filter"),
        ((5,), {"filter": "user=a"}, "filter"),
        ((5,), {"filter": {"user": ["a"]}}, "filter"),
        ((5,), {"filter": {"user": math.nan}}, "filter"),
        ((5,), {"filter": {"us\x00er": "a"}}, "filter"),
        ((5,), {"limit": 0}, "limit"),
        ((5,), {"limit": -1}, "limit"),
        ((5,), {"limit": "1"}, "limit"),
    ]
    await _refused(
        seeded,
        [(lambda a=a, kw=kw: c.delete_threads(*a, **kw), naming) for a, kw, naming in cases],
    )


async def test_bad_forget(
    seeded: UnifiedCheckpointSaver, calls: Callable[[UnifiedCheckpointSaver], Calls]
) -> None:
    c = calls(seeded)
    bad_filters: list[Any] = [
        {}, None, "user", ["user"], {1: "a"}, {"user": None}, {"user": ["a"]},
        {"user": {"x": 1}}, {"user": math.inf}, {"\x00": "a"}, {"user": "a\x00"},
    ]
    await _refused(seeded, [(lambda bad=bad: c.forget(bad), "filter") for bad in bad_filters])


async def test_bad_list_threads(
    seeded: UnifiedCheckpointSaver, calls: Callable[[UnifiedCheckpointSaver], Calls]
) -> None:
    c = calls(seeded)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"filter": {2: "x"}}, "filter"),
        ({"updated_after": datetime(2020, 1, 1)}, "updated_after"),
        ({"updated_before": 5}, "updated_before"),
        ({"cursor": "nope"}, "cursor"),
    ]
    await _refused(seeded, [(lambda kw=kw: c.list_threads(**kw), naming) for kw, naming in cases])


async def test_bad_sweep_limit(
    seeded: UnifiedCheckpointSaver,
    calls: Callable[[UnifiedCheckpointSaver], Calls],
    fake_clock: FakeClock,
) -> None:
    fake_clock.advance(2000)  # "a" has expired: a sweep would remove it
    c = calls(seeded)
    await _refused(seeded, [(lambda bad=bad: c.sweep(limit=bad), "limit") for bad in [0, -1, 1.5, "2"]])
    assert (await c.sweep()).thread_ids == ["a"]


@pytest.mark.parametrize("number", [2.0**53, -(2.0**53), 2.0**60, 1e300])
def test_a_thread_filter_float_past_2_53_is_refused(number: float) -> None:
    """Backends compare such a float with a stored number differently (decimals, floats,
    exact ints), and a thread filter has no exact fallback: refused, naming the key,
    before any storage. (Ints of any size compare exactly: test_redis_lifecycle_storage.)"""
    from langgraph_unified_store import InvalidConfigError, MemorySaver

    saver = MemorySaver()
    for call in (
        lambda: saver.list_threads(filter={"n": number}),
        lambda: saver.delete_threads(older_than=0, filter={"n": number}),
        lambda: saver.forget({"n": number}),
    ):
        with pytest.raises(InvalidConfigError, match=r"'n'.*2\*\*53"):
            call()
