"""Direct access to what each backend stored, bypassing the saver.

The hostile-input, safe-deserialization and encryption tests use it to read raw rows
and keys, and to corrupt or replace stored values the way a broken disk, a bad
migration or an attacker with database access would.

A *target* names which stored values of one thread to touch:
``"checkpoint"`` (the checkpoint record's data), ``"metadata"``, ``"versions"``
(a checkpoint's channel_versions), ``"blob:<channel>"``, ``"write:<channel>"``,
``"item"`` (list elements stored as items) and ``"segment"`` (items that hold runs of
element references).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from langgraph_unified_store.core.records import SEGMENT_TYPE
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

# Targets a backend can hold garbage in (a typed JSON column cannot hold garbage bytes).
TARGETS = (
    "checkpoint",
    "metadata",
    "versions",
    "versions-shape",
    "blob:messages",
    "write:messages",
    "item",
    "segment",
)


class NothingMatched(AssertionError):
    pass


SEALED_SEGMENT_TYPE = "lus2:" + SEGMENT_TYPE + "+"


def is_segment(type_: str) -> bool:
    """A segment item's stored type, plain or sealed by encryption (``lus2:lus.segment+...``)."""
    return type_ == SEGMENT_TYPE or type_.startswith(SEALED_SEGMENT_TYPE)


def targets_for(backend: str) -> list[str]:
    """What can be corrupted on ``backend``: garbage in each stored value, or a missing item."""
    targets = [t for t in TARGETS if not (backend == "memory" and t.startswith("versions"))]
    if backend == "redis":
        # Redis keeps a checkpoint or write as one framed value: garble the frame too.
        targets += ["record-frame", "write-frame"]
    return [*targets, "missing-item", "missing-segment", "missing-blob:messages"]


# (backend, target) -> why reading it back does not fail the way it should yet.
KNOWN_BUGS: dict[tuple[str, str], str] = {}


def known_bug(backend: str, target: str) -> list[Any]:
    reason = KNOWN_BUGS.get((backend, target))
    if reason is None:
        return []
    import pytest

    return [pytest.mark.xfail(strict=True, reason=reason)]


def garbage_for(backend: str, target: str, garbage: bytes) -> bytes:
    """Garbage the column can hold: a typed JSON column only takes valid JSON."""
    if target == "versions-shape":
        return b'["valid JSON", "but not an object"]'
    if target in ("metadata", "versions"):
        if backend == "postgres":
            return b'"a JSON string where an object belongs"'
        return b"\xff\xfe{not json"
    return garbage


# -- memory -------------------------------------------------------------------------------


def _memory_thread(saver: UnifiedCheckpointSaver, thread_id: str) -> Any:
    return saver.backend._threads[thread_id]  # type: ignore[attr-defined]


def _memory_records(saver: UnifiedCheckpointSaver, thread_id: str, target: str) -> list[Any]:
    thread = _memory_thread(saver, thread_id)
    if target in ("checkpoint", "metadata", "versions"):
        return [r for by_id in thread.checkpoints.values() for r in by_id.values()]
    if target.startswith("blob:"):
        return [b for (_, ch, _), b in thread.blobs.items() if ch == target[5:]]
    if target.startswith("write:"):
        return [w for ws in thread.writes.values() for w in ws.values() if w.channel == target[6:]]
    if target in ("item", "segment"):
        return [i for i in thread.items.values() if is_segment(i.type) == (target == "segment")]
    raise ValueError(target)


def _memory_overwrite(
    saver: UnifiedCheckpointSaver, thread_id: str, target: str, data: bytes, type_: str | None
) -> int:
    records = _memory_records(saver, thread_id, target)
    for record in records:
        if target == "metadata":
            record.metadata = data
        elif target == "versions":
            raise ValueError("memory keeps channel_versions as a dict, not bytes")
        else:
            record.data = data
            if type_ is not None:
                record.type = type_
    return len(records)


def _memory_delete(saver: UnifiedCheckpointSaver, thread_id: str, target: str) -> int:
    thread = _memory_thread(saver, thread_id)
    if target.startswith("blob:"):
        blobs = [key for key in thread.blobs if key[1] == target[5:]]
        for key in blobs:
            del thread.blobs[key]
        return len(blobs)
    doomed = [ref for ref, item in thread.items.items()
              if is_segment(item.type) == (target == "segment")]
    for ref in doomed:
        del thread.items[ref]
    return len(doomed)


def _memory_dump(saver: UnifiedCheckpointSaver) -> bytes:
    parts: list[bytes] = []
    for thread_id, thread in saver.backend._threads.items():  # type: ignore[attr-defined]
        parts.append(thread_id.encode("utf-8", "surrogatepass"))
        for by_id in thread.checkpoints.values():
            for r in by_id.values():
                parts += [r.data, r.metadata, repr(r.channel_versions).encode(), r.type.encode()]
        for b in thread.blobs.values():
            parts += [b.data, b.type.encode(), b.channel.encode()]
        for ws in thread.writes.values():
            for w in ws.values():
                parts += [w.data, w.type.encode(), w.channel.encode(), w.task_id.encode()]
        for i in thread.items.values():
            parts += [i.data, i.type.encode(), i.ref]
    return b"\n".join(parts)


# -- sqlite -------------------------------------------------------------------------------

_SQLITE_WHERE = {
    "checkpoint": ("checkpoints", "data", ""),
    "metadata": ("checkpoints", "metadata", ""),
    "versions": ("checkpoints", "channel_versions", ""),
    "versions-shape": ("checkpoints", "channel_versions", ""),
    "item": ("items", "data", f" AND type != '{SEGMENT_TYPE}' AND type NOT LIKE '{SEALED_SEGMENT_TYPE}%'"),
    "segment": ("items", "data", f" AND (type = '{SEGMENT_TYPE}' OR type LIKE '{SEALED_SEGMENT_TYPE}%')"),
}


def _sqlite(saver: UnifiedCheckpointSaver) -> sqlite3.Connection:
    return sqlite3.connect(saver.backend.path, timeout=30, isolation_level=None)  # type: ignore[attr-defined]


def _sqlite_target(target: str) -> tuple[str, str, str, list[Any]]:
    if target.startswith("blob:"):
        return "blobs", "data", " AND channel = ?", [target[5:]]
    if target.startswith("write:"):
        return "writes", "data", " AND channel = ?", [target[6:]]
    table, column, extra = _SQLITE_WHERE[target]
    return table, column, extra, []


def _sqlite_overwrite(
    saver: UnifiedCheckpointSaver, thread_id: str, target: str, data: bytes, type_: str | None
) -> int:
    table, column, extra, params = _sqlite_target(target)
    db = _sqlite(saver)
    try:
        value: Any = data.decode("utf-8", "replace") if column in ("metadata", "channel_versions") else data
        sets = f"{column} = ?" + (", type = ?" if type_ is not None else "")
        values = [value] + ([type_] if type_ is not None else [])
        cursor = db.execute(
            f"UPDATE {table} SET {sets} WHERE thread_id = ?{extra}", [*values, thread_id, *params]
        )
        return cursor.rowcount
    finally:
        db.close()


def _sqlite_delete(saver: UnifiedCheckpointSaver, thread_id: str, target: str) -> int:
    table, _, extra, params = _sqlite_target(target)
    db = _sqlite(saver)
    try:
        return db.execute(f"DELETE FROM {table} WHERE thread_id = ?{extra}", [thread_id, *params]).rowcount
    finally:
        db.close()


def _sqlite_dump(saver: UnifiedCheckpointSaver) -> bytes:
    db = _sqlite(saver)
    parts: list[bytes] = []
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f"SELECT * FROM {table}"):
                parts.extend(_as_bytes(v) for v in row)
    finally:
        db.close()
    # The file itself too: freed pages and the WAL may still hold old values.
    for suffix in ("", "-wal"):
        try:
            with open(saver.backend.path + suffix, "rb") as f:  # type: ignore[attr-defined]
                parts.append(f.read())
        except FileNotFoundError:
            pass
    return b"\n".join(parts)


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")


# -- dispatch -----------------------------------------------------------------------------


async def overwrite(
    saver: UnifiedCheckpointSaver, thread_id: str, target: str, data: bytes, type_: str | None = None
) -> int:
    """Replace the stored bytes (and, if given, the serde type) of ``target`` in a thread."""
    name = saver.backend.name
    if name == "memory":
        changed = _memory_overwrite(saver, thread_id, target, data, type_)
    elif name == "sqlite":
        changed = _sqlite_overwrite(saver, thread_id, target, data, type_)
    elif name == "postgres":
        from .raw_postgres import overwrite as pg_overwrite

        changed = await pg_overwrite(saver, thread_id, target, data, type_)
    elif name == "redis":
        from .raw_redis import overwrite as redis_overwrite

        changed = await redis_overwrite(saver, thread_id, target, data, type_)
    else:
        raise ValueError(name)
    if not changed:
        raise NothingMatched(f"{name}: no stored {target} in thread {thread_id!r}")
    return changed


async def delete(saver: UnifiedCheckpointSaver, thread_id: str, target: str) -> int:
    """Delete the stored items (``"item"``), segments (``"segment"``) or the blobs of one
    channel (``"blob:<channel>"``) of a thread."""
    name = saver.backend.name
    if name == "memory":
        gone = _memory_delete(saver, thread_id, target)
    elif name == "sqlite":
        gone = _sqlite_delete(saver, thread_id, target)
    elif name == "postgres":
        from .raw_postgres import delete as pg_delete

        gone = await pg_delete(saver, thread_id, target)
    elif name == "redis":
        from .raw_redis import delete as redis_delete

        gone = await redis_delete(saver, thread_id, target)
    else:
        raise ValueError(name)
    if not gone:
        raise NothingMatched(f"{name}: no stored {target} in thread {thread_id!r}")
    return gone


async def dump(saver: UnifiedCheckpointSaver) -> bytes:
    """Every byte the backend holds for this saver (rows, keys, values), concatenated."""
    name = saver.backend.name
    if name == "memory":
        return _memory_dump(saver)
    if name == "sqlite":
        return _sqlite_dump(saver)
    if name == "postgres":
        from .raw_postgres import dump as pg_dump

        return await pg_dump(saver)
    if name == "redis":
        from .raw_redis import dump as redis_dump

        return await redis_dump(saver)
    raise ValueError(name)


# -- dangling references --------------------------------------------------------------------


def _dangling(
    checkpoints: dict[str, dict[str, str]],
    blobs: dict[tuple[str, str], tuple[bytes, ...]],
    writes: list[tuple[bytes, ...]],
    items: dict[bytes, tuple[bytes, ...]],
    channels: set[str],
) -> list[str]:
    """What stored rows name and storage lacks: (checkpoint id -> channel -> version),
    (channel, version) -> item refs of blobs, item refs of writes, ref -> inner refs."""
    problems: list[str] = []
    for checkpoint_id, versions in checkpoints.items():
        for channel, version in versions.items():
            if channel in channels and (channel, version) not in blobs:
                problems.append(f"checkpoint {checkpoint_id} names missing blob {channel}@{version}")
    named = [ref for refs in blobs.values() for ref in refs] + [r for refs in writes for r in refs]
    for ref in named:
        if ref not in items:
            problems.append(f"item {ref.hex()} is named but missing")
            continue
        problems += [f"item {inner.hex()} (in a segment) is missing" for inner in items[ref] if inner not in items]
    return problems


async def dangling(saver: UnifiedCheckpointSaver, thread_id: str, channels: set[str]) -> list[str]:
    """Every reference of a thread's stored rows to a blob (of ``channels``, the ones that
    must have one) or item that storage no longer holds, read from raw rows/keys."""
    name = saver.backend.name
    if name == "memory":
        thread = saver.backend._threads.get(thread_id)  # type: ignore[attr-defined]
        if thread is None:
            return []
        return _dangling(
            {cid: r.channel_versions for by_id in thread.checkpoints.values() for cid, r in by_id.items()},
            {(ch, v): b.item_refs for (_, ch, v), b in thread.blobs.items()},
            [w.item_refs for ws in thread.writes.values() for w in ws.values()],
            {ref: i.item_refs for ref, i in thread.items.items()},
            channels,
        )
    if name == "sqlite":
        import orjson

        db = _sqlite(saver)
        try:
            return _dangling(
                {cid: orjson.loads(v) for cid, v in db.execute(
                    "SELECT checkpoint_id, channel_versions FROM checkpoints WHERE thread_id = ?", [thread_id])},
                {(ch, v): _split(bytes(r)) for ch, v, r in db.execute(
                    "SELECT channel, version, item_refs FROM blobs WHERE thread_id = ?", [thread_id])},
                [_split(bytes(r)) for (r,) in db.execute("SELECT item_refs FROM writes WHERE thread_id = ?", [thread_id])],
                {bytes(ref): _split(bytes(r)) for ref, r in db.execute(
                    "SELECT ref, item_refs FROM items WHERE thread_id = ?", [thread_id])},
                channels,
            )
        finally:
            db.close()
    if name == "postgres":
        from .raw_postgres import dangling_rows
    elif name == "redis":
        from .raw_redis import dangling_rows
    else:
        raise ValueError(name)
    return _dangling(*await dangling_rows(saver, thread_id), channels)


async def checkpoint_count(saver: UnifiedCheckpointSaver, thread_id: str) -> int:
    """How many checkpoint records of a thread storage holds, read without the saver
    (a saver's list() could skip or hide one)."""
    name = saver.backend.name
    if name == "memory":
        thread = saver.backend._threads.get(thread_id)  # type: ignore[attr-defined]
        return 0 if thread is None else sum(len(c) for c in thread.checkpoints.values())
    if name == "sqlite":
        db = _sqlite(saver)
        try:
            row = db.execute("SELECT count(*) FROM checkpoints WHERE thread_id = ?", [thread_id])
            return int(row.fetchone()[0])
        finally:
            db.close()
    if name == "postgres":
        from .raw_postgres import checkpoint_count as pg_count

        return await pg_count(saver, thread_id)
    if name == "redis":
        from .raw_redis import checkpoint_count as redis_count

        return await redis_count(saver, thread_id)
    raise ValueError(name)


# -- planting values with their item references ------------------------------------------


def _split(refs: bytes) -> tuple[bytes, ...]:
    from langgraph_unified_store.core.records import ITEM_REF_SIZE

    return tuple(refs[i : i + ITEM_REF_SIZE] for i in range(0, len(refs), ITEM_REF_SIZE))


async def plant(
    saver: UnifiedCheckpointSaver,
    thread_id: str,
    target: str,
    data: bytes,
    type_: str | None = None,
    refs: bytes | None = None,
) -> int:
    """``overwrite``, and with ``refs`` (item references laid end to end) also replace the
    references stored with a blob, write, item or segment: what an attacker planting a
    list that names items many times would write."""
    if refs is None:
        return await overwrite(saver, thread_id, target, data, type_)
    name = saver.backend.name
    if name == "memory":
        records = _memory_records(saver, thread_id, target)
        for record in records:
            record.data = data
            record.item_refs = _split(refs)
            if type_ is not None:
                record.type = type_
        changed = len(records)
    elif name == "sqlite":
        table, column, extra, params = _sqlite_target(target)
        sets = f"{column} = ?, item_refs = ?" + (", type = ?" if type_ is not None else "")
        db = _sqlite(saver)
        try:
            changed = db.execute(
                f"UPDATE {table} SET {sets} WHERE thread_id = ?{extra}",
                [data, refs, *([type_] if type_ is not None else []), thread_id, *params],
            ).rowcount
        finally:
            db.close()
    elif name == "postgres":
        from .raw_postgres import plant as pg_plant

        changed = await pg_plant(saver, thread_id, target, data, type_, refs)
    elif name == "redis":
        from .raw_redis import plant as redis_plant

        changed = await redis_plant(saver, thread_id, target, data, type_, refs)
    else:
        raise ValueError(name)
    if not changed:
        raise NothingMatched(f"{name}: no stored {target} in thread {thread_id!r}")
    return changed


# -- orphans: what no surviving checkpoint needs -----------------------------------------------


@dataclass
class StoredThread:
    """One thread as storage holds it, in the backend's own keys.

    ``checkpoints`` maps a checkpoint's key to its channel versions (None: unreadable);
    ``blob_key(checkpoint, channel, version)`` is the key of the blob it names;
    ``writes`` holds (key of the checkpoint a write row belongs to, or None when that
    checkpoint is not stored, item refs); ``items`` maps ref -> refs it names."""

    checkpoints: dict[Hashable, dict[str, str] | None] = field(default_factory=dict)
    blob_key: Callable[[Hashable, str, str], Hashable] = lambda c, ch, v: (c, ch, v)
    blobs: dict[Hashable, tuple[bytes, ...]] = field(default_factory=dict)
    writes: list[tuple[Hashable | None, tuple[bytes, ...]]] = field(default_factory=list)
    items: dict[bytes, tuple[bytes, ...]] = field(default_factory=dict)
    other: int = 0
    """Keys or rows of the thread that are none of the above."""


def orphans_of(stored: StoredThread) -> dict[str, int]:
    """What storage holds that no checkpoint needs (blobs, writes, items, other), and
    what a checkpoint needs that storage lacks (missing_items); zero everywhere when the
    storage rules (``core.backend``) hold. Written apart from ``core.rules`` on purpose."""
    named_blobs = {
        stored.blob_key(checkpoint, channel, version)
        for checkpoint, versions in stored.checkpoints.items()
        for channel, version in (versions or {}).items()
    }
    live_writes = [refs for owner, refs in stored.writes if owner in stored.checkpoints]
    first = {ref for key, refs in stored.blobs.items() if key in named_blobs for ref in refs}
    first.update(ref for refs in live_writes for ref in refs)
    second = {inner for ref in first for inner in stored.items.get(ref, ())}
    return {
        "blobs": len(stored.blobs.keys() - named_blobs),
        "writes": len(stored.writes) - len(live_writes),
        "items": len(stored.items.keys() - first - second),
        "missing_items": len((first | second) - stored.items.keys()),
        "other": stored.other,
    }


def _memory_stored(saver: UnifiedCheckpointSaver, thread_id: str) -> StoredThread:
    thread = saver.backend._threads.get(thread_id)  # type: ignore[attr-defined]
    stored = StoredThread()
    if thread is None:
        return stored
    for ns, by_id in thread.checkpoints.items():
        for checkpoint_id, record in by_id.items():
            stored.checkpoints[(ns, checkpoint_id)] = record.channel_versions
    stored.blob_key = lambda c, ch, v: (c[0], ch, v)  # type: ignore[index]
    stored.blobs = {key: blob.item_refs for key, blob in thread.blobs.items()}
    stored.writes = [
        (owner if owner in stored.checkpoints else None, w.item_refs)
        for owner, writes in thread.writes.items()
        for w in writes.values()
    ]
    stored.items = {ref: item.item_refs for ref, item in thread.items.items()}
    stored.other = int(not thread.checkpoints)  # an empty thread entry left behind
    return stored


def _sqlite_stored(saver: UnifiedCheckpointSaver, thread_id: str) -> StoredThread:
    import orjson

    db = _sqlite(saver)
    stored = StoredThread()
    try:
        for ns, checkpoint_id, versions in db.execute(
            "SELECT checkpoint_ns, checkpoint_id, channel_versions FROM checkpoints"
            " WHERE thread_id = ?", [thread_id]
        ):
            stored.checkpoints[(ns, checkpoint_id)] = orjson.loads(versions)
        stored.blob_key = lambda c, ch, v: (c[0], ch, v)  # type: ignore[index]
        stored.blobs = {
            (ns, ch, v): _split(bytes(refs)) for ns, ch, v, refs in db.execute(
                "SELECT checkpoint_ns, channel, version, item_refs FROM blobs WHERE thread_id = ?",
                [thread_id],
            )
        }
        stored.writes = [
            ((ns, cid) if (ns, cid) in stored.checkpoints else None, _split(bytes(refs)))
            for ns, cid, refs in db.execute(
                "SELECT checkpoint_ns, checkpoint_id, item_refs FROM writes WHERE thread_id = ?",
                [thread_id],
            )
        ]
        stored.items = {
            bytes(ref): _split(bytes(refs)) for ref, refs in db.execute(
                "SELECT ref, item_refs FROM items WHERE thread_id = ?", [thread_id]
            )
        }
    finally:
        db.close()
    return stored


async def stored_thread(saver: UnifiedCheckpointSaver, thread_id: str) -> StoredThread:
    """A thread's raw rows or keys, read without the saver."""
    name = saver.backend.name
    if name == "memory":
        return _memory_stored(saver, thread_id)
    if name == "sqlite":
        return _sqlite_stored(saver, thread_id)
    if name == "postgres":
        from .raw_postgres import stored_thread as pg_stored

        return await pg_stored(saver, thread_id)
    if name == "redis":
        from .raw_redis import stored_thread as redis_stored

        return await redis_stored(saver, thread_id)
    raise ValueError(name)


async def orphans(saver: UnifiedCheckpointSaver, thread_ids: Iterable[str]) -> dict[str, int]:
    """``orphans_of`` summed over threads: all zero when nothing is left behind."""
    total = dict.fromkeys(("blobs", "writes", "items", "missing_items", "other"), 0)
    for thread_id in thread_ids:
        for kind, count in orphans_of(await stored_thread(saver, thread_id)).items():
            total[kind] += count
    return total


# -- what is left of a thread, lifecycle storage included ------------------------------------


def _sqlite_left(saver: UnifiedCheckpointSaver, thread_id: str) -> list[str]:
    db = _sqlite(saver)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        left: list[str] = []
        for table in tables:
            columns = [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]
            if "thread_id" not in columns:
                continue
            count = db.execute(f'SELECT count(*) FROM "{table}" WHERE thread_id = ?', [thread_id])
            rows = int(count.fetchone()[0])
            if rows:
                left.append(f"{rows} row(s) in table {table}")
        return left
    finally:
        db.close()


async def thread_left(saver: UnifiedCheckpointSaver, thread_id: str) -> list[str]:
    """Whatever storage still holds of one thread, lifecycle storage included, read
    without the saver: empty when nothing is left. SQLite and PostgreSQL: a row with this
    thread_id in any table of the saver (checkpoints, blobs, writes, items, threads);
    Redis: any key under the thread's base key, and its membership in the global thread
    indexes and run sets; Memory: its entry in ``backend._threads``."""
    name = saver.backend.name
    if name == "memory":
        return ["memory thread entry"] if thread_id in saver.backend._threads else []  # type: ignore[attr-defined]
    if name == "sqlite":
        return _sqlite_left(saver, thread_id)
    if name == "postgres":
        return await _postgres_left(saver, thread_id)
    if name == "redis":
        return await _redis_left(saver, thread_id)
    raise ValueError(name)


async def _postgres_left(saver: UnifiedCheckpointSaver, thread_id: str) -> list[str]:
    """A row with this thread_id in any table of the saver's schema (lus_store, lus_threads...)."""
    from .raw_postgres import _connect, _schema

    db = await _connect(saver)
    left: list[str] = []
    try:
        tables = await db.fetch(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND column_name = 'thread_id'",
            saver.backend.schema,  # type: ignore[attr-defined]
        )
        for (table,) in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            rows = await db.fetchval(
                f"SELECT count(*) FROM {_schema(saver)}.{quoted} WHERE thread_id = $1", thread_id
            )
            if rows:
                left.append(f"{rows} row(s) in table {table}")
    finally:
        await db.close()
    return left


REDIS_THREAD_INDEXES = ("threads", "threads:written", "threads:names")
"""The global zsets (under the prefix) whose members are thread ids (UTF-8)."""


def _glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


async def _redis_left(saver: UnifiedCheckpointSaver, thread_id: str) -> list[str]:
    """Any key under the thread's base key (``<prefix>:{t<tag>}:*``, and the base itself),
    and the thread's membership in the global thread indexes and run sets."""
    from .raw_redis import _base, _client

    client = _client(saver)
    base = _base(saver, thread_id)
    prefix: str = saver.backend.prefix  # type: ignore[attr-defined]
    member = thread_id.encode("utf-8", "surrogatepass")
    left: list[str] = []
    try:
        if await client.exists(base):
            left.append(f"key {base}")
        async for key in client.scan_iter(match=_glob(base) + ":*", count=500):
            left.append(f"key {key!r}")
        for index in REDIS_THREAD_INDEXES:
            key = f"{prefix}:{index}"
            if await client.type(key) == b"zset" and await client.zscore(key, member) is not None:
                left.append(f"member of {key}")
        async for key in client.scan_iter(match=_glob(prefix) + ":run:*", count=500):
            if await client.type(key) == b"set" and await client.sismember(key, member):
                left.append(f"member of {key!r}")
    finally:
        await client.aclose()
    return left


async def lifecycle_state(saver: UnifiedCheckpointSaver) -> bytes:
    """Everything the saver stores, for comparing before and after a call that must
    change nothing (``dump``; Memory: each thread's stamps and expiry too)."""
    data = await dump(saver)
    if saver.backend.name == "memory":
        stamps = [
            repr((t, th.first_write, th.last_write, th.own_ttl, th.expires_at)).encode()
            for t, th in saver.backend._threads.items()  # type: ignore[attr-defined]
        ]
        data += b"\n" + b"\n".join(stamps)
    return data
