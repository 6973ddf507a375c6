"""Reads are bounded: planted values that would decode to far more than was stored raise
``CorruptDataError`` (naming thread, checkpoint and the limit to raise), with the memory
of the process growing by less than 100 MB, on every backend, through both APIs.

The attacks: deflate bombs (a 254 KiB item or skeleton, or a Redis record frame, that
inflates to 256 MiB), ~60 KiB of item references that expand into millions of list
elements (one segment named thousands of times, a tail naming one big item thousands of
times), and values nested 100,000 levels deep (msgpack arrays, msgpack extensions, JSON
in metadata and in "json" values). Legitimate data of the same shapes still reads back:
a 10 MB incompressible message, a 100,000-message thread, a highly compressible 20 MB
text, and data older writers deflated further than the limits allow (``read_limits=``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import ormsgpack
import pytest
from langgraph.checkpoint.serde.jsonplus import EXT_DELTA_SNAPSHOT

from langgraph_unified_store import CorruptDataError, InvalidConfigError, ReadLimits
from langgraph_unified_store.backends.redis.values import DEFLATED_RECORD_PREFIX
from langgraph_unified_store.backends.redis.values import RECORD_DICTIONARY as _RECORD_ZDICT
from langgraph_unified_store.core.codec import COMPRESSED_CHECKPOINT, COMPRESSED_ITEM
from langgraph_unified_store.core.dictionaries import CHECKPOINT_DICTIONARY_V1, ITEM_DICTIONARY_V1
from langgraph_unified_store.core.records import ITEM_LIST_TYPE, SEGMENT_TYPE
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import ALL_BACKENDS, make_saver, saver_for
from . import raw
from .hostile import put_state, reader_of, sandboxed_saver
from .private_servers import PrivateRedis

MIB = 1024 * 1024
MEMORY_BOUND = 100 * MIB
READ_BOUND = 120.0
APIS = ("async", "sync")


def _deflated_zeros(size: int, dictionary: bytes, wbits: int, header: bytes = b"") -> bytes:
    deflater = zlib.compressobj(9, zlib.DEFLATED, wbits, 9, zlib.Z_DEFAULT_STRATEGY, dictionary)
    chunk = bytes(MIB)
    parts = [deflater.compress(header)]
    for _ in range(size // MIB):
        parts.append(deflater.compress(chunk))
    parts.append(deflater.flush())
    return b"".join(parts)


def _bin_header(size: int) -> bytes:
    """A msgpack bin of ``size`` bytes: a bomb that would decode to one huge bytes value."""
    return b"\xc6" + struct.pack(">I", size)


@cache
def item_bomb() -> bytes:
    return _deflated_zeros(256 * MIB, ITEM_DICTIONARY_V1, zlib.MAX_WBITS, _bin_header(256 * MIB))


@cache
def skeleton_bomb() -> bytes:
    return _deflated_zeros(
        256 * MIB, CHECKPOINT_DICTIONARY_V1, zlib.MAX_WBITS, b"\x81\xa1v" + _bin_header(256 * MIB)
    )


@cache
def record_bomb() -> bytes:
    # Raw deflate and a CRC-32 after it, as backends/redis/values.py frames a legacy record (CRC bogus:
    # the limit must refuse it before the checksum is even computed).
    return _deflated_zeros(256 * MIB, _RECORD_ZDICT, -15) + b"\0\0\0\0"


def nested_exts(levels: int, arrays: int) -> bytes:
    """``levels`` msgpack extensions inside each other, each nesting ``arrays`` arrays."""
    sizes = [1]
    for _ in range(levels):
        sizes.append(6 + arrays + sizes[-1])
    parts = []
    for level in range(levels, 0, -1):
        payload = arrays + sizes[level - 1]
        parts.append(b"\xc9" + struct.pack(">I", payload) + bytes([EXT_DELTA_SNAPSHOT]))
        parts.append(b"\x91" * arrays)
    return b"".join(parts) + b"\xc0"


def messages(count: int, size: int = 80) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"message {i} " + "z" * size} for i in range(count)]


VALUES = {"messages": messages(40), "counter": 1}


# -- planting -----------------------------------------------------------------------------


async def _repeated_segment(saver: UnifiedCheckpointSaver) -> None:
    """A segment of 1000 references to one element, named 3750 times by the blob
    (60 KiB of references): 3.75 million elements if expanded."""
    items = saver.codec.encode_value(VALUES["messages"], "x")[3]
    element = next(i.ref for i in items if i.type != SEGMENT_TYPE)
    segment = next(i.ref for i in items if i.type == SEGMENT_TYPE)
    await raw.plant(saver, "victim", "segment", ormsgpack.packb([None] * 1000), None, element * 1000)
    await raw.plant(
        saver, "victim", "blob:messages", ormsgpack.packb(3750) + ormsgpack.packb([]),
        ITEM_LIST_TYPE, segment * 3750,
    )


async def _repeated_big_item(saver: UnifiedCheckpointSaver) -> None:
    """A tail naming one item 3750 times, the item a 1 KiB deflate of 1 MiB (within the
    floor, so readable alone): 3.75 GiB if expanded."""
    items = saver.codec.encode_value(VALUES["messages"], "x")[3]
    element = next(i.ref for i in items if i.type != SEGMENT_TYPE)
    small = _deflated_zeros(MIB, ITEM_DICTIONARY_V1, zlib.MAX_WBITS, _bin_header(MIB))
    await raw.plant(saver, "victim", "item", small, COMPRESSED_ITEM + "msgpack")
    await raw.plant(
        saver, "victim", "blob:messages", ormsgpack.packb(0) + ormsgpack.packb([None] * 3750),
        ITEM_LIST_TYPE, element * 3750,
    )


DEEP_JSON = b"[" * 100_000 + b"]" * 100_000

ATTACKS: dict[str, Callable[[UnifiedCheckpointSaver], Awaitable[Any]]] = {
    "item-bomb": lambda s: raw.overwrite(s, "victim", "item", item_bomb(), COMPRESSED_ITEM + "msgpack"),
    "skeleton-bomb": lambda s: raw.overwrite(
        s, "victim", "checkpoint", skeleton_bomb(), COMPRESSED_CHECKPOINT + "msgpack"
    ),
    "repeated-segment": _repeated_segment,
    "repeated-big-item": _repeated_big_item,
    "deep-msgpack": lambda s: raw.overwrite(s, "victim", "blob:counter", b"\x91" * 100_000 + b"\xc0"),
    "deep-extensions": lambda s: raw.overwrite(s, "victim", "blob:counter", nested_exts(100, 1000)),
    "deep-json-value": lambda s: raw.overwrite(s, "victim", "blob:counter", DEEP_JSON, "json"),
    "deep-json-metadata": lambda s: raw.overwrite(
        s, "victim", "metadata", b'{"deep": ' + DEEP_JSON + b"}"
    ),
    "record-bomb": lambda s: raw.overwrite(
        s, "victim", "checkpoint", record_bomb(), DEFLATED_RECORD_PREFIX + "msgpack"
    ),
}


def _cases() -> list[Any]:
    cases = []
    for backend in ALL_BACKENDS:
        for attack in ATTACKS:
            if attack == "record-bomb" and backend != "redis":
                continue  # only Redis deflates whole records
            if attack == "deep-json-metadata" and backend == "postgres":
                continue  # jsonb refuses to store it (see test_postgres_refuses_deep_metadata)
            for api in APIS:
                cases.append(pytest.param(backend, attack, api, id=f"{backend}-{attack}-{api}"))
    return cases


def _reads(reader: UnifiedCheckpointSaver, config: Any, api: str) -> list[Callable[[], Awaitable[Any]]]:
    latest = {"configurable": {"thread_id": "victim"}}
    if api == "async":
        async def listed() -> list[Any]:
            return [t async for t in reader.alist(latest)]

        return [
            lambda: reader.aget_tuple(config),
            lambda: reader.aget_tuple(latest),
            listed,
            lambda: reader.aload_state("victim"),
        ]
    return [
        lambda: asyncio.to_thread(reader.get_tuple, config),
        lambda: asyncio.to_thread(reader.get_tuple, latest),
        lambda: asyncio.to_thread(lambda: list(reader.list(latest))),
        lambda: asyncio.to_thread(reader.load_state, "victim"),
    ]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("backend", "attack", "api"), _cases())
async def test_planted_expansion_is_refused_in_bounded_memory(
    backend: str, attack: str, api: str, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    if "bomb" in attack:
        await asyncio.to_thread({"item-bomb": item_bomb, "skeleton-bomb": skeleton_bomb,
                                 "record-bomb": record_bomb}[attack])
    async with sandboxed_saver(backend, tmp_path, sandbox_redis) as saver:
        config = await put_state(saver, "victim", VALUES)
        checkpoint_id = config["configurable"]["checkpoint_id"]
        await ATTACKS[attack](saver)
        async with reader_of(saver) as reader:
            for read in _reads(reader, config, api):
                tracemalloc.start()
                try:
                    before = tracemalloc.get_traced_memory()[0]
                    with pytest.raises(CorruptDataError) as caught:
                        await asyncio.wait_for(read(), READ_BOUND)
                    peak = tracemalloc.get_traced_memory()[1]
                finally:
                    tracemalloc.stop()
                message = str(caught.value)
                assert "'victim'" in message and checkpoint_id in message, message
                if "deep" not in attack:
                    assert "read_limits" in message, message
                assert peak - before < MEMORY_BOUND, f"{attack}: {(peak - before) / MIB:.0f} MiB"


async def test_postgres_refuses_deep_metadata(tmp_path: Path) -> None:
    """PostgreSQL's jsonb cannot hold JSON nested 100,000 deep: the attack cannot be planted."""
    import asyncpg

    async with saver_for("postgres", tmp_path) as saver:
        await put_state(saver, "victim", VALUES)
        with pytest.raises(asyncpg.PostgresError):
            await ATTACKS["deep-json-metadata"](saver)


# -- legitimate data still reads back ------------------------------------------------------


async def _round_trip(saver: UnifiedCheckpointSaver, values: dict[str, Any], api: str) -> None:
    config = await put_state(saver, "legit", values)
    async with reader_of(saver) as reader:
        if api == "async":
            got = await reader.aget_tuple(config)
        else:
            got = await asyncio.to_thread(reader.get_tuple, config)
        assert got is not None
        assert got.checkpoint["channel_values"] == values


@pytest.mark.timeout(300)
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_legitimate_large_values_read_back(backend: str, api: str, tmp_path: Path) -> None:
    incompressible = base64.b64encode(os.urandom(7_500_000)).decode()  # 10 MB of text
    compressible = "ab" * 10_000_000  # 20 MB that deflates ~1000:1
    async with saver_for(backend, tmp_path) as saver:
        await _round_trip(saver, {"messages": [{"content": incompressible}, *messages(3)]}, api)
        await _round_trip(saver, {"messages": [{"content": compressible}, *messages(3)]}, api)
        await _round_trip(saver, {"text": compressible, "counter": 2}, api)
        # One 2 KB element 10,000 times (20 MB read from 2 KB of item): stored whole.
        document = {"doc": base64.b64encode(os.urandom(1500)).decode()}
        await _round_trip(saver, {"messages": [document] * 10_000}, api)
        # Models nested 40 deep (each an extension inside the previous one).
        await _round_trip(saver, {"tree": _tree(40)}, api)


@dataclass
class Node:
    name: str
    children: list[Node]


def _tree(depth: int) -> Node:
    node = Node("leaf", [])
    for level in range(depth):
        node = Node(f"level {level}", [node, Node("sibling", [])])
    return node


@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_hundred_thousand_message_thread_reads_back(backend: str, tmp_path: Path) -> None:
    chat = messages(100_000, 40)
    async with saver_for(backend, tmp_path) as saver:
        config = await put_state(saver, "long", {"messages": chat})
        grown = chat + messages(2, 50)
        config = await put_state(saver, "long", {"messages": grown},
                                 parent=config["configurable"]["checkpoint_id"])
        async with reader_of(saver) as reader:
            got = await reader.aget_tuple(config)
            assert got is not None and got.checkpoint["channel_values"]["messages"] == grown
            got = await asyncio.to_thread(reader.get_tuple, config)
            assert got is not None and got.checkpoint["channel_values"]["messages"] == grown


def _old_style_item(size: int) -> bytes:
    """An item the writers before read limits could store: deflated ~1000:1."""
    body = ormsgpack.packb({"content": "a" * size})
    deflater = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY,
                                ITEM_DICTIONARY_V1)
    return deflater.compress(body) + deflater.flush()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_older_data_past_the_ratio_reads_under_the_floor_or_raised_limits(
    backend: str, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    async with sandboxed_saver(backend, tmp_path, sandbox_redis) as saver:
        # Under the floor (16 MiB): read back whatever the ratio. One item in the list.
        config = await put_state(saver, "victim", {"messages": messages(1)})
        await raw.overwrite(saver, "victim", "item", _old_style_item(8 * MIB), COMPRESSED_ITEM + "msgpack")
        async with reader_of(saver) as reader:
            got = await reader.aget_tuple(config)
            assert got is not None
            assert got.checkpoint["channel_values"]["messages"][0] == {"content": "a" * 8 * MIB}
        # Past it: refused by default, and read once the user raises the limit it names.
        await raw.overwrite(saver, "victim", "item", _old_style_item(24 * MIB), COMPRESSED_ITEM + "msgpack")
        async with reader_of(saver) as reader:
            with pytest.raises(CorruptDataError, match=r"read_limits=ReadLimits"):
                await reader.aget_tuple(config)
            with pytest.raises(CorruptDataError, match=r"read_limits=ReadLimits"):
                await asyncio.to_thread(reader.get_tuple, config)
        async with reader_of(saver, read_limits=ReadLimits(floor=64 * MIB)) as reader:
            if reader is saver:  # memory: one saver, its limits fixed at construction
                return
            got = await asyncio.to_thread(reader.get_tuple, config)
            assert got is not None
            assert len(got.checkpoint["channel_values"]["messages"][0]["content"]) == 24 * MIB


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_read_limits_are_validated_on_every_saver(backend: str, tmp_path: Path) -> None:
    for bad in ({"ratio": 0}, {"floor": -1}, {"max_value_bytes": 1.5}, {"ratio": True},
                {"floor": 2 * 1024 * MIB}):
        with pytest.raises(InvalidConfigError, match="ReadLimits"):
            ReadLimits(**bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="read_limits"):
        make_saver(backend, tmp_path, read_limits={"ratio": 10})
    limits = ReadLimits(ratio=8, floor=MIB)
    saver = make_saver(backend, tmp_path, read_limits=limits)
    assert saver.read_limits is limits and saver.codec.limits is limits
    assert saver.backend.read_limits is limits
