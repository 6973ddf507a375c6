"""The lifecycle on Redis, seen in the raw keys: what removal, forget and sweep leave
(nothing), native expiry, pinning (PERSIST), refresh_on_read, a write to an expired
thread, a cluster, filter payloads, and threads of the earlier release.

Times come from an injected clock (``clock=lambda: now[0]``) unless a test waits for
Redis itself to expire keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from langgraph_unified_store import RedisSaver

from ..support import REDIS_URL, drop_saver, put_values, saver_for, unique

pytestmark = pytest.mark.redis

KEYS_PER_THREAD = 9


def config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


class Clock:
    """A clock a test moves by hand, starting at the real time."""

    def __init__(self) -> None:
        self.now = [time.time()]

    def __call__(self) -> float:
        return self.now[0]

    def advance(self, seconds: float) -> None:
        self.now[0] += seconds


@asynccontextmanager
async def redis_saver(tmp_path: Path, **options: Any) -> AsyncIterator[RedisSaver]:
    async with saver_for("redis", tmp_path, **options) as saver:
        assert isinstance(saver, RedisSaver)
        yield saver


async def raw_keys(saver: RedisSaver, url: str = REDIS_URL, *, cluster: bool = False) -> list[bytes]:
    client: Any = aioredis.RedisCluster.from_url(url) if cluster else aioredis.Redis.from_url(url)
    try:
        return [key async for key in client.scan_iter(match=f"{saver.backend.prefix}:*")]
    finally:
        await client.aclose()


async def traces(saver: RedisSaver, thread_id: str, url: str = REDIS_URL, *, cluster: bool = False) -> list[str]:
    """Every key of the thread, and every global zset or set naming it."""
    base = saver.backend._base(thread_id).encode()
    client: Any = aioredis.RedisCluster.from_url(url) if cluster else aioredis.Redis.from_url(url)
    found: list[str] = []
    try:
        async for key in client.scan_iter(match=f"{saver.backend.prefix}:*"):
            if key.startswith(base + b":"):
                found.append(key.decode())
                continue
            kind = await client.type(key)
            member = thread_id.encode()
            named = (kind == b"zset" and await client.zscore(key, member) is not None) or (
                kind == b"set" and bool(await client.sismember(key, member))
            )
            if named:
                found.append(f"{key.decode()} names it")
    finally:
        await client.aclose()
    return found


async def pttls(saver: RedisSaver, thread_id: str) -> dict[str, int]:
    base = saver.backend._base(thread_id)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        out: dict[str, int] = {}
        for suffix in "iacmrbwth":
            key = f"{base}:{suffix}"
            if await client.exists(key):
                out[suffix] = await client.pttl(key)
        return out
    finally:
        await client.aclose()


async def expire_times(saver: RedisSaver, thread_id: str) -> dict[str, int]:
    base = saver.backend._base(thread_id)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return {s: await client.pexpiretime(f"{base}:{s}") for s in "icmrbh"}
    finally:
        await client.aclose()


async def full_thread(saver: RedisSaver, thread_id: str, **metadata: Any) -> Any:
    stored = await put_values(saver, thread_id, {"m": ["a" * 100, "b" * 100]}, run_id="r1", **metadata)
    await saver.aput_writes(stored, [("m", ["c" * 100])], "task")
    await put_values(saver, thread_id, {"x": 1}, ns="child:1", **metadata)
    return stored


# -- listing ---------------------------------------------------------------------------------


async def test_list_threads_pages_by_id_with_times_and_stats(tmp_path: Path) -> None:
    clock = Clock()
    async with redis_saver(tmp_path, ttl=60, clock=clock) as saver:
        start = clock()
        await full_thread(saver, "b")
        clock.advance(5)
        await put_values(saver, "a", {"x": 1})
        await put_values(saver, "c", {"x": 1})
        await saver.aput_writes(
            {"configurable": {"thread_id": "w", "checkpoint_ns": "", "checkpoint_id": "1"}},
            [("x", 1)], "task",
        )  # writes only: not listed
        page = await saver.alist_threads(limit=2)
        assert [t.thread_id for t in page.threads] == ["a", "b"]
        assert page.next_cursor is not None
        b = page.threads[1]
        assert b.namespaces == ("", "child:1") and b.checkpoints == 2
        assert b.first_write == pytest.approx(start, abs=0.002)
        assert b.last_write == pytest.approx(start, abs=0.002)
        assert b.expires_at == pytest.approx(start + 60, abs=0.002)
        assert b.stored_bytes is not None and b.stored_bytes > 0
        rest = await asyncio.to_thread(saver.list_threads, limit=2, cursor=page.next_cursor)
        assert [t.thread_id for t in rest.threads] == ["c"] and rest.next_cursor is None
        since = datetime.fromtimestamp(start + 1, UTC)
        assert [t.thread_id for t in (await saver.alist_threads(updated_after=since)).threads] == ["a", "c"]
        assert [t.thread_id for t in (await saver.alist_threads(updated_before=since)).threads] == ["b"]
        clock.advance(56)  # b has expired (not yet on the server): gone to the listing
        assert [t.thread_id for t in (await saver.alist_threads()).threads] == ["a", "c"]
        assert await saver.alist_workflows() == ["a", "c"]


# -- removal leaves nothing ------------------------------------------------------------------


async def test_delete_forget_and_sweep_leave_no_key(tmp_path: Path) -> None:
    clock = Clock()
    async with redis_saver(tmp_path, ttl=60, clock=clock) as saver:
        for thread_id, user in [("old", "u1"), ("erased", "u2"), ("expired", "u1"), ("kept", "u1")]:
            await full_thread(saver, thread_id, user=user)
            clock.advance(10)
        await saver.adelete_thread("kept")
        assert await traces(saver, "kept") == []
        await put_values(saver, "kept", {"x": 1}, user="u1")

        receipt = await saver.aforget({"user": "u2"})
        assert receipt.verified and receipt.thread_ids == ["erased"]
        assert receipt.checkpoints == 2 and receipt.writes == 1 and receipt.blobs and receipt.items
        assert await traces(saver, "erased") == []

        removed = await asyncio.to_thread(saver.delete_threads, timedelta(seconds=35))
        assert removed.thread_ids == ["old"]
        assert await traces(saver, "old") == []

        clock.advance(45)  # "expired" was written 65 s ago; Redis keeps its keys for now
        assert len([k for k in await traces(saver, "expired") if ":{" in k]) == KEYS_PER_THREAD
        swept = await saver.asweep()
        assert swept.thread_ids == ["expired"] and swept.checkpoints == 2
        assert await traces(saver, "expired") == []
        assert [t.thread_id for t in (await saver.alist_threads()).threads] == ["kept"]
        assert (await saver.asweep()).thread_ids == []


async def test_native_expiry_removes_every_key_and_sweep_drops_the_index(tmp_path: Path) -> None:
    async with redis_saver(tmp_path, ttl=1) as saver:
        await full_thread(saver, "short")
        assert len(await pttls(saver, "short")) == KEYS_PER_THREAD
        for _ in range(100):  # wait (no timing asserted) until Redis has expired the keys
            if not await pttls(saver, "short"):
                break
            await asyncio.sleep(0.1)
        assert await pttls(saver, "short") == {}
        assert len(await traces(saver, "short")) == 3  # the global zsets still name it
        swept = await asyncio.to_thread(saver.sweep)
        assert swept.thread_ids == ["short"] and swept.checkpoints == 0
        assert await traces(saver, "short") == []
        assert await saver.backend.thread_residue(["short"]) == []
        assert (await saver.alist_threads()).threads == []


async def test_a_listing_drops_threads_redis_expired(tmp_path: Path) -> None:
    async with redis_saver(tmp_path, ttl=1) as saver:
        await put_values(saver, "short", {"x": 1})
        for _ in range(100):
            if not await pttls(saver, "short"):
                break
            await asyncio.sleep(0.1)
        assert (await saver.alist_threads()).threads == []
        assert await traces(saver, "short") == []


# -- ttl per thread --------------------------------------------------------------------------


async def test_pinning_persists_every_key(tmp_path: Path) -> None:
    clock = Clock()
    async with redis_saver(tmp_path, ttl=60, clock=clock) as saver:
        await full_thread(saver, "t")
        assert all(ttl > 0 for ttl in (await pttls(saver, "t")).values())
        await saver.aset_ttl("t", None)
        kept = await pttls(saver, "t")
        assert len(kept) == KEYS_PER_THREAD and set(kept.values()) == {-1}
        await put_values(saver, "t", {"x": 2})  # a write keeps the pin
        assert set((await pttls(saver, "t")).values()) == {-1}
        clock.advance(3600)
        assert await saver.aget_tuple(config("t")) is not None
        assert (await saver.asweep()).thread_ids == []
        (info,) = (await saver.alist_threads()).threads
        assert info.expires_at is None
        await put_values(saver, "t", {"x": 3})  # the ttl counts from the last write
        await asyncio.to_thread(saver.set_ttl, "t", 30)
        (info,) = (await saver.alist_threads()).threads
        assert info.expires_at == pytest.approx(info.last_write + 30, abs=0.002)
        deadlines = set((await expire_times(saver, "t")).values())
        assert len(deadlines) == 1 and abs(deadlines.pop() - info.expires_at * 1000) < 100
        clock.advance(31)
        assert await saver.aget_tuple(config("t")) is None
        assert (await saver.asweep()).thread_ids == ["t"]
        assert await traces(saver, "t") == []


async def test_refresh_on_read_moves_the_expiry_not_the_last_write(tmp_path: Path) -> None:
    clock = Clock()
    async with redis_saver(tmp_path, ttl=60, refresh_on_read=True, clock=clock) as saver:
        await put_values(saver, "t", {"x": 1})
        written = clock()
        before = await expire_times(saver, "t")
        clock.advance(50)
        assert await saver.aget_tuple(config("t")) is not None
        (info,) = (await saver.alist_threads()).threads
        assert info.last_write == pytest.approx(written, abs=0.002)
        assert info.expires_at == pytest.approx(written + 110, abs=0.002)
        after = await expire_times(saver, "t")
        assert len(set(after.values())) == 1  # the keys moved too, together
        assert abs(min(after.values()) - max(before.values()) - 50_000) < 100
        clock.advance(50)  # 100 s after the write, 50 after the read
        assert len(await asyncio.to_thread(lambda: list(saver.list(config("t"))))) == 1
        clock.advance(61)
        assert await saver.aget_tuple(config("t")) is None


async def test_earlier_name_refresh_ttl_on_read(tmp_path: Path) -> None:
    saver = RedisSaver(REDIS_URL, prefix=unique("lus_test"), ttl=60, refresh_ttl_on_read=True)
    try:
        assert saver.backend.lifecycle.refresh_on_read and saver.backend.lifecycle.ttl == 60
    finally:
        await drop_saver(saver)


async def test_a_write_to_an_expired_thread_does_not_bring_it_back(tmp_path: Path) -> None:
    clock = Clock()
    async with redis_saver(tmp_path, ttl=60, clock=clock) as saver:
        first = await put_values(saver, "t", {"m": ["a" * 60]})
        await put_values(saver, "t", {"m": ["a" * 60, "b" * 60]}, parent=first["configurable"]["checkpoint_id"])
        clock.advance(61)
        assert await saver.aget_tuple(config("t")) is None
        again = await put_values(saver, "t", {"m": ["a" * 60]})
        listed = [t async for t in saver.alist(config("t"))]
        assert [t.config["configurable"]["checkpoint_id"] for t in listed] == [
            again["configurable"]["checkpoint_id"]
        ]
        tup = await saver.aget_tuple(config("t"))
        assert tup is not None and tup.checkpoint["channel_values"]["m"] == ["a" * 60]
        (info,) = (await saver.alist_threads()).threads
        assert info.first_write == pytest.approx(clock(), abs=0.002) and info.checkpoints == 1


# -- filters ---------------------------------------------------------------------------------

PAYLOADS = ["*", "') or 1=1 --", "\\", '"', '{"user": "x"}', "]]", "a\nb", "%s", "$ne"]


async def test_filter_payloads_match_only_themselves(tmp_path: Path) -> None:
    async with redis_saver(tmp_path) as saver:
        for i, payload in enumerate(PAYLOADS):
            await put_values(saver, f"t{i}", {"x": i}, user=payload, n=i)
        await put_values(saver, "plain", {"x": 0}, user="alice", n=True)
        for i, payload in enumerate(PAYLOADS):
            page = await saver.alist_threads(filter={"user": payload})
            assert [t.thread_id for t in page.threads] == [f"t{i}"]
        assert [t.thread_id for t in (await saver.alist_threads(filter={"n": 1})).threads] == ["t1"]
        assert [t.thread_id for t in (await saver.alist_threads(filter={"n": True})).threads] == ["plain"]
        assert (await saver.alist_threads(filter={"*": "*"})).threads == []
        assert (await saver.alist_threads(filter={"user": 2**60})).threads == []
        receipt = await saver.aforget({"user": "*"})
        assert receipt.verified and receipt.thread_ids == ["t0"]
        assert len((await saver.alist_threads()).threads) == len(PAYLOADS)


async def test_a_big_integer_filter_is_compared_exactly(tmp_path: Path) -> None:
    async with redis_saver(tmp_path) as saver:
        await put_values(saver, "big", {"x": 1}, n=2**60)
        await put_values(saver, "near", {"x": 1}, n=2**60 + 1)
        assert [t.thread_id for t in (await saver.alist_threads(filter={"n": 2**60})).threads] == ["big"]
        assert (await saver.adelete_threads(filter={"n": 2**60 + 1})).thread_ids == ["near"]


# -- the earlier release -----------------------------------------------------------------------


async def test_threads_of_the_earlier_release_are_listed_after_setup() -> None:
    from ..test_stored_formats import REDIS, restore_redis, saver_options

    store = REDIS["stores"]["plain"]
    prefix = unique("lus_fmt")
    saver = RedisSaver(REDIS_URL, prefix=prefix, **saver_options(store))
    try:
        await restore_redis(store, prefix)
        await saver.asetup()
        await saver.asetup()  # idempotent
        listed = (await saver.alist_threads()).threads
        assert sorted(t.thread_id for t in listed) == sorted(await saver.alist_workflows())
        # Stamped as written at the upgrade, as the SQL migrations stamp theirs: an age
        # cutoff counts from there, not from 1970.
        upgraded = time.time()
        assert listed and all(t.expires_at is None for t in listed)
        assert all(t.first_write == t.last_write == pytest.approx(upgraded, abs=60) for t in listed)
        assert (await saver.adelete_threads(timedelta(hours=1))).thread_ids == []
        thread_id = listed[0].thread_id
        await put_values(saver, thread_id, {"x": 1})
        (info,) = [t for t in (await saver.alist_threads()).threads if t.thread_id == thread_id]
        assert info.last_write >= listed[0].last_write
        receipt = await saver.adelete_threads(timedelta(0))
        assert sorted(receipt.thread_ids) == sorted(t.thread_id for t in listed)
        assert [k for k in await raw_keys(saver) if b"{" in k] == []
    finally:
        await drop_saver(saver)


# -- a cluster -------------------------------------------------------------------------------


async def test_lifecycle_on_a_cluster(cluster_url: str) -> None:
    clock = Clock()
    saver = RedisSaver(cluster_url, cluster=True, prefix=unique("lus_test"), ttl=60, clock=clock)
    try:
        await saver.asetup()
        for thread_id in ["a", "b", "c", "d"]:
            await full_thread(saver, thread_id, user=thread_id)
        await saver.aset_ttl("d", None)
        await saver.aset_ttl("c", 10)
        page = await saver.alist_threads(limit=3)
        assert [t.thread_id for t in page.threads] == ["a", "b", "c"]
        assert page.threads[2].expires_at == pytest.approx(page.threads[2].last_write + 10, abs=0.002)
        receipt = await saver.aforget({"user": "a"})
        assert receipt.verified and receipt.thread_ids == ["a"]
        clock.advance(11)
        assert (await saver.asweep()).thread_ids == ["c"]
        clock.advance(50)
        assert (await asyncio.to_thread(saver.sweep)).thread_ids == ["b"]
        for thread_id in ["a", "b", "c"]:
            assert await traces(saver, thread_id, cluster_url, cluster=True) == []
        assert [t.thread_id for t in (await saver.alist_threads()).threads] == ["d"]
        assert len([k for k in await traces(saver, "d", cluster_url, cluster=True) if ":{" in k]) == KEYS_PER_THREAD
    finally:
        await drop_saver(saver)
