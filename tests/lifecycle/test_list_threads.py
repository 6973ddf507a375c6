"""list_threads on every backend, both call styles: cursor pages cover every thread once,
sorted by id; filters and time bounds; the fields an operator reads; bad cursors."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langgraph_unified_store.core.lifecycle import LIST_THREADS_MAX, ThreadPage, encode_cursor
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.core.validate import text_problem
from langgraph_unified_store.errors import InvalidConfigError

from ..support import config_for
from .conftest import Calls, FakeClock
from .helpers import seed

Open = Callable[..., Awaitable[UnifiedCheckpointSaver]]

# Ids whose order differs between code points and a locale's collation.
IDS = ["B", "a", "a b", "a-b", "aB", "ab", "t:1", "t:10", "t:2", "ä", "z", "~"]


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def _each_ten_seconds(saver: UnifiedCheckpointSaver, fake_clock: FakeClock) -> float:
    """IDS[i] written at t0 + 10 i, in a shuffled order of writing; returns t0."""
    t0 = fake_clock.now
    for i in [5, 0, 11, 3, 8, 1, 10, 2, 7, 4, 9, 6]:
        fake_clock.now = t0 + 10 * i
        await seed(saver, IDS[i], 1, writes=False)
    fake_clock.now = t0 + 200
    return t0


@pytest.mark.parametrize("size", [1, 5, 12, 100])
async def test_pages_cover_every_thread_once_in_order(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock, size: int
) -> None:
    saver = await open_lc()
    c = calls(saver)
    await _each_ten_seconds(saver, fake_clock)
    # A thread holding only writes (no checkpoint) is no thread to list.
    await saver.aput_writes(config_for("writes-only", "1ef00000-0000-6000-8000-000000000001"),
                            [("v", 1)], "task")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await c.list_threads(limit=size, cursor=cursor)
        pages += 1
        assert len(page.threads) <= size
        seen += [t.thread_id for t in page.threads]
        if page.next_cursor is None:
            break
        assert len(page.threads) == size, "only the last page is short"
        cursor = page.next_cursor
    assert seen == sorted(IDS), "each thread once, sorted by code point"
    assert pages == max(1, -(-len(IDS) // size))


async def test_filter_and_time_bounds(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc()
    c = calls(saver)
    t0 = await _each_ten_seconds(saver, fake_clock)
    await seed(saver, "sub-only", 1, ns="child", owner="ä")  # matches in a subgraph namespace
    assert await c.all_threads(filter={"owner": "ä"}) == ["sub-only", "ä"]
    assert await c.all_threads(filter={"owner": "nobody"}) == []
    after = await c.all_threads(updated_after=at(t0 + 50), limit=2)
    assert after == sorted([IDS[i] for i in range(6, 12)] + ["sub-only"])
    before = await c.all_threads(updated_before=at(t0 + 30), limit=2)
    assert before == sorted(IDS[:3]), "strictly before"
    both = await c.all_threads(updated_after=at(t0 + 20), updated_before=at(t0 + 60))
    assert both == sorted(IDS[3:6])
    assert await c.all_threads(updated_after=at(t0 + 40), filter={"owner": IDS[4]}) == []
    assert await c.all_threads(updated_after=at(t0 + 39), filter={"owner": IDS[4]}) == [IDS[4]]


async def test_fields(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls], fake_clock: FakeClock
) -> None:
    saver = await open_lc(ttl=1000)
    c = calls(saver)
    first = fake_clock.now
    await seed(saver, "t", 3)
    fake_clock.advance(40)
    await seed(saver, "t", 2, ns="child:x")
    fake_clock.advance(20)
    last = fake_clock.now
    config = await seed(saver, "t", 1, ns="child:y", writes=False)
    await seed(saver, "small", 1, writes=False)
    await c.set_ttl("small", None)
    fake_clock.advance(5)
    page = await c.list_threads()
    assert page.next_cursor is None
    small, info = page.threads
    assert info.thread_id == "t"
    assert info.namespaces == ("", "child:x", "child:y")
    assert info.checkpoints == 6
    assert info.first_write == pytest.approx(first, abs=1e-3)
    assert info.last_write == pytest.approx(last, abs=1e-3)
    assert info.expires_at == pytest.approx(last + 1000, abs=1e-2)
    assert small.expires_at is None and small.checkpoints == 1 and small.namespaces == ("",)
    if info.stored_bytes is not None:
        assert isinstance(info.stored_bytes, int) and info.stored_bytes > small.stored_bytes > 0  # type: ignore[operator]
    shown = info.as_dict()
    assert shown["first_write"] == at(info.first_write).isoformat()
    assert orjson.loads(orjson.dumps(shown))["namespaces"] == ["", "child:x", "child:y"]
    # A later write to the thread moves its last write and expiry, not its first write.
    fake_clock.advance(100)
    await saver.aput_writes(config[-1], [("v", "x")], "task")
    [info] = (await c.list_threads(filter={"owner": "t"})).threads
    assert info.first_write == pytest.approx(first, abs=1e-3)
    assert info.last_write == pytest.approx(fake_clock.now, abs=1e-3)
    assert info.expires_at == pytest.approx(fake_clock.now + 1000, abs=1e-2)


BAD_CURSORS: list[Any] = [
    "",
    "garbage",
    "!!!",
    base64.urlsafe_b64encode(b"not json").decode(),
    base64.urlsafe_b64encode(orjson.dumps(["x", "t"])).decode(),
    base64.urlsafe_b64encode(orjson.dumps(["t", 5])).decode(),
    base64.urlsafe_b64encode(orjson.dumps({"t": "a"})).decode(),
    base64.urlsafe_b64encode(orjson.dumps(["t", "a\x00"])).decode(),  # an id no backend stores
    encode_cursor("t")[:-2],
    b"bytes",
    5,
    ["t", "a"],
]


async def test_a_bad_cursor_or_limit(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls]
) -> None:
    saver = await open_lc()
    c = calls(saver)
    await seed(saver, "t", 1)
    for cursor in BAD_CURSORS:
        with pytest.raises(InvalidConfigError, match="cursor"):
            await c.list_threads(cursor=cursor)
    for limit in [0, -1, LIST_THREADS_MAX + 1, 1.5, "10", True, None]:
        with pytest.raises(InvalidConfigError, match="limit"):
            await c.list_threads(limit=limit)
    assert len((await c.list_threads(limit=LIST_THREADS_MAX)).threads) == 1
    assert (await c.list_threads(cursor=encode_cursor("t"))).threads == []


def _valid_cursor(value: Any) -> bool:
    """Whether a value is a cursor list_threads could have given (then it must work)."""
    try:
        kind, thread_id = orjson.loads(base64.urlsafe_b64decode(value.encode("ascii")))
    except Exception:
        return False
    return kind == "t" and isinstance(thread_id, str) and text_problem(thread_id) is None


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=5,
)
_cursors = st.one_of(
    st.text(),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="),
    st.binary(),
    st.builds(lambda v: base64.urlsafe_b64encode(orjson.dumps(v)).decode(), _json),
    st.builds(lambda t: encode_cursor(t)[:-1], st.text(min_size=1)),
    st.builds(encode_cursor, st.text()),
    st.builds(encode_cursor, st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cs", "Ll"]))),
    st.integers(),
    st.floats(),
    st.lists(st.text(), max_size=2),
)


async def test_any_cursor_is_a_page_or_invalid_config(
    open_lc: Open, api: str, fake_clock: FakeClock
) -> None:
    """Property: whatever is passed as a cursor, list_threads returns a page (for a
    cursor it could have given) or raises InvalidConfigError; never anything else."""
    saver = await open_lc()
    await seed(saver, "t", 1, writes=False)
    loop = asyncio.get_running_loop()

    def list_threads(cursor: Any) -> ThreadPage:
        if api == "blocking":
            return saver.list_threads(cursor=cursor)
        return asyncio.run_coroutine_threadsafe(saver.alist_threads(cursor=cursor), loop).result(30)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_cursors)
    def check(cursor: Any) -> None:
        try:
            page = list_threads(cursor)
        except InvalidConfigError:
            assert not _valid_cursor(cursor)
            return
        assert _valid_cursor(cursor), f"{cursor!r} was taken as a cursor"
        assert isinstance(page, ThreadPage)

    await asyncio.to_thread(check)
