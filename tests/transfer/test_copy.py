"""copy SRC DST: verified by reading back, idempotent, and a rerun after an
interruption finishes the job; the export streams, one thread at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from langgraph_unified_store.backends.memory import MemorySaver
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.transfer import (
    ImportConflictError,
    acopy,
    aexport_records,
    copy,
    export_to,
    import_from,
)
from langgraph_unified_store.transfer import copying as copy_module
from langgraph_unified_store.transfer import import_ as import_module
from langgraph_unified_store.transfer.format import Record, ThreadEnd

from ..store.conftest import FakeClock, Place
from ..support import put_numbered
from .conftest import open_place, store_on
from .histories import CHAT, build_history, thread_view

COPY_PAIRS = [("memory", "sqlite"), ("sqlite", "redis"), ("redis", "postgres")]


async def _same(source: UnifiedCheckpointSaver, target: UnifiedCheckpointSaver, threads: list[str]) -> None:
    for thread_id in threads:
        assert await thread_view(target, thread_id) == await thread_view(source, thread_id)


class Interrupted(Exception):
    """The copy was cut short (a lost connection, a killed process)."""


def _cut_after(count: int) -> Any:
    real = copy_module._numbered

    async def numbered(records: AsyncIterator[Record]) -> AsyncIterator[tuple[int, Record]]:
        async for number, record in real(records):
            if number > count:
                raise Interrupted
            yield number, record

    return numbered


@pytest.mark.parametrize(("source_backend", "target_backend"), COPY_PAIRS)
async def test_copy_is_verified_idempotent_and_finishes_after_an_interruption(
    source: UnifiedCheckpointSaver,
    target: UnifiedCheckpointSaver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads = await build_history(source, turns=2)
    progress: list[tuple[int, int | None]] = []
    # Cut short in the middle of the first thread's block, then in a later one.
    for cut in (14, 40):
        monkeypatch.setattr(copy_module, "_numbered", _cut_after(cut))
        with pytest.raises(Interrupted):
            await acopy(source, target)
    monkeypatch.undo()
    summary = await acopy(source, target, progress=lambda done, total: progress.append((done, total)))
    assert summary.verified and summary.threads == len(threads)
    assert summary.checkpoints_present > 0 and summary.checkpoints_written > 0
    assert progress[-1] == (len(threads), None)
    await _same(source, target, threads)
    again = await acopy(source, target)
    assert again.checkpoints_written == 0 and again.writes_written == 0
    assert again.checkpoints_present == summary.checkpoints_present + summary.checkpoints_written


async def test_a_copy_cut_between_a_checkpoint_and_its_writes_is_completed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = MemorySaver(), MemorySaver()
    threads = await build_history(source, turns=1)
    real = import_module.ThreadImport._put_writes
    calls = 0

    async def flaky(self: Any, config: Any, writes: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Interrupted
        await real(self, config, writes)

    monkeypatch.setattr(import_module.ThreadImport, "_put_writes", flaky)
    with pytest.raises(Interrupted):
        await acopy(source, target)
    written = await target.aget_tuple({"configurable": {"thread_id": CHAT}})
    assert written is not None and not written.pending_writes
    summary = await acopy(source, target)
    assert summary.writes_written > 0
    await _same(source, target, threads)


async def test_a_target_that_differs_is_refused_by_name(tmp_path: Path) -> None:
    source, target = MemorySaver(), MemorySaver()
    await put_numbered(source, "t", 1, x="source")
    await put_numbered(target, "t", 1, x="target")
    with pytest.raises(ImportConflictError, match=r"thread .t.*checkpoint.*differs") as raised:
        await acopy(source, target)
    assert raised.value.thread_id == "t"
    assert (await target.aget_tuple({"configurable": {"thread_id": "t"}})).checkpoint[  # type: ignore[union-attr]
        "channel_values"
    ] == {"x": "target"}


@pytest.mark.parametrize(("source_backend", "target_backend"), [("memory", "postgres"), ("sqlite", "redis")])
async def test_copy_of_store_items_is_verified_and_idempotent(
    source_backend: str, target_backend: str, places: list[Place], tmp_path: Path
) -> None:
    clock = FakeClock(1_700_000_000.123457)
    source = store_on(open_place(places, source_backend, tmp_path / "s"), clock)
    target = store_on(open_place(places, target_backend, tmp_path / "t"), FakeClock(clock.now))
    for n in range(7):
        clock.advance(0.25)
        await source.aput(("ns", str(n % 3)), f"k{n}", {"text": f"item {n}", "n": n})
    summary = await acopy(None, None, source_store=source, target_store=target)
    assert summary.store_items_written == 7 and summary.verified
    again = await acopy(None, None, source_store=source, target_store=target)
    assert again.store_items_written == 0 and again.store_items_skipped == 7
    got = sorted((i.namespace, i.key, i.value, i.updated_at) for i in await target.asearch((), limit=20))
    assert got == sorted((i.namespace, i.key, i.value, i.updated_at) for i in await source.asearch((), limit=20))
    await source.aclose()
    await target.aclose()


async def test_the_export_reads_one_thread_at_a_time() -> None:
    """200 threads: when a thread's block ends, no later thread has been read yet."""
    saver = MemorySaver()
    for n in range(200):
        await put_numbered(saver, f"thread-{n:03d}", 1, x=n)
        await put_numbered(saver, f"thread-{n:03d}", 2, x=[n] * 50)
    read: set[str] = set()
    real_get = saver.backend.get_checkpoint

    async def get_checkpoint(thread_id: str, ns: str, checkpoint_id: str | None) -> Any:
        read.add(thread_id)
        return await real_get(thread_id, ns, checkpoint_id)

    saver.backend.get_checkpoint = get_checkpoint  # type: ignore[method-assign]
    ended = 0
    async for record in aexport_records(saver):
        if isinstance(record, ThreadEnd):
            ended += 1
            assert len(read) == ended
    assert ended == 200


def test_the_blocking_twins(tmp_path: Path) -> None:
    source = MemorySaver()
    for n in range(3):
        source.put(
            {"configurable": {"thread_id": "b", "checkpoint_ns": ""}},
            {"v": 4, "id": f"1ef00000-0000-6000-8000-{n:012d}", "ts": "2024-01-01T00:00:00+00:00",
             "channel_values": {"x": n}, "channel_versions": {"x": f"a{n + 1}.000000"},
             "versions_seen": {}, "updated_channels": ["x"]},
            {"step": n}, {"x": f"a{n + 1}.000000"},
        )
    path = tmp_path / "export.jsonl"
    assert export_to(path, source).checkpoints == 3
    target = MemorySaver()
    assert import_from(path, target).checkpoints_written == 3
    assert list(target.list(None)) == list(source.list(None))
    other = MemorySaver()
    assert copy(source, other).checkpoints_written == 3
    assert list(other.list(None)) == list(source.list(None))
