"""Bad input to the lifecycle API, on every backend, both call styles: each raises
InvalidConfigError naming the argument, and storage is byte for byte as before."""

from __future__ import annotations

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
    saver: UnifiedCheckpointSaver, call: Callable[[], Awaitable[Any]], naming: str
) -> None:
    before = await raw.lifecycle_state(saver)
    with pytest.raises(InvalidConfigError, match=naming):
        await call()
    assert await raw.lifecycle_state(saver) == before, "a refused call changes nothing"


@pytest.mark.parametrize("bad", [*BAD_TTLS, "beyond"], ids=repr)
async def test_a_bad_ttl_option(open_lc: Open, lc_backend: str, bad: Any) -> None:
    from langgraph_unified_store.registry import backend_named

    if bad == "beyond":
        backend_class = getattr(
            __import__(backend_named(lc_backend).module, fromlist=["x"]),
            backend_named(lc_backend).backend,
        )
        bad = backend_class.max_ttl * 2
    with pytest.raises(InvalidConfigError, match="ttl"):
        await open_lc(ttl=bad)


@pytest.mark.parametrize(
    ("option", "bad"),
    [("refresh_on_read", "yes"), ("clock", 5), ("sweep_interval", 0), ("sweep_interval", -1),
     ("sweep_interval", math.nan)],
)
async def test_other_bad_options(open_lc: Open, option: str, bad: Any) -> None:
    with pytest.raises(InvalidConfigError, match=option):
        await open_lc(**{option: bad})


@pytest.mark.parametrize("bad", [*BAD_TTLS, "beyond"], ids=repr)
async def test_a_bad_set_ttl(
    seeded: UnifiedCheckpointSaver, calls: Callable[[UnifiedCheckpointSaver], Calls], bad: Any
) -> None:
    if bad == "beyond":
        bad = seeded.backend.max_ttl * 2
    c = calls(seeded)
    await _refused(seeded, lambda: c.set_ttl("a", bad), "ttl")


async def test_set_ttl_at_the_backends_max_is_taken(
    seeded: UnifiedCheckpointSaver, calls: Callable[[UnifiedCheckpointSaver], Calls]
) -> None:
    c = calls(seeded)
    await c.set_ttl("a", seeded.backend.max_ttl)
    infos = {t.thread_id: t for t in (await c.list_threads()).threads}
    assert infos["a"].expires_at is not None
    assert infos["a"].expires_at == pytest.approx(infos["a"].last_write + seeded.backend.max_ttl, rel=1e-9)


@pytest.mark.parametrize("bad_thread", ["", None, 1.5, "nul\x00"], ids=repr)
async def test_set_ttl_bad_thread_id(
    seeded: UnifiedCheckpointSaver, calls: Callable[[UnifiedCheckpointSaver], Calls], bad_thread: Any
) -> None:
    c = calls(seeded)
    await _refused(seeded, lambda: c.set_ttl(bad_thread, 10), "thread")


@pytest.mark.parametrize(
    ("kwargs", "naming"),
    [
        ({"strategy": "keep_last", "keep": 0}, "keep"),
        ({"strategy": "keep_last", "keep": -1}, "keep"),
        ({"strategy": "keep_last", "keep": 1.5}, "keep"),
        ({"strategy": "keep_last", "keep": True}, "keep"),
        ({"strategy": "keep_last"}, "keep"),
        ({"strategy": "keep_latest", "keep": 2}, "keep"),
        ({"strategy": "delete", "keep": 1}, "keep"),
        ({"strategy": "keep_first"}, "strategy"),
    ],
)
async def test_bad_prune(
    seeded: UnifiedCheckpointSaver,
    calls: Callable[[UnifiedCheckpointSaver], Calls],
    kwargs: dict[str, Any],
    naming: str,
) -> None:
    c = calls(seeded)
    await _refused(seeded, lambda: c.prune(["a", "b"], **kwargs), naming)


@pytest.mark.parametrize(
    ("args", "kwargs", "naming"),
    [
        ((timedelta(seconds=-10),), {}, "older_than"),
        ((-5,), {}, "older_than"),
        (("future",), {}, "older_than"),
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
    ],
)
async def test_bad_delete_threads(
    seeded: UnifiedCheckpointSaver,
    calls: Callable[[UnifiedCheckpointSaver], Calls],
    fake_clock: FakeClock,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    naming: str,
) -> None:
    if args == ("future",):
        args = (datetime.fromtimestamp(fake_clock.now + 60, UTC),)
    c = calls(seeded)
    await _refused(seeded, lambda: c.delete_threads(*args, **kwargs), naming)


@pytest.mark.parametrize(
    "bad", [{}, None, "user", ["user"], {1: "a"}, {"user": None}, {"user": ["a"]},
            {"user": {"x": 1}}, {"user": math.inf}, {"\x00": "a"}, {"user": "a\x00"}],
    ids=repr,
)
async def test_bad_forget(
    seeded: UnifiedCheckpointSaver, calls: Callable[[UnifiedCheckpointSaver], Calls], bad: Any
) -> None:
    c = calls(seeded)
    await _refused(seeded, lambda: c.forget(bad), "filter")


@pytest.mark.parametrize(
    ("kwargs", "naming"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"filter": {2: "x"}}, "filter"),
        ({"updated_after": datetime(2020, 1, 1)}, "updated_after"),
        ({"updated_before": 5}, "updated_before"),
        ({"cursor": "nope"}, "cursor"),
    ],
)
async def test_bad_list_threads(
    seeded: UnifiedCheckpointSaver,
    calls: Callable[[UnifiedCheckpointSaver], Calls],
    kwargs: dict[str, Any],
    naming: str,
) -> None:
    c = calls(seeded)
    await _refused(seeded, lambda: c.list_threads(**kwargs), naming)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2"], ids=repr)
async def test_bad_sweep_limit(
    seeded: UnifiedCheckpointSaver,
    calls: Callable[[UnifiedCheckpointSaver], Calls],
    fake_clock: FakeClock,
    bad: Any,
) -> None:
    fake_clock.advance(2000)  # "a" has expired: a sweep would remove it
    c = calls(seeded)
    await _refused(seeded, lambda: c.sweep(limit=bad), "limit")
