"""Export from each backend, import into each (all 16 pairs): every checkpoint, pending
write and store item reads back equal, with history order, parents and namespaces."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.transfer import aexport_to, aimport_from

from ..store.conftest import FakeClock, Place, fake_vector
from ..support import ALL_BACKENDS
from .conftest import open_place, store_on
from .histories import INTERRUPTED, NESTED, build_history, thread_view

PAIRS = [(s, t) for s in ALL_BACKENDS for t in ALL_BACKENDS]


@pytest.mark.parametrize(("source_backend", "target_backend"), PAIRS)
async def test_threads_round_trip_between_backends(
    source: UnifiedCheckpointSaver, target: UnifiedCheckpointSaver
) -> None:
    threads = await build_history(source, turns=2)
    exported = io.BytesIO()
    trailer = await aexport_to(exported, source)
    assert trailer.threads == len(threads)
    exported.seek(0)
    summary = await aimport_from(exported, target, verify=True)
    assert summary.threads == len(threads)
    assert summary.checkpoints_written == trailer.checkpoints
    for thread_id in threads:
        assert await thread_view(target, thread_id) == await thread_view(source, thread_id)
    # What the history holds: forks (parents), pending writes, a subgraph namespace.
    interrupted = await target.aget_tuple({"configurable": {"thread_id": INTERRUPTED}})
    assert interrupted is not None
    assert {channel for _, channel, _ in interrupted.pending_writes or []} >= {"log", "__interrupt__"}
    assert len(await thread_view(target, NESTED)) == 2
    # The export is the same whichever backend it came from (but for its header).
    again = io.BytesIO()
    await aexport_to(again, target)
    assert _body(again.getvalue()) == _body(exported.getvalue())


def _body(data: bytes) -> list[Any]:
    return [orjson.loads(line) for line in data.splitlines()[1:]]


async def _fill_store(store: Any, clock: FakeClock) -> None:
    await store.aput(("users", "ann"), "profile", {"text": "likes tea", "age": 41})
    clock.advance(5)
    await store.aput(("users", "bob"), "profile", {"text": "likes coffee", "tags": ["a", "b"]})
    await store.aput(("users", "bob", "notes"), "n1", {"text": "met ann", "nested": {"x": 1.5}})
    await store.aput(("docs",), "timed", {"text": "expires later"}, ttl=60)
    await store.aput(("docs",), "unindexed", {"body": "no text field"}, index=False)


async def _store_view(store: Any) -> Any:
    items = await store.asearch((), limit=100)
    ranked = await store.asearch(("users",), query="tea", limit=10)
    return (
        sorted((i.namespace, i.key, i.value, i.created_at, i.updated_at) for i in items),
        [(i.namespace, i.key, round(i.score, 6)) for i in ranked],
        await store.alist_namespaces(),
    )


@pytest.mark.parametrize(("source_backend", "target_backend"), PAIRS)
async def test_store_items_round_trip_between_backends(
    source_backend: str, target_backend: str, places: list[Place], tmp_path: Path
) -> None:
    clock = FakeClock()
    source = store_on(open_place(places, source_backend, tmp_path / "s"), clock)
    target = store_on(open_place(places, target_backend, tmp_path / "t"), FakeClock(clock.now))
    await _fill_store(source, clock)
    exported = io.BytesIO()
    trailer = await aexport_to(exported, store=source)
    assert trailer.store_items == 5
    exported.seek(0)
    summary = await aimport_from(exported, store=target, verify=True)
    assert summary.store_items_written == 5
    assert await _store_view(target) == await _store_view(source)
    assert fake_vector("x") == fake_vector("x")
    await source.aclose()
    await target.aclose()
