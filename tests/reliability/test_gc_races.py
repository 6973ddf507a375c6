"""Garbage collection never loses data silently, on every backend, through both APIs.

- A writer holds head X; another writer appends Z; a third saver prunes (keeps Z, collects
  what only X named), deletes X's run or deletes the thread. The first writer then puts a
  child of X that inherits X's message list without sending it: the put must notice the
  blob is gone and send it again, and the child reads back every message.
- Two writer processes and a third collecting garbage in a loop: every surviving
  checkpoint reads back exactly what was acknowledged, and no stored row names a blob
  or item that is gone (checked on the raw rows and keys).
- A blob or item removed behind the saver's back is a CorruptDataError naming the
  channel, never an absent channel or a shorter list; checkpoints written by the previous
  release (no channel kinds in the skeleton) still read as they did.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint

from langgraph_unified_store import CorruptDataError, MemorySaver
from langgraph_unified_store.core.saver import (
    CHANNEL_KINDS_KEY,
    NONE_CHANNELS_KEY,
    UnifiedCheckpointSaver,
)

from ..support import ALL_BACKENDS, config_for, drop_saver, make_checkpoint, open_saver
from ..syncwrap import SyncDriven
from . import figures, raw
from .gc_child import SHARED_THREAD
from .workload import check_tuple, message

ROOT = Path(__file__).resolve().parents[2]
APIS = ("async", "sync")
COLLECTORS = ("prune", "delete_for_runs", "delete_thread")


@asynccontextmanager
async def savers_on_one_store(
    backend: str, tmp_path: Path, count: int
) -> AsyncIterator[list[UnifiedCheckpointSaver]]:
    """``count`` savers sharing one store, each with its own memory of what it stored
    (as separate processes would have)."""
    if backend == "memory":
        first = MemorySaver()
        made = [first, *(UnifiedCheckpointSaver(first.backend) for _ in range(count - 1))]
    else:
        suffix = uuid.uuid4().hex[:10]
        location = str(tmp_path / "gc.sqlite") if backend == "sqlite" else f"lus_gc_{suffix}"
        made = [open_saver(backend, location) for _ in range(count)]
    try:
        for saver in made:
            await saver.asetup()
        yield made
    finally:
        for saver in made[1:]:
            await saver.aclose()
        await drop_saver(made[0])


def through(api: str, saver: UnifiedCheckpointSaver) -> BaseCheckpointSaver[Any]:
    """The saver itself (async API) or a wrapper whose async methods call its blocking twins."""
    return saver if api == "async" else SyncDriven(saver)


async def _put_child(
    saver: BaseCheckpointSaver[Any],
    parent: Checkpoint | None,
    thread_id: str,
    values: dict[str, Any],
    changed: list[str],
    run_id: str,
) -> tuple[Checkpoint, Any]:
    """A child of ``parent`` with ``values``; ``changed`` channels get a new version."""
    versions = dict(parent["channel_versions"]) if parent else {}
    new = {c: saver.get_next_version(versions.get(c), None) for c in changed}
    versions.update(new)
    checkpoint = make_checkpoint(values, versions, ts="2026-01-01T00:00:00+00:00")
    config = config_for(thread_id, parent["id"] if parent else None)
    stored = await saver.aput(config, checkpoint, {"source": "loop", "step": 0, "run_id": run_id}, new)
    return checkpoint, stored


def _messages(count: int) -> list[Any]:
    return [message(i) for i in range(count)]


@pytest.mark.parametrize("child", ["inherits", "extends"])
@pytest.mark.parametrize("collector", COLLECTORS)
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_child_of_a_collected_head_reads_back_whole(
    backend: str, api: str, collector: str, child: str, tmp_path: Path
) -> None:
    async with savers_on_one_store(backend, tmp_path, 3) as (w1, w2, gc):
        writer, other, collecting = through(api, w1), through(api, w2), through(api, gc)
        x_values = {"messages": _messages(12), "counter": 0, "trigger": None, "static": {"p": "s" * 90}}
        x, x_config = await _put_child(
            writer, None, "t", x_values, ["messages", "counter", "trigger", "static", "__start__"], "run-x"
        )
        await writer.aput_writes(x_config, [("messages", [message(50)])], "task-x")
        # Another writer appends Z: new messages and counter, the rest inherited.
        z_values = {**x_values, "messages": _messages(13), "counter": 1}
        _, z_config = await _put_child(other, x, "t", z_values, ["messages", "counter"], "run-z")
        if collector == "prune":
            await collecting.aprune(["t"], strategy="keep_latest")  # keeps Z, collects X's blobs
        elif collector == "delete_for_runs":
            await collecting.adelete_for_runs(["run-x"])
        else:
            await collecting.adelete_thread("t")
        assert await collecting.aget_tuple(x_config) is None
        # Writer 1 still holds X as its head and puts a child of it.
        if child == "inherits":
            # Only the counter changes: messages@X is named, not sent.
            y_values = {**x_values, "counter": 2}
            changed = ["counter"]
        else:
            # The list grows: encoded from what writer 1 last stored (X's list).
            y_values = {**x_values, "messages": _messages(14), "counter": 2}
            changed = ["messages", "counter"]
        _, y_config = await _put_child(writer, x, "t", y_values, changed, "run-y")
        got = await collecting.aget_tuple(y_config)
        assert got is not None
        assert got.checkpoint["channel_values"] == y_values, f"{backend}/{api}/{collector}"
        # And on from there, with what writer 1 now remembers.
        y = got.checkpoint
        w_values = {**y_values, "messages": [*y_values["messages"], message(99)]}
        _, w_config = await _put_child(writer, y, "t", w_values, ["messages"], "run-y")
        got = await collecting.aget_tuple(w_config)
        assert got is not None and got.checkpoint["channel_values"] == w_values
        if collector != "delete_thread":
            z = await collecting.aget_tuple(z_config)
            assert z is not None and z.checkpoint["channel_values"] == z_values
        assert await raw.dangling(gc, "t", {"messages", "counter", "static"}) == []


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_prune_keeps_a_checkpoint_put_after_it_chose_the_heads(
    backend: str, api: str, tmp_path: Path
) -> None:
    """prune reads the heads, then collects: a checkpoint put in between is the thread's
    head now, and must survive (not be collected as an old one)."""
    async with savers_on_one_store(backend, tmp_path, 2) as (w1, gc):
        writer = through(api, w1)
        values = {"messages": _messages(3), "counter": 0}
        x, _ = await _put_child(writer, None, "t", values, ["messages", "counter"], "run")
        z_values = {"messages": _messages(4), "counter": 1}
        z, _ = await _put_child(writer, x, "t", z_values, ["messages", "counter"], "run")
        late: dict[str, Any] = {}
        heads = gc.backend.checkpoint_heads

        async def heads_then_a_put(thread_id: str) -> Any:
            found = await heads(thread_id)
            late["values"] = {"messages": _messages(5), "counter": 2}
            late["checkpoint"], late["config"] = await _put_child(
                w1, z, "t", late["values"], ["messages", "counter"], "run"
            )
            return found

        gc.backend.checkpoint_heads = heads_then_a_put  # type: ignore[method-assign]
        await through(api, gc).aprune(["t"], strategy="keep_latest")
        kept = await _all(writer, "t")
        assert [t.checkpoint["id"] for t in kept] == [late["checkpoint"]["id"], z["id"]]
        assert kept[0].checkpoint["channel_values"] == late["values"]
        assert kept[1].checkpoint["channel_values"] == z_values
        assert await raw.dangling(gc, "t", {"messages", "counter"}) == []


@pytest.mark.parametrize("target", ["blob:messages", "blob:static", "item", "segment"])
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_a_missing_blob_or_item_is_an_error(
    backend: str, api: str, target: str, tmp_path: Path
) -> None:
    async with savers_on_one_store(backend, tmp_path, 2) as (writer, reader):
        values = {"messages": _messages(20), "counter": 3, "static": {"p": "s" * 90}}
        checkpoint, config = await _put_child(
            writer, None, "victim", values, ["messages", "counter", "static", "__start__"], "run"
        )
        # A second checkpoint inheriting both lists, and a list-valued pending write.
        child, child_config = await _put_child(
            writer, checkpoint, "victim", {**values, "counter": 4}, ["counter"], "run"
        )
        await writer.aput_writes(child_config, [("messages", [message(77)])], "task")
        await raw.delete(writer, "victim", target)
        channel = target.removeprefix("blob:") if target.startswith("blob:") else "messages"
        api_reader = through(api, reader)
        for read in (
            lambda: api_reader.aget_tuple(config),
            lambda: api_reader.aget_tuple(child_config),
            lambda: api_reader.aget_tuple({"configurable": {"thread_id": "victim"}}),
            lambda: _all(api_reader, "victim"),
        ):
            with pytest.raises(CorruptDataError) as caught:
                await read()
            text = str(caught.value)
            assert f"channel {channel!r}" in text and "'victim'" in text, text
            assert checkpoint["id"] in text or child["id"] in text, text
        figures.count(backend, figures.HOSTILE_INPUTS, 4)


async def _all(saver: BaseCheckpointSaver[Any], thread_id: str) -> list[Any]:
    return [t async for t in saver.alist(config_for(thread_id))]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_checkpoints_of_the_previous_release_read_as_before(
    backend: str, api: str, tmp_path: Path
) -> None:
    """A skeleton without channel kinds (what the previous release wrote, None-valued
    channels listed by name) reads as it did: an emptied channel is simply absent."""
    async with savers_on_one_store(backend, tmp_path, 2) as (writer, reader):
        values = {"messages": _messages(10), "trigger": None}
        _, config = await _put_child(
            writer, None, "old", values, ["messages", "trigger", "__start__"], "run"
        )
        stored = await writer.backend.get_checkpoint("old", "", config["configurable"]["checkpoint_id"])
        assert stored is not None
        skeleton = writer.codec.decode_value(stored.record.type, stored.record.data, {}, "test")
        assert skeleton.pop(CHANNEL_KINDS_KEY) == "evn"  # __start__, messages, trigger
        skeleton[NONE_CHANNELS_KEY] = ["trigger"]
        type_, data = writer.codec.dumps_checkpoint(skeleton)
        await raw.overwrite(writer, "old", "checkpoint", data, type_)
        got = await through(api, reader).aget_tuple(config)
        assert got is not None
        assert got.checkpoint["channel_values"] == values
        assert CHANNEL_KINDS_KEY not in got.checkpoint and NONE_CHANNELS_KEY not in got.checkpoint


# -- the race -------------------------------------------------------------------------------

WRITERS = ("p0", "p1")
WRITER_APIS = {"p0": "sync", "p1": "async"}
RACE_STEPS = 60
MEMORY_RACE_STEPS = 300
GC_ROUNDS = 400
CHANNELS = {"messages", "tags", "counter", "static"}


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.reliability.gc_child", *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _race_in_processes(backend: str, location: str) -> tuple[list[Any], int, int, int]:
    writers = [
        await _spawn("write", backend, location, name, WRITER_APIS[name], str(RACE_STEPS))
        for name in WRITERS
    ]
    collector = await _spawn("collect", backend, location, ",".join(WRITERS), str(GC_ROUNDS))
    children = [*writers, collector]
    try:
        for child in children:
            assert child.stdout is not None
            ready = await asyncio.wait_for(child.stdout.readline(), 60)
            assert ready.strip() == b"READY", f"{backend} child did not start: {ready!r}"
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"GO\n")
            await child.stdin.drain()
        outputs = await asyncio.gather(*(w.communicate() for w in writers))
        collected = await collector.communicate(b"STOP\n")
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
    acked: list[Any] = []
    resent = found = 0
    for child, (_out, err) in [*zip(writers, outputs, strict=True), (collector, collected)]:
        assert child.returncode == 0, f"{backend} child failed:\n{err.decode()[-4000:]}"
    for out, _ in outputs:
        report = json.loads(out.decode().strip().splitlines()[-1])
        acked += report["acked"]
        resent += report["resent"]
        found += report["found"]
    rounds = json.loads(collected[0].decode().strip().splitlines()[-1])["rounds"]
    return acked, rounds, resent, found


async def _race_in_threads(
    saver: UnifiedCheckpointSaver, steps: int
) -> tuple[list[Any], int, int, int]:
    """Memory lives in one process: the same three roles as threads, each its own saver."""
    import threading

    from . import gc_child

    stop = threading.Event()
    results: dict[str, Any] = {}
    resent: list[list[int]] = []

    def role(name: str) -> None:
        own = UnifiedCheckpointSaver(saver.backend)
        if name == "gc":
            results[name] = asyncio.run(gc_child.collect(own, list(WRITERS), GC_ROUNDS, stop))
        else:
            resent.append(gc_child.count_resends(own))
            results[name] = asyncio.run(gc_child.write(own, name, WRITER_APIS[name], steps))

    threads = {name: threading.Thread(target=role, args=(name,)) for name in (*WRITERS, "gc")}
    for thread in threads.values():
        thread.start()
    for name in WRITERS:
        await asyncio.to_thread(threads[name].join)
    stop.set()
    await asyncio.to_thread(threads["gc"].join)
    assert set(results) == {*WRITERS, "gc"}, "a role failed (see the thread's traceback)"
    acked = [a for name in WRITERS for a in results[name][0]]
    found = sum(results[name][1] for name in WRITERS)
    return acked, results["gc"], sum(r[0] for r in resent), found


@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_writers_and_a_collector_race_without_losing_data(
    backend: str, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:10]
    location = str(tmp_path / "race.sqlite") if backend == "sqlite" else f"lus_gcrace_{suffix}"
    verifier = MemorySaver() if backend == "memory" else open_saver(backend, location)
    try:
        await verifier.asetup()
        # In-process storage is so fast that the writers need more steps to meet the collector.
        steps = MEMORY_RACE_STEPS if backend == "memory" else RACE_STEPS
        if backend == "memory":
            acked, rounds, resent, found = await _race_in_threads(verifier, steps)
        else:
            acked, rounds, resent, found = await _race_in_processes(backend, location)
        assert len(acked) == len(WRITERS) * 2 * steps
        assert rounds > 0
        figures.count(backend, figures.GC_ROUNDS, rounds)
        figures.count(backend, figures.PUTS_RESENT, resent)
        step_of = {checkpoint_id: step for _thread, checkpoint_id, step in acked}
        survivors = 0
        # Then, with everyone done, every checkpoint that survived, on the raw rows too.
        for thread_id in [SHARED_THREAD, *(f"own-{w}" for w in WRITERS)]:
            # Every surviving checkpoint reads back exactly what its writer was told was
            # stored (values and pending writes), through both APIs.
            for api in APIS:
                tuples = await _all(through(api, verifier), thread_id)
                for tup in tuples:
                    step = check_tuple(tup, f"{backend} {thread_id} via {api}")
                    assert step_of.get(tup.checkpoint["id"]) == step, "a checkpoint nobody acknowledged"
            survivors += len(tuples)
            assert await raw.dangling(verifier, thread_id, CHANNELS) == [], f"{backend} {thread_id}"
        # Each writer read every acknowledged checkpoint back at once (whole, if not
        # collected yet); some of those reads must have found theirs.
        assert found > 0
        figures.count(backend, figures.CHECKPOINTS_VERIFIED, survivors + found)
    finally:
        await drop_saver(verifier)


# -- PostgreSQL: the put takes the thread lock before it checks -----------------------------


@pytest.mark.parametrize("plans", ["force_generic_plan", "force_custom_plan"])
async def test_postgres_put_locks_the_thread_before_its_checks(plans: str, tmp_path: Path, admin: Any) -> None:
    """PUT_CHECKPOINT's existence checks lock rows; they must run after the thread's
    advisory lock (see the comment there), with generic plans (our pools) and custom
    ones (prepared_statements=False)."""
    async with savers_on_one_store("postgres", tmp_path, 1) as (saver,):
        statement = saver.backend._statements.put_checkpoint  # type: ignore[attr-defined]
        types = (
            "bigint, text, bytea, bytea[], text[], bytea[], bytea[], text[], text[], bytea[], "
            "bytea, text, bytea, json, jsonb, text, float8, float8"
        )
        await admin.execute(f"SET plan_cache_mode = {plans}")
        await admin.execute(f"PREPARE gc_put({types}) AS {statement}")
        try:
            rows = await admin.fetch(
                "EXPLAIN (COSTS OFF) EXECUTE gc_put(1, 't', '\\x63'::bytea, '{\"\\\\x69\"}', "
                "'{m}', '{\"\\\\x00\"}', '{NULL}', '{messages}', '{a1.0}', '{\"\\\\x62\"}', "
                "NULL, 'x', '\\x00'::bytea, '{}', '{}', NULL, 0, NULL)"
            )
        finally:
            await admin.execute("DEALLOCATE gc_put")
            await admin.execute("RESET plan_cache_mode")
        plan = [row[0] for row in rows]
        start = next(i for i, line in enumerate(plan) if "CTE missing" in line)
        body = plan[start + 1 :]
        end = next((i for i, line in enumerate(body) if line.lstrip().startswith("CTE ")), len(body))
        missing = "\n".join(body[:end])
        assert "thread_lock" in missing and "LockRows" in missing, "\n".join(plan)
        assert missing.index("thread_lock") < missing.index("LockRows"), "\n".join(plan)
        assert "Nested Loop" in missing, "\n".join(plan)
