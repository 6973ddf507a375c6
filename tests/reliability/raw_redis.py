"""Raw access to a RedisSaver's keys (see ``raw.py`` for the targets).

The layout is the one ``backends/redis/__init__.py`` documents: per thread, hashes under
``<prefix>:{t<tag>}`` whose values are length-prefixed frames. Targets replace one part
of a frame, the way a SQL backend's single column would be replaced; ``"record-frame"`` and
``"write-frame"`` garble a whole framed checkpoint or write value.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson
import redis.asyncio as aioredis

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from .raw import is_segment

_LEN = struct.Struct(">I")


def pack(*parts: bytes) -> bytes:
    return b"".join(_LEN.pack(len(p)) + p for p in parts)


def unpack(value: bytes) -> list[bytes]:
    parts, at = [], 0
    while at < len(value):
        (size,) = _LEN.unpack_from(value, at)
        parts.append(value[at + 4 : at + 4 + size])
        at += 4 + size
    return parts


def _client(saver: UnifiedCheckpointSaver) -> aioredis.Redis:
    return aioredis.Redis.from_url(saver.backend._url)  # type: ignore[attr-defined]


def _base(saver: UnifiedCheckpointSaver, thread_id: str) -> str:
    return saver.backend._base(thread_id)  # type: ignore[attr-defined, no-any-return]


def _rewrite(target: str, value: bytes, data: bytes, type_: str | None) -> bytes | None:
    """The new value for one hash entry, or None when this entry is not the target."""
    if target in ("metadata", "record-frame", "write-frame"):
        return data
    parts = unpack(value)
    if target in ("checkpoint", "versions", "versions-shape"):
        head, stored_type, payload = parts
        if target == "checkpoint":
            return pack(head, (type_ or stored_type.decode()).encode(), data)
        if target == "versions-shape":
            # Keep the head a JSON object, with channel_versions of the wrong shape.
            decoded = orjson.loads(head)
            decoded["v"] = orjson.loads(data)
            return pack(orjson.dumps(decoded), stored_type, payload)
        return pack(data, stored_type, payload)
    if target.startswith("write:"):
        refs, head, payload = parts
        decoded = orjson.loads(head)
        if decoded[2] != target[6:]:
            return None
        if type_ is not None:
            decoded[4] = type_
        return pack(refs, orjson.dumps(decoded), data)
    refs, stored_type, payload = parts
    if target in ("item", "segment") and is_segment(stored_type.decode()) != (
        target == "segment"
    ):
        return None
    return pack(refs, (type_ or stored_type.decode()).encode(), data)


def _hash_of(target: str) -> str:
    if target in ("checkpoint", "versions", "versions-shape", "record-frame"):
        return ":c"
    if target == "metadata":
        return ":m"
    if target.startswith("blob:"):
        return ":b"
    if target.startswith("write:") or target == "write-frame":
        return ":w"
    return ":t"


def _wanted_field(target: str, field: bytes) -> bool:
    if target.startswith("blob:"):
        return field.split(b":")[1] == target[5:].encode().hex().encode()
    return True


async def _edit(
    saver: UnifiedCheckpointSaver,
    thread_id: str,
    target: str,
    data: bytes,
    type_: str | None,
    refs: bytes | None = None,
) -> int:
    """Replace the target's part of each matching frame (and, with ``refs``, the item
    references framed first in a blob, write, item or segment)."""
    client = _client(saver)
    try:
        key = _base(saver, thread_id) + _hash_of(target)
        changed = 0
        for field, value in (await client.hgetall(key)).items():
            if not _wanted_field(target, field):
                continue
            new = _rewrite(target, value, data, type_)
            if new is None:
                continue
            if refs is not None:
                new = pack(refs, *unpack(new)[1:])
            await client.hset(key, field, new)
            changed += 1
        return changed
    finally:
        await client.aclose()


async def overwrite(
    saver: UnifiedCheckpointSaver, thread_id: str, target: str, data: bytes, type_: str | None
) -> int:
    return await _edit(saver, thread_id, target, data, type_)


async def delete(saver: UnifiedCheckpointSaver, thread_id: str, target: str) -> int:
    client = _client(saver)
    try:
        if target.startswith("blob:"):
            key = _base(saver, thread_id) + ":b"
            fields = [f for f in await client.hkeys(key) if _wanted_field(target, f)]
            if fields:
                await client.hdel(key, *fields)
            return len(fields)
        key = _base(saver, thread_id) + ":t"
        doomed = [
            field
            for field, value in (await client.hgetall(key)).items()
            if is_segment(unpack(value)[1].decode()) == (target == "segment")
        ]
        if doomed:
            await client.hdel(key, *doomed)
        return len(doomed)
    finally:
        await client.aclose()


async def dump(saver: UnifiedCheckpointSaver) -> bytes:
    client = _client(saver)
    parts: list[bytes] = []
    try:
        prefix: str = saver.backend.prefix  # type: ignore[attr-defined]
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + ":*"
        async for key in client.scan_iter(match=pattern, count=500):
            parts.append(key)
            kind = (await client.type(key)).decode()
            value: Any
            if kind == "hash":
                for field, value in (await client.hgetall(key)).items():
                    parts += [field, value]
            elif kind == "zset":
                parts += await client.zrange(key, 0, -1)
            elif kind == "set":
                parts += list(await client.smembers(key))
            elif kind == "list":
                parts += await client.lrange(key, 0, -1)
            elif kind == "string":
                value = await client.get(key)
                parts.append(value or b"")
            else:
                raise AssertionError(f"unexpected Redis key type {kind} at {key!r}")
    finally:
        await client.aclose()
    return b"\n".join(parts)


def _refs(packed: bytes) -> tuple[bytes, ...]:
    return tuple(packed[i : i + 16] for i in range(0, len(packed), 16))


async def dangling_rows(saver: UnifiedCheckpointSaver, thread_id: str) -> tuple[Any, ...]:
    """A thread's hashes as ``raw._dangling`` takes them (see backends/redis/__init__.py's layout)."""
    client = _client(saver)
    try:
        base = _base(saver, thread_id)
        records = await client.hgetall(base + ":c")
        blob_values = await client.hgetall(base + ":b")
        write_values = await client.hvals(base + ":w")
        item_values = await client.hgetall(base + ":t")
    finally:
        await client.aclose()
    checkpoints = {s.decode(): orjson.loads(unpack(v)[0])["v"] for s, v in records.items()}
    blobs = {}
    for field, value in blob_values.items():
        _ns, channel_hex, version = field.split(b":", 2)
        blobs[(bytes.fromhex(channel_hex.decode()).decode(), version.decode())] = _refs(unpack(value)[0])
    writes = [_refs(unpack(v)[0]) for v in write_values]
    items = {ref: _refs(unpack(v)[0]) for ref, v in item_values.items()}
    return checkpoints, blobs, writes, items


async def checkpoint_count(saver: UnifiedCheckpointSaver, thread_id: str) -> int:
    client = _client(saver)
    try:
        return int(await client.hlen(_base(saver, thread_id) + ":c"))
    finally:
        await client.aclose()


async def plant(
    saver: UnifiedCheckpointSaver,
    thread_id: str,
    target: str,
    data: bytes,
    type_: str | None,
    refs: bytes,
) -> int:
    """Set data (type) and item references of a blob, write, item or segment."""
    return await _edit(saver, thread_id, target, data, type_, refs)


async def stored_thread(saver: UnifiedCheckpointSaver, thread_id: str) -> Any:
    """A thread's hashes as ``raw.StoredThread``: checkpoints by number (B:i members
    ``P NUL n`` give each number its namespace), blobs by field, writes by owner."""
    from .raw import StoredThread

    client = _client(saver)
    base = _base(saver, thread_id)
    try:
        members = await client.zrange(base + ":i", 0, -1)
        records = await client.hgetall(base + ":c")
        blobs = await client.hgetall(base + ":b")
        writes = await client.hgetall(base + ":w")
        items = await client.hgetall(base + ":t")
        existing = [s for s in SUFFIXES if await client.exists(base + s)]
    finally:
        await client.aclose()
    ns_hex = {}
    for m in members:
        p, number = m.rsplit(b"\x00", 1)
        ns_hex[number] = p.split(b":", 1)[0]
    stored = StoredThread()
    for number, value in records.items():
        stored.checkpoints[number] = orjson.loads(unpack(value)[0])["v"]

    def blob_key(number: Any, channel: str, version: str) -> bytes:
        return ns_hex.get(number, b"?") + b":" + channel.encode().hex().encode() + b":" + version.encode()

    stored.blob_key = blob_key
    stored.blobs = {f: _refs(unpack(v)[0]) for f, v in blobs.items()}
    for f, v in writes.items():
        owner = f.rsplit(b"\x00", 1)[0]
        stored.writes.append((owner if owner in stored.checkpoints else None, _refs(unpack(v)[0])))
    stored.items = {ref: _refs(unpack(v)[0]) for ref, v in items.items()}
    # Every key of a thread with no checkpoint is left behind (B:r also counts numbers).
    stored.other = len(existing) if not members else len(set(records) ^ set(ns_hex))
    return stored


SUFFIXES = (":i", ":a", ":c", ":m", ":r", ":b", ":w", ":t")
