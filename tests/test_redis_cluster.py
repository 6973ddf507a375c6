"""RedisSaver on a 3-node Redis Cluster this module starts on free loopback ports.

The whole conformance suite runs through both APIs; the other tests cover what only a
cluster can break: keys of one thread in one slot, global indexes in other slots, and
operations that span threads (list across threads, delete_for_runs, copy_thread).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis
from langchain_core.messages import HumanMessage
from redis.crc import key_slot

from langgraph_unified_store import BackendUnavailableError, RedisSaver

from .conformance.runner import assert_full_conformance
from .graphs import chat_graph
from .redis_servers import free_port
from .support import STRANGE_THREAD_IDS, drop_saver, put_values, unique

pytestmark = pytest.mark.redis


@pytest.fixture
async def csaver(cluster_url: str) -> AsyncIterator[RedisSaver]:
    saver = RedisSaver.from_conn_string(cluster_url, cluster=True, prefix=unique("lus_test"))
    await saver.asetup()
    try:
        yield saver
    finally:
        await drop_saver(saver)


@pytest.mark.parametrize("api", ["async", "sync"])
async def test_conformance_on_cluster(cluster_url: str, api: str) -> None:
    @asynccontextmanager
    async def on_cluster() -> AsyncIterator[RedisSaver]:
        saver = RedisSaver(cluster_url, cluster=True, prefix=unique("lus_test"))
        await saver.asetup()
        try:
            yield saver
        finally:
            await drop_saver(saver)

    await assert_full_conformance("redis-cluster", on_cluster, api)

async def _cluster_keys(saver: RedisSaver, url: str) -> list[bytes]:
    client = aioredis.RedisCluster.from_url(url)
    try:
        return [key async for key in client.scan_iter(match=f"{saver.backend.prefix}:*")]
    finally:
        await client.aclose()


async def test_threads_spread_over_slots_each_in_one(csaver: RedisSaver, cluster_url: str) -> None:
    for thread_id in STRANGE_THREAD_IDS:
        stored = await put_values(csaver, thread_id, {"m": ["a" * 90, thread_id]}, run_id=f"run-{thread_id}")
        await csaver.aput_writes(stored, [("m", ["b" * 90])], "task")
    slots: dict[str, set[int]] = {}
    for key in await _cluster_keys(csaver, cluster_url):
        text = key.decode()
        if "{" in text:
            slots.setdefault(text[: text.index("}") + 1], set()).add(key_slot(key))
    assert len(slots) == len(STRANGE_THREAD_IDS)
    assert all(len(found) == 1 for found in slots.values())
    assert len({slot for found in slots.values() for slot in found}) > 1
    assert await csaver.alist_workflows() == sorted(STRANGE_THREAD_IDS)
    for thread_id in STRANGE_THREAD_IDS:
        tup = await csaver.aget_tuple({"configurable": {"thread_id": thread_id}})
        assert tup is not None and tup.checkpoint["channel_values"]["m"] == ["a" * 90, thread_id]


async def test_operations_across_threads(csaver: RedisSaver) -> None:
    for position in range(12):
        await put_values(csaver, f"thread-{position % 4}", {"v": position}, run_id=f"run-{position % 3}", pos=position)
    newest = [t.metadata["pos"] async for t in csaver.alist(None, limit=5)]
    assert newest == [11, 10, 9, 8, 7]
    filtered = [t.metadata["pos"] async for t in csaver.alist(None, filter={"run_id": "run-1"})]
    assert filtered == [10, 7, 4, 1]
    await csaver.acopy_thread("thread-0", "copy")
    copied = [t.metadata["pos"] async for t in csaver.alist({"configurable": {"thread_id": "copy"}})]
    assert copied == [8, 4, 0]
    await csaver.adelete_for_runs(["run-0", "run-2"])
    left = [(t.config["configurable"]["thread_id"], t.metadata["pos"]) async for t in csaver.alist(None)]
    assert left == [("thread-2", 10), ("thread-3", 7), ("thread-0", 4), ("copy", 4), ("thread-1", 1)]
    await csaver.adelete_thread("copy")
    assert await csaver.alist_workflows() == ["thread-0", "thread-1", "thread-2", "thread-3"]


async def test_chat_graph_on_cluster_both_apis(csaver: RedisSaver) -> None:
    graph = chat_graph(csaver)
    config: dict[str, Any] = {"configurable": {"thread_id": "chat"}}
    for turn in range(2):
        await graph.ainvoke({"messages": [HumanMessage(f"hi {turn}", id=f"h{turn}")]}, config)

    def blocking() -> int:
        result = graph.invoke({"messages": [HumanMessage("hi 2", id="h2")]}, config)
        return len(result["messages"])

    assert await asyncio.to_thread(blocking) == 9
    await csaver.aprune(["chat"])
    assert len((await graph.aget_state(config)).values["messages"]) == 9


async def test_ttl_on_cluster(cluster_url: str) -> None:
    saver = RedisSaver(cluster_url, cluster=True, prefix=unique("lus_test"), ttl=30)
    client = aioredis.RedisCluster.from_url(cluster_url)
    try:
        stored = await put_values(saver, "t", {"m": ["a" * 100]}, run_id="r")
        await saver.aput_writes(stored, [("m", ["b" * 100])], "task")
        keys = [k for k in await _cluster_keys(saver, cluster_url) if b"{" in k]
        assert len(keys) == 8  # no B:a: every checkpoint is in the root namespace
        assert len({await client.pexpiretime(key) for key in keys}) == 1
    finally:
        await client.aclose()
        await drop_saver(saver)


async def test_a_cluster_client_passed_in(cluster_url: str) -> None:
    client = aioredis.RedisCluster.from_url(cluster_url)
    saver = RedisSaver(client, prefix=unique("lus_test"))
    try:
        assert saver.backend.cluster
        await put_values(saver, "t", {"a": 1})
        assert await asyncio.to_thread(saver.list_workflows) == ["t"]
    finally:
        await drop_saver(saver)
    assert await client.ping()
    await client.aclose()


async def test_unreachable_cluster() -> None:
    saver = RedisSaver(f"redis://:pw-secret@127.0.0.1:{free_port()}/0", cluster=True, socket_timeout=0.2)
    try:
        with pytest.raises(BackendUnavailableError) as failed:
            await saver.aget_tuple({"configurable": {"thread_id": "t"}})
        assert "pw-secret" not in str(failed.value)
    finally:
        await saver.aclose()
