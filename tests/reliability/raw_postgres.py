"""Raw access to a PostgresSaver's tables (see ``raw.py`` for the targets).

Every row lives in the saver's schema's ``lus_store`` (type text as ``_stored_type`` writes
it, data bytea; channel_versions json and metadata jsonb on checkpoints): checkpoints,
blobs, items and writes, told apart by the first byte of ``key`` (b"c", b"b", b"i", b"w";
a blob key ends with 0x00 and its channel). A writes row packs one or more writes
(``_pack_writes``), so a write target is rewritten inside its row.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from langgraph_unified_store.backends.postgres.keys import stored_type as _stored_type
from langgraph_unified_store.backends.postgres.rows import pack_writes as _pack_writes
from langgraph_unified_store.backends.postgres.rows import unpack_writes as _unpack_writes
from langgraph_unified_store.core.records import SEGMENT_TYPE
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import POSTGRES_DSN


def _schema(saver: UnifiedCheckpointSaver) -> str:
    name: str = saver.backend.schema  # type: ignore[attr-defined]
    return '"' + name.replace('"', '""') + '"'


async def _connect(saver: UnifiedCheckpointSaver) -> asyncpg.Connection:
    dsn = getattr(saver.backend, "_conn_string", None) or POSTGRES_DSN
    return await asyncpg.connect(dsn)


def _target(saver: UnifiedCheckpointSaver, target: str) -> tuple[str, str, str, list[Any]]:
    """(table, column, extra condition, extra params) of a target."""
    schema = _schema(saver)
    checkpoints = " AND get_byte(key, 0) = 99"
    if target == "checkpoint":
        return f"{schema}.lus_store", "data", checkpoints, []
    if target == "metadata":
        return f"{schema}.lus_store", "metadata", checkpoints, []
    if target in ("versions", "versions-shape"):
        return f"{schema}.lus_store", "channel_versions", checkpoints, []
    if target.startswith("blob:"):
        return (
            f"{schema}.lus_store",
            "data",
            " AND get_byte(key, 0) = 98 AND substring(key FROM length(key)"
            " - length(convert_to($3, 'UTF8'))) = '\\x00'::bytea || convert_to($3, 'UTF8')",
            [target[5:]],
        )
    if target.startswith("write:"):
        return f"{schema}.lus_store", "data", " AND get_byte(key, 0) = 119", [target[6:]]
    if target in ("item", "segment"):
        segment = "(type = $3 OR type LIKE 'lus2:lus.segment+%')"
        condition = segment if target == "segment" else f"NOT {segment}"
        return f"{schema}.lus_store", "data", f" AND get_byte(key, 0) = 105 AND {condition}", [_stored_type(SEGMENT_TYPE)]
    raise ValueError(target)


async def overwrite(
    saver: UnifiedCheckpointSaver, thread_id: str, target: str, data: bytes, type_: str | None
) -> int:
    if target.startswith("write:"):
        return await _edit_writes(saver, thread_id, target[6:], data, type_)
    table, column, extra, params = _target(saver, target)
    value: Any = data
    cast = "bytea"
    if column in ("metadata", "channel_versions"):
        value, cast = data.decode(), "jsonb" if column == "metadata" else "json"
    # The type column is set to itself unless a new serde type is given.
    type_sql = f", type = ${len(params) + 3}" if type_ is not None else ""
    sql = f"UPDATE {table} SET {column} = $1::{cast}{type_sql} WHERE thread_id = $2{extra}"
    db = await _connect(saver)
    try:
        status = await db.execute(
            sql, value, thread_id, *params, *([_stored_type(type_)] if type_ else [])
        )
    finally:
        await db.close()
    return int(status.split()[-1])


async def _edit_writes(
    saver: UnifiedCheckpointSaver,
    thread_id: str,
    channel: str,
    data: bytes | None,
    type_: str | None,
    refs: bytes | None = None,
) -> int:
    """Set the data (and type; with ``refs``, the item references) of every stored write
    to ``channel``, inside the rows that pack them; with data None, drop those writes."""
    table = f"{_schema(saver)}.lus_store"
    db = await _connect(saver)
    changed = 0
    try:
        rows = await db.fetch(
            f"SELECT key, data, refs FROM {table} WHERE thread_id = $1 AND get_byte(key, 0) = 119",
            thread_id,
        )
        for key, packed, old_refs in rows:
            writes = _unpack_writes("", packed, old_refs)
            kept = []
            for write in writes:
                if write.channel == channel:
                    changed += 1
                    if data is None:
                        continue  # its item references go with it
                    write.data = data
                    if type_ is not None:
                        write.type = type_
                    if refs is not None:
                        write.item_refs = _refs(refs)
                kept.append(write)
            task_path = writes[0].task_path if writes else ""
            new_data, new_refs = _pack_writes(task_path, kept)
            await db.execute(
                f"UPDATE {table} SET data = $1, refs = $2 WHERE thread_id = $3 AND key = $4",
                new_data, new_refs, thread_id, key,
            )
    finally:
        await db.close()
    return changed


async def delete(saver: UnifiedCheckpointSaver, thread_id: str, target: str) -> int:
    if target.startswith("write:"):
        return await _edit_writes(saver, thread_id, target[6:], None, None)
    table, _, extra, params = _target(saver, target)
    db = await _connect(saver)
    try:
        status = await db.execute(f"DELETE FROM {table} WHERE thread_id = $1{extra.replace('$3', '$2')}",
                                  thread_id, *params)
    finally:
        await db.close()
    return int(status.split()[-1])


async def dump(saver: UnifiedCheckpointSaver) -> bytes:
    schema = _schema(saver)
    db = await _connect(saver)
    parts: list[bytes] = []
    try:
        # Tables by name and rows sorted: neither the catalog nor a heap promises an order,
        # and a comparison of two dumps must see only what is stored (CI once saw the
        # tables come back in another order with nothing changed).
        tables = await db.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
            saver.backend.schema,  # type: ignore[attr-defined]
        )
        for (table,) in tables:
            rows = [
                b"\n".join(_as_bytes(value) for value in row.values())
                for row in await db.fetch(f'SELECT * FROM {schema}."{table}"')
            ]
            parts.extend(sorted(rows))
    finally:
        await db.close()
    return b"\n".join(parts)


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, list):
        return b"".join(_as_bytes(v) for v in value)
    return str(value).encode("utf-8", "surrogatepass")


def _refs(packed: bytes | None) -> tuple[bytes, ...]:
    return tuple(bytes(packed[i : i + 16]) for i in range(0, len(packed or b""), 16))


async def dangling_rows(saver: UnifiedCheckpointSaver, thread_id: str) -> tuple[Any, ...]:
    """A thread's rows as ``raw._dangling`` takes them, parsed from lus_store keys."""
    import orjson

    db = await _connect(saver)
    try:
        rows = await db.fetch(
            f"SELECT key, refs, channel_versions::text FROM {_schema(saver)}.lus_store "
            "WHERE thread_id = $1",
            thread_id,
        )
    finally:
        await db.close()
    checkpoints: dict[str, dict[str, str]] = {}
    blobs: dict[tuple[str, str], tuple[bytes, ...]] = {}
    writes: list[tuple[bytes, ...]] = []
    items: dict[bytes, tuple[bytes, ...]] = {}
    for key, refs, versions in rows:
        key = bytes(key)
        kind = key[:1]
        if kind == b"c":
            checkpoints[key.hex()] = orjson.loads(versions)
        elif kind == b"b":
            _ns, version, channel = key[1:].split(b"\x00", 2)
            blobs[(channel.decode(), version.decode())] = _refs(refs)
        elif kind == b"w":
            writes.append(_refs(refs))
        elif kind == b"i":
            items[key[1:]] = _refs(refs)
    return checkpoints, blobs, writes, items


async def checkpoint_count(saver: UnifiedCheckpointSaver, thread_id: str) -> int:
    db = await _connect(saver)
    try:
        count = await db.fetchval(
            f"SELECT count(*) FROM {_schema(saver)}.lus_store"
            " WHERE thread_id = $1 AND get_byte(key, 0) = 99",
            thread_id,
        )
    finally:
        await db.close()
    return int(count)


async def plant(
    saver: UnifiedCheckpointSaver,
    thread_id: str,
    target: str,
    data: bytes,
    type_: str | None,
    refs: bytes,
) -> int:
    """Set data (type) and item references of a blob, write, item or segment."""
    if target.startswith("write:"):
        return await _edit_writes(saver, thread_id, target[6:], data, type_, refs)
    table, column, extra, params = _target(saver, target)
    refs_n = 3 + len(params)  # the target's own parameters come first, as $3
    type_sql = f", type = ${refs_n + 1}" if type_ is not None else ""
    sql = f"UPDATE {table} SET {column} = $1, refs = ${refs_n}{type_sql} WHERE thread_id = $2{extra}"
    args: list[Any] = [data, thread_id, *params, refs or None]
    if type_ is not None:
        args.append(_stored_type(type_))
    db = await _connect(saver)
    try:
        status = await db.execute(sql, *args)
    finally:
        await db.close()
    return int(status.split()[-1])


async def stored_thread(saver: UnifiedCheckpointSaver, thread_id: str) -> Any:
    """A thread's lus_store rows as ``raw.StoredThread``, in raw keys: a checkpoint key is
    c ns NUL id, its blobs b ns NUL version NUL channel, its writes w ns NUL id ..."""
    import orjson

    from .raw import StoredThread

    db = await _connect(saver)
    try:
        rows = await db.fetch(
            f"SELECT key, refs, channel_versions::text FROM {_schema(saver)}.lus_store "
            "WHERE thread_id = $1",
            thread_id,
        )
    finally:
        await db.close()
    stored = StoredThread()

    def blob_key(checkpoint: Any, channel: str, version: str) -> bytes:
        ns = checkpoint[1 : checkpoint.index(0, 1)]
        return b"b" + ns + b"\x00" + version.encode() + b"\x00" + channel.encode()

    stored.blob_key = blob_key
    write_rows = []
    for key, refs, versions in rows:
        key = bytes(key)
        kind = key[:1]
        if kind == b"c":
            stored.checkpoints[key] = orjson.loads(versions)
        elif kind == b"b":
            stored.blobs[key] = _refs(refs)
        elif kind == b"w":
            write_rows.append((key, _refs(refs)))
        elif kind == b"i":
            stored.items[key[1:]] = _refs(refs)
        else:
            stored.other += 1
    for key, refs in write_rows:
        owners = [c for c in stored.checkpoints if key.startswith(b"w" + c[1:])]  # type: ignore[index]
        stored.writes.append((owners[0] if owners else None, refs))
    return stored
