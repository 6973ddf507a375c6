"""Hostile input on every backend: each is stored and read back exactly, or refused with
a clear error, and nothing else is damaged.

Filter keys and values that would be SQL or Redis-pattern injection if spliced into a
query; thread ids with quotes, braces, globs, separators, NUL, unicode and 10,000
characters; a 50 MB state; values that cannot be serialized; and stored rows corrupted
on purpose, which must read as a ``CorruptDataError`` naming thread and checkpoint,
never as a silently shortened list, while other threads stay readable.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from langgraph_unified_store import (
    CorruptDataError,
    InvalidConfigError,
    SerializationError,
    UnifiedStoreError,
)
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import ALL_BACKENDS, saver_for
from . import figures, raw
from .hostile import (
    make_bystander,
    put_state,
    reader_of,
    sandboxed_saver,
    snapshot,
    thread_tuples,
)
from .private_servers import PrivateRedis

INJECTIONS = (
    "source'; DROP TABLE checkpoints; --",
    "*",
    "?",
    "[a-z]",
    "{x}",
    "\\",
    "%",
    "_",
    "' OR '1'='1",
    '"; FLUSHALL; "',
    "$.source",
    "a.b",
    "metadata->>'source'",
)


async def test_filter_injection_matches_exactly(saver: UnifiedCheckpointSaver, backend_name: str) -> None:
    before = await make_bystander(saver)
    for step, text in enumerate(INJECTIONS):
        await put_state(saver, "filters", {"counter": step}, {"step": step, text: text, "tag": text})

    async def steps(filter: dict[str, Any]) -> list[int]:
        return sorted([t.metadata["step"] async for t in saver.alist(None, filter=filter)])

    for step, text in enumerate(INJECTIONS):
        assert await steps({text: text}) == [step], f"filter key {text!r}"
        assert await steps({"tag": text}) == [step], f"filter value {text!r}"
        assert await steps({"source": text}) == [], f"filter value {text!r} on another key"
        assert await steps({text: "nothing"}) == [], f"filter key {text!r} with another value"
        figures.count(backend_name, figures.HOSTILE_INPUTS, 4)
    # Glob and LIKE characters are plain text, never patterns.
    assert await steps({"owner": "*"}) == []
    assert await steps({"owner": "bystand%"}) == []
    assert await steps({"owner": "bystande?"}) == []
    # A NUL in a filter value either matches nothing or is refused clearly.
    try:
        assert await steps({"tag": "\x00"}) == []
    except UnifiedStoreError as exc:
        assert "filter" in str(exc) or "NUL" in str(exc) or "\\x00" in str(exc), str(exc)
    figures.count(backend_name, figures.HOSTILE_INPUTS, 4)
    assert await snapshot(saver, "bystander") == before
    assert len([t async for t in saver.alist(None)]) == len(before) + len(INJECTIONS)


HOSTILE_THREAD_IDS = (
    "it's \"quoted\"",
    "{braces}",
    "{x}:{y}",
    "*",
    "?",
    "[a-z]",
    "bystander*",
    "bystande?",
    "a:b:c",
    "\\",
    "%",
    "_",
    "' OR 1=1 --",
    " ",
    "line\nbreak",
    "\x00",
    "nul\x00inside",
    "缓存-🧵-ñ-\u202e",
    "t" * 10_000,
)


async def test_hostile_thread_ids(saver: UnifiedCheckpointSaver, backend_name: str) -> None:
    before = await make_bystander(saver)
    values = {
        "messages": [{"content": f"element {i} " + "z" * 80} for i in range(20)],
        "counter": 1,
    }
    stored: list[str] = []
    refused: list[tuple[str, UnifiedStoreError]] = []
    for thread_id in HOSTILE_THREAD_IDS:
        figures.count(backend_name, figures.HOSTILE_INPUTS)
        try:
            config = await put_state(saver, thread_id, values, checkpoint_ns="ns'*{x}:")
        except UnifiedStoreError as exc:
            # Refusing is fine when it is clear and names the thread id.
            assert "thread" in str(exc), f"{thread_id[:40]!r} refused without saying why: {exc}"
            refused.append((thread_id, exc))
            continue
        stored.append(thread_id)
        await saver.aput_writes(config, [("counter", 2)], "task-1")
        got = await saver.aget_tuple(config)
        assert got is not None, f"{thread_id[:40]!r}: stored checkpoint not found"
        assert got.config["configurable"]["thread_id"] == thread_id
        assert got.checkpoint["channel_values"] == values
        assert [(c, v) for _, c, v in got.pending_writes] == [("counter", 2)]
        listed = await thread_tuples(saver, thread_id)
        assert [t.checkpoint["id"] for t in listed] == [got.checkpoint["id"]], (
            f"{thread_id[:40]!r}: list() returned another thread's checkpoints"
        )
    # NUL is the only character a backend may refuse (PostgreSQL text cannot hold it).
    assert all("\x00" in thread_id for thread_id, _ in refused), refused
    assert set(stored) <= set(await saver.alist_workflows())
    assert await snapshot(saver, "bystander") == before
    # Deleting hostile threads (globs among them) deletes exactly those threads.
    for thread_id in stored:
        await saver.adelete_thread(thread_id)
        assert await thread_tuples(saver, thread_id) == []
    assert await snapshot(saver, "bystander") == before
    assert await saver.alist_workflows() == ["bystander"]


@pytest.mark.timeout(180)
async def test_fifty_megabyte_state(saver: UnifiedCheckpointSaver, backend_name: str) -> None:
    before = await make_bystander(saver)
    big = os.urandom(40 * 1024 * 1024)
    documents = [f"document {i}:".encode() + os.urandom(1024 * 1024) for i in range(10)]
    config = await put_state(saver, "big", {"blob": big, "documents": documents, "small": 1})
    got = await saver.aget_tuple(config)
    assert got is not None
    values = got.checkpoint["channel_values"]
    assert values["blob"] == big, "the 40 MB value came back different"
    assert values["documents"] == documents, "the 10 x 1 MB list came back different"
    del got, values
    await saver.adelete_thread("big")
    assert await snapshot(saver, "bystander") == before
    figures.count(backend_name, figures.HOSTILE_INPUTS)


async def test_unserializable_values_name_their_path(
    saver: UnifiedCheckpointSaver, backend_name: str, tmp_path: Path
) -> None:
    before = await make_bystander(saver)
    first = await put_state(saver, "victim", {"counter": 1})
    victim_before = await snapshot(saver, "victim")
    with socket.socket() as sock, open(tmp_path / "f.txt", "w") as handle:
        for bad, kind in ((lambda: 1, "function"), (sock, "socket"), (handle, "TextIOWrapper")):
            value = [{"ok": 1}, {"key": bad, "fine": "yes"}]
            with pytest.raises(SerializationError) as caught:
                await put_state(saver, "victim", {"x": value, "counter": 2},
                                parent=first["configurable"]["checkpoint_id"])
            message = str(caught.value)
            assert "'x'" in message and "[1]['key']" in message and kind in message, message
            # A pending write: the first (good) write of the batch must not land either.
            with pytest.raises(SerializationError) as caught:
                await saver.aput_writes(first, [("counter", 5), ("x", value)], "task-bad")
            message = str(caught.value)
            assert "'x'" in message and "[1]['key']" in message and kind in message, message
            # Nested in a dict inside a list inside a dict (not a list value).
            with pytest.raises(SerializationError) as caught:
                await put_state(saver, "victim", {"x": {"outer": [{"key": bad}]}})
            assert "['outer'][0]['key']" in str(caught.value), str(caught.value)
            figures.count(backend_name, figures.HOSTILE_INPUTS, 3)
    assert await snapshot(saver, "victim") == victim_before, "a refused value left something behind"
    assert await snapshot(saver, "bystander") == before


def _corruption_cases() -> list[Any]:
    cases = []
    for backend in ALL_BACKENDS:
        for target in raw.targets_for(backend):
            marks = raw.known_bug(backend, target)
            cases.append(pytest.param(backend, target, marks=marks, id=f"{backend}-{target}"))
    return cases


READ_BOUND = 30.0


def _garbage() -> bytes:
    # 0xc1 is never valid msgpack, so no decoder can mistake this for data.
    return b"\xc1" + os.urandom(40)


@pytest.mark.parametrize(("backend", "target"), _corruption_cases())
async def test_corrupted_rows_fail_loudly(
    backend: str, target: str, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    async with sandboxed_saver(backend, tmp_path, sandbox_redis) as saver:
        before = await make_bystander(saver)
        values = {
            "messages": [{"content": f"element {i} " + "z" * 80} for i in range(40)],
            "counter": 1,
        }
        config = await put_state(saver, "victim", values)
        checkpoint_id = config["configurable"]["checkpoint_id"]
        await saver.aput_writes(config, [("messages", [{"content": "w" * 100}])], "task-1")
        if target.startswith("missing-"):
            await raw.delete(saver, "victim", target.removeprefix("missing-"))
        else:
            await raw.overwrite(saver, "victim", target, raw.garbage_for(backend, target, _garbage()))

        def names_it(exc: BaseException) -> None:
            assert isinstance(exc, CorruptDataError), f"{target}: {type(exc).__name__}: {exc}"
            assert "'victim'" in str(exc) and checkpoint_id in str(exc), str(exc)

        # A reader with nothing cached, as a process that starts after the damage.
        async with reader_of(saver) as reader:
            for read in (
                lambda: reader.aget_tuple(config),
                lambda: reader.aget_tuple({"configurable": {"thread_id": "victim"}}),
                lambda: thread_tuples(reader, "victim"),
                lambda: thread_tuples(reader, None),  # type: ignore[arg-type]
            ):
                with pytest.raises(Exception) as caught:
                    # Bounded: a garbled value must never make a read hang (or stall a server).
                    await asyncio.wait_for(read(), READ_BOUND)
                names_it(caught.value)
            assert await snapshot(reader, "bystander") == before
        # Filtered listing of other threads, and the other thread itself, still work.
        assert await snapshot(saver, "bystander") == before
        assert len([t async for t in saver.alist(
            {"configurable": {"thread_id": "bystander"}}, filter={"owner": "bystander"}
        )]) == 2
        # The damaged thread can still be deleted, and the store is whole again.
        await saver.adelete_thread("victim")
        assert len([t async for t in saver.alist(None)]) == 2
        figures.count(backend, figures.HOSTILE_INPUTS)


async def test_filter_values_are_type_exact(saver: UnifiedCheckpointSaver, backend_name: str) -> None:
    """true is not 1, "1" is not 1, and integers past 2**53 (where doubles, as in Lua or
    JSON engines, round) are not their neighbours."""
    big = 2**53
    values: list[Any] = [1, True, "1", 0, False, "", big, big + 1, -big - 1, "true"]
    for step, value in enumerate(values):
        await put_state(saver, "types", {"n": step}, {"step": step, "v": value})
    for step, value in enumerate(values):
        found = sorted([t.metadata["step"] async for t in saver.alist(None, filter={"v": value})])
        assert found == [step], f"filter v={value!r} matched steps {found}"
        figures.count(backend_name, figures.HOSTILE_INPUTS)
    assert [t async for t in saver.alist(None, filter={"v": None})] == []
    assert [t async for t in saver.alist(None, filter={"v": 1, "step": 1})] == []


async def test_hostile_run_ids_delete_exactly_their_run(
    saver: UnifiedCheckpointSaver, backend_name: str
) -> None:
    before = await make_bystander(saver)
    runs = ["*", "run-?", "[a-z]", "{x}", "' OR 1=1 --", "%", "run:1", "r" * 5000]
    for run in runs:
        await put_state(saver, f"thread-of-{run[:20]}", {"n": 1}, {"run_id": run})
    await put_state(saver, "thread-of-other", {"n": 1}, {"run_id": "run-1"})
    for run in runs:
        await saver.adelete_for_runs([run])
        assert await thread_tuples(saver, f"thread-of-{run[:20]}") == [], f"run {run[:20]!r} survived"
        assert len(await thread_tuples(saver, "thread-of-other")) == 1, f"deleting {run[:20]!r} hit run-1"
        figures.count(backend_name, figures.HOSTILE_INPUTS)
    assert await snapshot(saver, "bystander") == before
    # Copying and pruning threads with glob-like ids touches only those threads.
    await put_state(saver, "*", {"n": 1})
    await saver.acopy_thread("*", "[copy]*")
    await saver.aprune(["*"], strategy="keep_latest")
    assert len(await thread_tuples(saver, "[copy]*")) == 1
    assert await snapshot(saver, "bystander") == before


@pytest.mark.parametrize(
    "backend",
    [
        "memory",
        "sqlite",
        "postgres",
        "redis",
    ],
)
async def test_lone_surrogate_thread_id(backend: str, tmp_path: Path) -> None:
    """A Python str may hold a lone surrogate (not valid Unicode, so not UTF-8): it is
    stored and read back exactly, or refused as InvalidConfigError naming the thread."""
    thread_id = "lone \ud800 surrogate"
    async with saver_for(backend, tmp_path) as saver:
        before = await make_bystander(saver)
        try:
            config = await put_state(saver, thread_id, {"n": 1})
        except InvalidConfigError as exc:
            assert "thread" in str(exc), str(exc)
        else:
            got = await saver.aget_tuple(config)
            assert got is not None and got.config["configurable"]["thread_id"] == thread_id
        assert await snapshot(saver, "bystander") == before
        figures.count(backend, figures.HOSTILE_INPUTS)
