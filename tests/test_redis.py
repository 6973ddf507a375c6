"""RedisSaver on plain Redis: key layout, exact matching, filters, TTL, reconnects, failures.

Most tests use the shared server on 127.0.0.1:6379 under a unique key prefix. Tests that
kill connections or read server statistics get a private redis-server of their own.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from langchain_core.messages import HumanMessage
from redis.crc import key_slot

from langgraph_unified_store import (
    BackendUnavailableError,
    InvalidConfigError,
    MemorySaver,
    RedisSaver,
    UnifiedWorkflowState,
    create_saver,
)
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from .graphs import chat_graph
from .redis_servers import free_port, start_standalone
from .support import (
    REDIS_URL,
    STRANGE_THREAD_IDS,
    checkpoint_and_versions,
    drop_saver,
    put_values,
    unique,
)

pytestmark = pytest.mark.redis


async def _keys(saver: RedisSaver, pattern: str = "*") -> list[bytes]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return [key async for key in client.scan_iter(match=f"{saver.backend.prefix}:{pattern}")]
    finally:
        await client.aclose()


def _thread_pattern(saver: RedisSaver, thread_id: str) -> str:
    base = saver.backend._base(thread_id)
    return base[len(saver.backend.prefix) + 1 :].replace("{", "\\{").replace("}", "\\}") + ":*"


@pytest.fixture
async def rsaver(tmp_path: Path) -> AsyncIterator[RedisSaver]:
    saver = RedisSaver(REDIS_URL, prefix=unique("lus_test"))
    await saver.asetup()
    try:
        yield saver
    finally:
        await drop_saver(saver)


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A standalone redis-server of this module's own, whose clients tests may kill."""
    servers, url = start_standalone(tmp_path_factory.mktemp("redis-private"))
    try:
        yield url
    finally:
        servers.stop()


# -- key layout -----------------------------------------------------------------------------


async def test_every_key_of_a_thread_shares_one_slot(rsaver: RedisSaver) -> None:
    for thread_id in STRANGE_THREAD_IDS:
        stored = await put_values(rsaver, thread_id, {"a": thread_id, "msgs": ["m" * 80, "n" * 80]}, run_id="r1")
        await rsaver.aput_writes(stored, [("a", "w" * 100), ("msgs", ["x" * 90])], "task-1")
        await put_values(rsaver, thread_id, {"a": 2}, ns="child:1")
    bases = {rsaver.backend._base(t): t for t in STRANGE_THREAD_IDS}
    assert len(bases) == len(STRANGE_THREAD_IDS)
    keys = await _keys(rsaver)
    by_thread: dict[str, set[int]] = {}
    for key in keys:
        text = key.decode()
        if "{" not in text:
            continue  # the global index keys
        base = text[: text.index("}") + 1]
        assert base in bases, text
        by_thread.setdefault(base, set()).add(key_slot(key))
    assert set(by_thread) == set(bases)
    assert all(len(slots) == 1 for slots in by_thread.values())
    # Nine keys per thread whatever its size or number of namespaces.
    assert len(keys) == 9 * len(STRANGE_THREAD_IDS) + 4  # + three thread indexes + a run set


async def test_strange_thread_ids_read_back_exactly_and_never_widen(rsaver: RedisSaver) -> None:
    for thread_id in STRANGE_THREAD_IDS:
        await put_values(rsaver, thread_id, {"owner": thread_id})
    assert await rsaver.alist_workflows() == sorted(STRANGE_THREAD_IDS)
    for thread_id in STRANGE_THREAD_IDS:
        config = {"configurable": {"thread_id": thread_id}}
        tup = await rsaver.aget_tuple(config)
        assert tup is not None and tup.checkpoint["channel_values"] == {"owner": thread_id}
        assert tup.config["configurable"]["thread_id"] == thread_id
        listed = [t async for t in rsaver.alist(config)]
        assert [t.checkpoint["channel_values"]["owner"] for t in listed] == [thread_id]
    # "a*" is a literal thread: deleting it leaves "ab", "a?" and "a[b]" alone.
    await rsaver.adelete_thread("a*")
    assert await rsaver.aget_tuple({"configurable": {"thread_id": "a*"}}) is None
    for other in ("ab", "a?", "a[b]"):
        assert await rsaver.aget_tuple({"configurable": {"thread_id": other}}) is not None
    assert await _keys(rsaver, _thread_pattern(rsaver, "a*")) == []


async def test_strange_namespaces_and_checkpoint_ids(rsaver: RedisSaver) -> None:
    namespaces = ["", "a", "ab", "a:b", "a|b:c", "*", "{x}", "ü"]
    for ns in namespaces:
        checkpoint, versions = checkpoint_and_versions({"ns": ns})
        checkpoint["id"] = f"id-{ns}-*"
        config = {"configurable": {"thread_id": "t", "checkpoint_ns": ns}}
        await rsaver.aput(config, checkpoint, {"ns": ns}, versions)  # type: ignore[arg-type]
    for ns in namespaces:
        listed = [t async for t in rsaver.alist({"configurable": {"thread_id": "t", "checkpoint_ns": ns}})]
        assert [t.checkpoint["channel_values"]["ns"] for t in listed] == [ns]
        assert listed[0].config["configurable"]["checkpoint_id"] == f"id-{ns}-*"
    everything = [t async for t in rsaver.alist({"configurable": {"thread_id": "t"}})]
    expected = sorted(((f"id-{ns}-*", ns) for ns in namespaces), reverse=True)
    assert [
        (t.config["configurable"]["checkpoint_id"], t.config["configurable"]["checkpoint_ns"])
        for t in everything
    ] == expected
    heads = await rsaver.backend.checkpoint_heads("t")
    assert sorted(h.checkpoint_ns for h in heads) == sorted(namespaces)


async def test_all_namespaces_interleave_newest_first_like_the_memory_saver(rsaver: RedisSaver) -> None:
    """Listing without a namespace walks the root namespace and the others together:
    over page and batch boundaries, with ids shared across namespaces, before and limit."""
    memory = MemorySaver()
    namespaces = ["", "child:1", "a", "\x01", "z" * 40]
    for saver in (rsaver, memory):
        for step in range(260):
            ns = namespaces[(step * 7) % len(namespaces)] if step % 3 else ""
            checkpoint, versions = checkpoint_and_versions({"n": step})
            checkpoint["id"] = f"{(step * 37) % 113:04d}-{step % 2}"  # ids repeat across namespaces
            config = {"configurable": {"thread_id": "t", "checkpoint_ns": ns}}
            metadata = {"source": "input", "step": step, "odd": step % 2 == 1}
            await saver.aput(config, checkpoint, metadata, versions)  # type: ignore[arg-type]

    async def listed(saver: UnifiedCheckpointSaver, config: Any, **kw: Any) -> list[tuple[str, str, int]]:
        return [
            (t.config["configurable"]["checkpoint_id"], t.config["configurable"]["checkpoint_ns"],
             t.metadata["step"])
            async for t in saver.alist(config, **kw)
        ]

    thread = {"configurable": {"thread_id": "t"}}
    everything = await listed(memory, thread)
    assert len(everything) > 200
    assert await listed(rsaver, thread) == everything
    assert await listed(rsaver, None) == everything
    for limit in (1, 15, 16, 17, 101):
        assert await listed(rsaver, thread, limit=limit) == everything[:limit]
        assert await listed(rsaver, thread, limit=limit, filter={"odd": True}) == await listed(
            memory, thread, limit=limit, filter={"odd": True}
        )
    for checkpoint_id in ("0005-1", "0050-0", "0112-0", "0000-0", "missing"):
        before = {"configurable": {"checkpoint_id": checkpoint_id}}
        assert await listed(rsaver, thread, before=before) == await listed(memory, thread, before=before)
        assert await listed(rsaver, thread, before=before, limit=5) == await listed(
            memory, thread, before=before, limit=5
        )
        exact = {"configurable": {"thread_id": "t", "checkpoint_id": checkpoint_id}}
        assert await listed(rsaver, exact) == await listed(memory, exact)


def test_legacy_deflated_records_are_checked() -> None:
    from langgraph_unified_store.backends.redis import (
        DEFLATED_RECORD_PREFIX,
        deflate_record,
        inflate_record,
    )

    # deflate_record is the writer of the old form (records are no longer written so).
    record = b"\x84\xa1v\x04\xa2ts\xd9 2026-11-22T06:15:09.291256+00:00" + b"\xa9__start__" * 8
    stored_type, stored = deflate_record("msgpack", record)
    assert stored_type == f"{DEFLATED_RECORD_PREFIX}msgpack".encode() and len(stored) < len(record)
    assert inflate_record(stored_type, stored) == ("msgpack", record)
    # Small or incompressible records were kept as they are, and read back as they are.
    assert deflate_record("msgpack", b"\x80") == (b"msgpack", b"\x80")
    noise = random.Random(7).randbytes(300)
    assert deflate_record("json", noise) == (b"json", noise)
    assert inflate_record(b"pickle", noise) == ("pickle", noise)
    for garbled in (stored[:-1], stored[:3], stored[:-4] + b"\0\0\0\0", b"\xc1" + stored[1:]):
        with pytest.raises(ValueError):
            inflate_record(stored_type, garbled)
    # A planted value that would inflate without bound is refused, not inflated.
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = bomb.compress(bytes(1 << 25)) + bomb.flush() + b"\0\0\0\0"
    with pytest.raises(ValueError):
        inflate_record(stored_type, packed)
    with pytest.raises(InvalidConfigError):
        deflate_record(f"{DEFLATED_RECORD_PREFIX}x", bytes(1 << 25))


async def test_records_are_stored_as_the_core_gives_them_and_old_deflated_ones_read_back(
    rsaver: RedisSaver,
) -> None:
    from langgraph_unified_store.backends.redis import DEFLATED_RECORD_PREFIX, deflate_record
    from langgraph_unified_store.backends.redis.values import checkpoint_value, frame_parts

    # Without core compression the record is plain msgpack, which the old writer deflated.
    rsaver.backend.compress = False  # type: ignore[misc]
    config = await put_values(rsaver, "old", {"a": 1, "b": "x" * 10}, step=3, source="loop")
    expected = await rsaver.aget_tuple(config)
    stored = await rsaver.backend.get_checkpoint("old", "", config["configurable"]["checkpoint_id"])
    assert stored is not None and stored.record.stored_size is None
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        key = f"{rsaver.backend._base('old')}:c"
        (field, value), = (await client.hgetall(key)).items()
        head, stored_type, data = frame_parts(value, 3)
        assert (stored_type.decode(), data) == (stored.record.type, stored.record.data)
        assert value == checkpoint_value(stored.record)
        assert not stored_type.startswith(DEFLATED_RECORD_PREFIX.encode())
        # The same record as the old writer stored it reads back the same.
        legacy_type, legacy_data = deflate_record(stored_type.decode(), data)
        assert legacy_type.startswith(DEFLATED_RECORD_PREFIX.encode()) and len(legacy_data) < len(data)
        await client.hset(key, field, b"".join(
            len(part).to_bytes(4, "big") + part for part in (head, legacy_type, legacy_data)
        ))
    finally:
        await client.aclose()
    again = await rsaver.backend.get_checkpoint("old", "", config["configurable"]["checkpoint_id"])
    assert again is not None and again.record.data == stored.record.data
    assert again.record.stored_size == len(legacy_data)
    assert await rsaver.aget_tuple(config) == expected


async def test_ids_with_escape_bytes_sort_and_read_back_exactly(rsaver: RedisSaver) -> None:
    # NUL is refused in ids by the core (see test_clean_failures); 01 is the escape byte.
    ids = ["a", "a\x01", "a\x01b", "a\x01\x02", "a\x01\x01", "a\x02", "ab", "\x01", "\x01\x01", "\x02"]
    for ns in ("", "sub\x01ns"):
        for step, checkpoint_id in enumerate(ids):
            checkpoint, versions = checkpoint_and_versions({"id": checkpoint_id}, step)
            checkpoint["id"] = checkpoint_id
            config = {"configurable": {"thread_id": "t", "checkpoint_ns": ns}}
            await rsaver.aput(config, checkpoint, {"ns": ns}, versions)  # type: ignore[arg-type]
    for ns in ("", "sub\x01ns"):
        config = {"configurable": {"thread_id": "t", "checkpoint_ns": ns}}
        listed = [t.config["configurable"]["checkpoint_id"] async for t in rsaver.alist(config)]
        assert listed == sorted(ids, reverse=True)
        for checkpoint_id in ids:
            exact = {"configurable": {"thread_id": "t", "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}
            tup = await rsaver.aget_tuple(exact)
            assert tup is not None and tup.checkpoint["channel_values"]["id"] == checkpoint_id
            before = {"configurable": {"checkpoint_id": checkpoint_id}}
            got = [t.config["configurable"]["checkpoint_id"] async for t in rsaver.alist(config, before=before)]
            assert got == [i for i in sorted(ids, reverse=True) if i < checkpoint_id]
    everything = [
        (t.config["configurable"]["checkpoint_id"], t.config["configurable"]["checkpoint_ns"])
        async for t in rsaver.alist({"configurable": {"thread_id": "t"}})
    ]
    assert everything == sorted(((i, ns) for i in ids for ns in ("", "sub\x01ns")), reverse=True)


async def test_writes_sent_before_their_checkpoint_and_copies_onto_a_thread(rsaver: RedisSaver) -> None:
    memory = MemorySaver()
    for saver in (rsaver, memory):
        checkpoint, versions = checkpoint_and_versions({"a": 1})
        early = {"configurable": {"thread_id": "t", "checkpoint_ns": "", "checkpoint_id": checkpoint["id"]}}
        await saver.aput_writes(early, [("a", "early"), ("b", ["x" * 90])], "task-0")  # type: ignore[arg-type]
        stored = await saver.aput(early, checkpoint, {"source": "input", "step": 0}, versions)  # type: ignore[arg-type]
        await saver.aput_writes(stored, [("a", "late")], "task-1")
        await saver.aput_writes(stored, [("a", "ignored")], "task-1")  # same task and index: kept
        second = await put_values(saver, "t", {"a": 2}, parent=stored["configurable"]["checkpoint_id"])
        await saver.aput_writes(second, [("a", "second")], "task-2")
        # The target already holds the first checkpoint, with writes of its own.
        await saver.aput(
            {"configurable": {"thread_id": "u", "checkpoint_ns": ""}}, checkpoint,
            {"source": "input", "step": 0}, versions,  # type: ignore[arg-type]
        )
        await saver.aput_writes({"configurable": {"thread_id": "u", "checkpoint_ns": "", "checkpoint_id": checkpoint["id"]}},
                                [("a", "target")], "task-9")
        await saver.acopy_thread("t", "u")

    async def seen(saver: UnifiedCheckpointSaver, thread_id: str) -> list[Any]:
        return [
            (t.checkpoint["channel_values"], sorted((w[0], w[1], str(w[2])) for w in t.pending_writes or []))
            async for t in saver.alist({"configurable": {"thread_id": thread_id}})
        ]

    assert await seen(rsaver, "t") == await seen(memory, "t")
    first = (await seen(rsaver, "t"))[1][1]
    assert [w[2] for w in first] == ["early", "['" + "x" * 90 + "']", "late"]
    assert await seen(rsaver, "u") == await seen(memory, "u")
    assert "target" in str(await seen(rsaver, "u"))
    await rsaver.aprune(["u"])
    assert len(await seen(rsaver, "u")) == 1


# -- filters, order, before, limit ----------------------------------------------------------

FILTER_VALUES: list[Any] = ["*", "?", "a*", "[a]", "{x}", "1", 1, 1.0, 1.5, True, False, 0, "", "ü", 2**60, 2**60 + 1]


async def test_filters_match_the_memory_saver_exactly(rsaver: RedisSaver) -> None:
    memory = MemorySaver()
    for saver in (rsaver, memory):
        for position, value in enumerate(FILTER_VALUES):
            await put_values(saver, f"t{position % 3}", {"v": position}, k=value, pos=position)
        await put_values(saver, "t0", {"v": -1}, other="k")
    filters: list[dict[str, Any]] = [{"k": v} for v in FILTER_VALUES]
    filters += [{"k": "*", "pos": 0}, {"missing": 1}, {"other": "k"}, {"pos": 3, "k": 1}]

    async def matches(saver: UnifiedCheckpointSaver, flt: dict[str, Any], **kw: Any) -> list[Any]:
        return [t.metadata["pos"] async for t in saver.alist(None, filter=flt, **kw) if "pos" in t.metadata]

    for flt in filters:
        expected = await matches(memory, flt)
        assert await matches(rsaver, flt) == expected, flt
        assert await matches(rsaver, flt, limit=1) == expected[:1], flt
    assert await matches(rsaver, {"k": "*"}) == [0]
    assert await matches(rsaver, {"k": 1}) == [7, 6]  # 1 and 1.0; never True or "1"
    assert await matches(rsaver, {"k": True}) == [9]
    assert await matches(rsaver, {"k": 2**60 + 1}) == [15]


async def test_limit_applies_after_the_filter_newest_first(rsaver: RedisSaver) -> None:
    parent = None
    for step in range(40):
        stored = await put_values(rsaver, "t", {"v": step}, parent=parent, step=step, kind="even" if step % 2 == 0 else "odd")
        parent = stored["configurable"]["checkpoint_id"]
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    got = [t.metadata["step"] async for t in rsaver.alist(config, filter={"kind": "odd"}, limit=5)]
    assert got == [39, 37, 35, 33, 31]
    all_steps = [t.metadata["step"] async for t in rsaver.alist(config)]
    assert all_steps == list(range(39, -1, -1))
    ids = [t.config["configurable"]["checkpoint_id"] async for t in rsaver.alist(config)]
    before = {"configurable": {"checkpoint_id": ids[10]}}
    got = [t.metadata["step"] async for t in rsaver.alist(config, before=before, limit=3)]
    assert got == [28, 27, 26]
    got = [t.metadata["step"] async for t in rsaver.alist(None, before=before, filter={"kind": "even"}, limit=2)]
    assert got == [28, 26]


# -- large values ---------------------------------------------------------------------------


async def test_long_message_list_round_trips(rsaver: RedisSaver) -> None:
    messages = [f"message {i:05d} " + "x" * 70 for i in range(9000)]
    stored = await put_values(rsaver, "long", {"messages": messages})
    await rsaver.aput_writes(stored, [("messages", messages[:700])], "task")
    tup = await rsaver.aget_tuple({"configurable": {"thread_id": "long"}})
    assert tup is not None
    assert tup.checkpoint["channel_values"]["messages"] == messages
    assert tup.pending_writes == [("task", "messages", messages[:700])]


async def test_a_list_extended_after_another_process_deleted_the_thread(rsaver: RedisSaver) -> None:
    other = RedisSaver(REDIS_URL, prefix=rsaver.backend.prefix)  # another process, same store
    try:
        first = ["first message " + "x" * 80]
        await put_values(rsaver, "t", {"m": first})
        await other.adelete_thread("t")
        # rsaver still remembers storing `first`: the extension must not lean on it.
        await put_values(rsaver, "t", {"m": [*first, "second " + "y" * 80]})
        tup = await rsaver.aget_tuple({"configurable": {"thread_id": "t"}})
        assert tup is not None and tup.checkpoint["channel_values"]["m"] == [*first, "second " + "y" * 80]
    finally:
        await other.aclose()


# -- deleting leaves nothing behind ---------------------------------------------------------


async def test_delete_thread_and_runs_leave_no_keys(rsaver: RedisSaver) -> None:
    for thread_id in ("keep", "drop", "runs"):
        stored = await put_values(rsaver, thread_id, {"m": ["y" * 100]}, run_id=f"run-{thread_id}")
        await rsaver.aput_writes(stored, [("m", ["z" * 100])], "task")
    await rsaver.adelete_thread("drop")
    await rsaver.adelete_for_runs(["run-runs"])
    assert await _keys(rsaver, _thread_pattern(rsaver, "drop")) == []
    assert await _keys(rsaver, _thread_pattern(rsaver, "runs")) == []
    assert await rsaver.alist_workflows() == ["keep"]
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        prefix = rsaver.backend.prefix
        assert await client.zrange(f"{prefix}:threads", 0, -1) == [b"keep"]
        assert sorted(await _keys(rsaver, "run:*")) == [f"{prefix}:run:{b'run-keep'.hex()}".encode()]
    finally:
        await client.aclose()


async def test_prune_keeps_only_what_the_latest_needs(rsaver: RedisSaver) -> None:
    graph = chat_graph(rsaver)
    config = {"configurable": {"thread_id": "chat"}}
    for turn in range(4):
        await graph.ainvoke({"messages": [HumanMessage("q" * 200 + str(turn), id=f"h{turn}")]}, config)
    before = (await graph.aget_state(config)).values
    await rsaver.aprune(["chat"])
    assert (await graph.aget_state(config)).values == before
    assert len([t async for t in rsaver.alist(config)]) == 1
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        base = rsaver.backend._base("chat")
        assert await client.hlen(f"{base}:c") == 1
        assert await client.zcard(f"{base}:i") == 1
        assert await client.exists(f"{base}:a") == 0  # only other namespaces are in B:a
        (latest,) = await rsaver.backend.checkpoint_heads("chat")
        assert await client.hlen(f"{base}:b") <= len(latest.channel_versions)
        # Every stored item is reachable from the surviving checkpoint.
        stored = await rsaver.backend.get_checkpoint("chat", "", None)
        assert stored is not None
        assert await client.hlen(f"{base}:t") == len(stored.items)
    finally:
        await client.aclose()


async def test_stale_index_entries_are_tolerated(rsaver: RedisSaver) -> None:
    await put_values(rsaver, "real", {"a": 1}, run_id="r")
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        prefix = rsaver.backend.prefix
        await client.zadd(f"{prefix}:threads", {"ghost": float("inf")})
        await client.sadd(f"{prefix}:run:{b'r'.hex()}", "ghost")
    finally:
        await client.aclose()
    assert await rsaver.alist_workflows() == ["real"]
    assert [t.config["configurable"]["thread_id"] async for t in rsaver.alist(None)] == ["real"]
    await rsaver.adelete_for_runs(["r"])
    assert await rsaver.alist_workflows() == []


# -- TTL ------------------------------------------------------------------------------------


async def _expire_times(saver: RedisSaver, thread_id: str) -> dict[bytes, int]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = await _keys(saver, _thread_pattern(saver, thread_id))
        return {key: await client.pexpiretime(key) for key in keys}
    finally:
        await client.aclose()


async def test_ttl_covers_every_key_of_a_thread_with_one_expiry_time() -> None:
    saver = RedisSaver(REDIS_URL, prefix=unique("lus_test"), ttl=30)
    try:
        stored = await put_values(saver, "t", {"m": ["a" * 100, "b" * 100]}, run_id="r")
        await saver.aput_writes(stored, [("m", ["c" * 100])], "task")
        await put_values(saver, "t", {"a": 1}, ns="child:1")
        first = await _expire_times(saver, "t")
        assert len(first) == 9
        assert len(set(first.values())) == 1 and next(iter(first.values())) > 0
        await asyncio.sleep(0.01)
        await saver.aput_writes(stored, [("a", 2)], "task-2")  # a write refreshes every key
        second = await _expire_times(saver, "t")
        assert len(set(second.values())) == 1
        assert next(iter(second.values())) > next(iter(first.values()))
        await asyncio.sleep(0.01)
        assert await saver.aget_tuple({"configurable": {"thread_id": "t"}}) is not None
        assert await _expire_times(saver, "t") == second  # reads do not refresh by default
    finally:
        await drop_saver(saver)


async def test_refresh_ttl_on_read() -> None:
    saver = RedisSaver(REDIS_URL, prefix=unique("lus_test"), ttl=30, refresh_ttl_on_read=True)
    assert saver.backend.lifecycle.refresh_on_read
    try:
        await put_values(saver, "t", {"a": 1})
        first = await _expire_times(saver, "t")
        await asyncio.sleep(0.01)
        assert await saver.aget_tuple({"configurable": {"thread_id": "t"}}) is not None
        second = await _expire_times(saver, "t")
        assert len(set(second.values())) == 1
        assert next(iter(second.values())) > next(iter(first.values()))
        await asyncio.sleep(0.01)
        assert len([t async for t in saver.alist({"configurable": {"thread_id": "t"}})]) == 1
        third = await _expire_times(saver, "t")
        assert next(iter(third.values())) > next(iter(second.values()))
    finally:
        await drop_saver(saver)


async def test_expired_thread_disappears_whole() -> None:
    saver = RedisSaver(REDIS_URL, prefix=unique("lus_test"), ttl=1)
    try:
        stored = await put_values(saver, "short", {"m": ["a" * 100]}, run_id="r", tag="x")
        await saver.aput_writes(stored, [("m", ["b" * 100])], "task")
        assert await saver.alist_workflows() == ["short"]
        for _ in range(100):  # wait (no timing asserted) until Redis has expired the keys
            if not await _expire_times(saver, "short"):
                break
            await asyncio.sleep(0.1)
        assert await _expire_times(saver, "short") == {}
        assert await saver.aget_tuple({"configurable": {"thread_id": "short"}}) is None
        assert [t async for t in saver.alist(None)] == []
        assert [t async for t in saver.alist(None, filter={"tag": "x"})] == []
        assert await saver.alist_workflows() == []
        await saver.adelete_for_runs(["r"])  # with a TTL, runs are found through the thread index
        # The same list written again after expiry is stored whole (the saver's memo of
        # what it had stored is stale now).
        await put_values(saver, "short", {"m": ["a" * 100]})
        tup = await saver.aget_tuple({"configurable": {"thread_id": "short"}})
        assert tup is not None and tup.checkpoint["channel_values"]["m"] == ["a" * 100]
    finally:
        await drop_saver(saver)


async def test_delete_for_runs_with_ttl() -> None:
    saver = RedisSaver(REDIS_URL, prefix=unique("lus_test"), ttl=60)
    try:
        await put_values(saver, "a", {"x": 1}, run_id="r1")
        await put_values(saver, "a", {"x": 2}, run_id="r2")
        await put_values(saver, "b", {"x": 3}, run_id="r1")
        await saver.adelete_for_runs(["r1"])
        assert await saver.alist_workflows() == ["a"]
        assert [t.metadata["run_id"] async for t in saver.alist(None)] == ["r2"]
    finally:
        await drop_saver(saver)


@pytest.mark.parametrize("ttl", [0, -1, "10", True, float("nan")])
def test_bad_ttl_is_refused(ttl: Any) -> None:
    with pytest.raises(InvalidConfigError, match="ttl"):
        RedisSaver(REDIS_URL, ttl=ttl)


# -- connections ----------------------------------------------------------------------------


async def _kill_clients(url: str) -> int:
    killer = aioredis.Redis.from_url(url)
    try:
        return int(await killer.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
    finally:
        await killer.aclose()


async def test_reconnects_after_the_server_drops_connections(private_redis: str) -> None:
    saver = RedisSaver(private_redis, prefix=unique("lus_test"))
    try:
        stored = await put_values(saver, "t", {"a": 1})
        assert await _kill_clients(private_redis) >= 1
        assert await saver.aget_tuple({"configurable": {"thread_id": "t"}}) is not None
        await _kill_clients(private_redis)
        await saver.aput_writes(stored, [("a", 2)], "task")
        await _kill_clients(private_redis)
        (listed,) = [t async for t in saver.alist(None)]
        assert listed.pending_writes == [("task", "a", 2)]

        def blocking() -> None:
            config = {"configurable": {"thread_id": "t"}}
            assert saver.get_tuple(config) is not None
            asyncio.run(_kill_clients(private_redis))
            assert saver.get_tuple(config) is not None
            assert saver.list_workflows() == ["t"]

        await asyncio.to_thread(blocking)
    finally:
        await drop_saver(saver)


def _blackhole() -> tuple[socket.socket, int]:
    """A loopback listener that accepts connections and never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                for conn in accepted:
                    conn.close()
                return
            accepted.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return server, int(server.getsockname()[1])


@pytest.mark.parametrize("where", ["nothing listening", "no answer"])
async def test_unreachable_server_fails_fast_without_the_password(where: str) -> None:
    listener = None
    if where == "nothing listening":
        port = free_port()
    else:
        listener, port = _blackhole()
    url = f"redis://admin:s3cret-pw@127.0.0.1:{port}/0"
    saver = RedisSaver(url, socket_timeout=0.2)
    try:
        assert "s3cret-pw" not in repr(saver) and "s3cret-pw" not in repr(saver.backend)
        with pytest.raises(BackendUnavailableError, match=rf"127\.0\.0\.1:{port}") as failed:
            await saver.aget_tuple({"configurable": {"thread_id": "t"}})
        assert "s3cret-pw" not in str(failed.value)
        with pytest.raises(BackendUnavailableError) as failed:
            await put_values(saver, "t", {"a": 1})
        assert "s3cret-pw" not in str(failed.value)

        def blocking() -> None:
            with pytest.raises(BackendUnavailableError) as failed:
                saver.list_workflows()
            assert "s3cret-pw" not in str(failed.value)

        await asyncio.to_thread(blocking)
    finally:
        await saver.aclose()
        if listener is not None:
            listener.close()


async def test_commands_used_are_core_and_never_scan(private_redis: str) -> None:
    saver = RedisSaver(private_redis, prefix=unique("lus_test"))
    admin = aioredis.Redis.from_url(private_redis, decode_responses=True)
    try:
        await admin.config_resetstat()
        stored = await put_values(saver, "t", {"m": ["a" * 100]}, run_id="r", kind="x")
        stats = await admin.info("commandstats")
        scripts = [stats.get(f"cmdstat_{name}", {}) for name in ("evalsha", "eval")]
        # One script per put (a first EVALSHA the server had not cached is refused, then EVAL).
        assert sum(s.get("calls", 0) - s.get("failed_calls", 0) for s in scripts) == 1
        await saver.aput_writes(stored, [("m", ["b" * 100])], "task")
        await saver.aget_tuple({"configurable": {"thread_id": "t"}})
        [t async for t in saver.alist({"configurable": {"thread_id": "t"}}, limit=1)]
        [t async for t in saver.alist(None, filter={"kind": "x"})]
        await saver.alist_workflows()
        await saver.acopy_thread("t", "u")
        await saver.aprune(["u"])
        await saver.adelete_for_runs(["r"])
        await put_values(saver, "v", {"a": 1})
        await saver.adelete_thread("v")
        stats = await admin.info("commandstats")
        for forbidden in ("scan", "keys", "flushdb", "flushall"):
            assert f"cmdstat_{forbidden}" not in stats
        assert not [name for name in stats if name.startswith(("cmdstat_ft.", "cmdstat_json."))]
    finally:
        await admin.aclose()
        await drop_saver(saver)


# -- passing a client, options, factory -----------------------------------------------------


async def test_a_client_passed_in_serves_both_apis_and_stays_open() -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    saver = RedisSaver(client, prefix=unique("lus_test"))
    try:
        await put_values(saver, "t", {"a": 1})

        def blocking() -> list[str]:
            assert saver.get_tuple({"configurable": {"thread_id": "t"}}) is not None
            return saver.list_workflows()

        assert await asyncio.to_thread(blocking) == ["t"]
    finally:
        await drop_saver(saver)
    assert await client.ping()  # the saver never closes a client it did not make
    await client.aclose()


@pytest.mark.parametrize(
    ("conn", "options", "message"),
    [
        (REDIS_URL, {"prefix": "a{b"}, "prefix"),
        (REDIS_URL, {"prefix": ""}, "prefix"),
        (REDIS_URL, {"socket_timeout": 0}, "socket_timeout"),
        (12, {}, "conn must be"),
    ],
)
def test_bad_options_are_refused(conn: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        RedisSaver(conn, **options)


async def test_a_decoding_client_is_refused() -> None:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        with pytest.raises(InvalidConfigError, match="decode_responses"):
            RedisSaver(client)
    finally:
        await client.aclose()


async def test_factory_and_from_conn_string_pass_options() -> None:
    saver = create_saver(REDIS_URL, prefix=unique("lus_test"), ttl=5)
    assert isinstance(saver, RedisSaver) and saver.backend.lifecycle.ttl == 5
    await saver.aclose()
    async with RedisSaver.from_conn_string(REDIS_URL, prefix=unique("lus_test")) as saver:
        await put_values(saver, "t", {"a": 1})
        assert await saver.alist_workflows() == ["t"]
        await saver.backend.drop_all()


def test_blocking_api_with_statement() -> None:
    with RedisSaver.from_conn_string(REDIS_URL, prefix=unique("lus_test")) as saver:
        checkpoint, versions = checkpoint_and_versions({"a": [1, 2]})
        config = saver.put({"configurable": {"thread_id": "t", "checkpoint_ns": ""}}, checkpoint, {}, versions)  # type: ignore[arg-type]
        saver.put_writes(config, [("a", 3)], "task")
        tup = saver.get_tuple(config)
        assert tup is not None and tup.pending_writes == [("task", "a", 3)]
        saver.copy_thread("t", "u")
        assert saver.list_workflows() == ["t", "u"]
        saver.save_state("wf", UnifiedWorkflowState())
        assert saver.load_state("wf") is not None
        saver.delete_thread("t")
        assert sorted({c.config["configurable"]["thread_id"] for c in saver.list(None)}) == ["u", "wf"]
        saver._block("drop_all", saver.backend.drop_all())

