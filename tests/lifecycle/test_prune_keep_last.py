"""prune(strategy="keep_last", keep=N) on every backend, both call styles: the N newest
checkpoints of each namespace stay (and the DeltaChannel ancestors they need), each
loads whole, and nothing is left behind."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..reliability import raw
from ..support import config_for, numbered_checkpoint, put_numbered, thread_config
from ..test_delta_channel import _expected, _run, log_graph
from ..test_graphs import nested_graph
from .conftest import Calls
from .helpers import NONE_LEFT, all_load

Open = Callable[..., Awaitable[UnifiedCheckpointSaver]]


async def _numbered(saver: UnifiedCheckpointSaver, thread_id: str, count: int) -> None:
    """Checkpoints 1..count in the root namespace and in "sub:1", each with a write."""
    for ns in ("", "sub:1"):
        for number in range(1, count + 1):
            config = await put_numbered(saver, thread_id, number, ns=ns, value=f"{ns}-{number}")
            await saver.aput_writes(config, [("value", f"w-{ns}-{number}")], "task")


def _id(number: int) -> str:
    return str(numbered_checkpoint(number)["id"])


async def _kept(c: Calls, thread_id: str) -> set[tuple[str, str]]:
    return {
        (t.config["configurable"]["checkpoint_ns"], t.checkpoint["id"])
        for t in await c.list(thread_config(thread_id))
    }


async def test_keep_last_keeps_the_newest_of_each_namespace(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls]
) -> None:
    saver = await open_lc()
    c = calls(saver)
    await _numbered(saver, "t", 6)
    await _numbered(saver, "other", 3)
    await c.prune(["t"], strategy="keep_last", keep=3)
    assert await _kept(c, "t") == {(ns, _id(n)) for ns in ("", "sub:1") for n in (4, 5, 6)}
    for ns in ("", "sub:1"):
        for number in range(1, 7):
            loaded = await c.get_tuple(config_for("t", _id(number), ns=ns))
            if number <= 3:
                assert loaded is None
                continue
            assert loaded is not None
            assert loaded.checkpoint["channel_values"] == {"value": f"{ns}-{number}"}
            assert [w[2] for w in loaded.pending_writes or []] == [f"w-{ns}-{number}"]
    assert await raw.checkpoint_count(saver, "t") == 6
    assert await raw.orphans(saver, ["t", "other"]) == NONE_LEFT
    assert len(await _kept(c, "other")) == 6, "other threads are untouched"
    # Keeping more than there are removes nothing.
    await c.prune(["t"], strategy="keep_last", keep=10)
    assert len(await _kept(c, "t")) == 6
    await c.prune(["t", "other"], strategy="keep_last", keep=1)
    assert await _kept(c, "t") == {("", _id(6)), ("sub:1", _id(6))}
    assert await _kept(c, "other") == {("", _id(3)), ("sub:1", _id(3))}
    assert await raw.orphans(saver, ["t", "other"]) == NONE_LEFT


async def test_keep_last_one_is_keep_latest(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls]
) -> None:
    saver = await open_lc()
    c = calls(saver)
    await _numbered(saver, "last", 4)
    await _numbered(saver, "latest", 4)
    await c.prune(["last"], strategy="keep_last", keep=1)
    await c.prune(["latest"], strategy="keep_latest")
    assert await _kept(c, "last") == await _kept(c, "latest") == {("", _id(4)), ("sub:1", _id(4))}
    last, latest = await raw.stored_thread(saver, "last"), await raw.stored_thread(saver, "latest")
    assert (len(last.blobs), len(last.writes), len(last.items)) == (
        len(latest.blobs), len(latest.writes), len(latest.items)
    )
    assert await raw.orphans(saver, ["last", "latest"]) == NONE_LEFT


async def test_keep_last_on_a_graph_with_a_subgraph(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls]
) -> None:
    saver = await open_lc()
    c = calls(saver)
    graph = nested_graph(saver)
    for _ in range(2):
        await graph.ainvoke({"items": []}, thread_config("g"))
    before = await c.list(thread_config("g"))
    by_ns: dict[str, list[Any]] = {}
    for t in before:  # newest first within each namespace
        by_ns.setdefault(t.config["configurable"]["checkpoint_ns"], []).append(t)
    assert len(by_ns) >= 3 and all(len(ts) > 2 for ts in by_ns.values()), "a root and two child runs"
    wanted = {ns: ts[:2] for ns, ts in by_ns.items()}
    await c.prune(["g"], strategy="keep_last", keep=2)
    assert await _kept(c, "g") == {
        (ns, t.checkpoint["id"]) for ns, ts in wanted.items() for t in ts
    }
    for ts in wanted.values():
        for t in ts:
            loaded = await c.get_tuple(t.config)
            assert loaded is not None
            assert loaded.checkpoint["channel_values"] == t.checkpoint["channel_values"]
    assert await all_load(saver, ["g"]) == sum(len(ts) for ts in wanted.values())
    assert await raw.orphans(saver, ["g"]) == NONE_LEFT
    result = await graph.ainvoke({"items": []}, thread_config("g"))
    assert result["items"][-1] == "after", "the pruned thread goes on"


async def test_keep_last_keeps_the_delta_channel_ancestors(
    open_lc: Open, calls: Callable[[UnifiedCheckpointSaver], Calls]
) -> None:
    saver = await open_lc()
    c = calls(saver)
    await _run(saver, "d", 5)
    await _run(saver, "plain", 1)
    graph = log_graph(saver)
    newest = (await c.list(config_for("d")))[:3]
    states = [(t.config, (await graph.aget_state(t.config)).values) for t in newest]
    assert states[0][1]["log"] == _expected(5)
    await c.prune(["d"], strategy="keep_last", keep=3)
    kept = await c.list(config_for("d"))
    assert [t.checkpoint["id"] for t in kept[:3]] == [t.checkpoint["id"] for t in newest]
    assert len(kept) > 3, "the delta channel's ancestors back to a snapshot stay"
    assert len(kept) < 5 * 4
    for config, values in states:
        assert (await graph.aget_state(config)).values == values
    for t in kept:  # every kept ancestor loads too
        assert await c.get_tuple(t.config) is not None
        await graph.aget_state(t.config)
    assert await raw.orphans(saver, ["d", "plain"]) == NONE_LEFT
    # keep=1 matches keep_latest on a twin thread.
    await _run(saver, "d1", 5)
    await _run(saver, "d2", 5)
    await c.prune(["d1"], strategy="keep_last", keep=1)
    await c.prune(["d2"], strategy="keep_latest")
    one, latest = await c.list(config_for("d1")), await c.list(config_for("d2"))
    assert len(one) == len(latest)
    assert [t.metadata["step"] for t in one] == [t.metadata["step"] for t in latest]
    assert (await graph.aget_state(config_for("d1"))).values["log"] == _expected(5)
    assert (await graph.aget_state(config_for("d2"))).values["log"] == _expected(5)
    assert await raw.orphans(saver, ["d1", "d2"]) == NONE_LEFT
