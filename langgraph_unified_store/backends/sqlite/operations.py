"""The SQLite backend's operations: each a plain function of a sqlite3 connection, run
whole on one thread (aiosqlite's, or a blocking caller's), one transaction each.

The storage rules come from ``core.rules``; what is here is how SQLite rows hold them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, Final

import orjson

from ...core.backend import ItemCache
from ...core.records import (
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
    load_channel_versions,
)
from ...core.rules import (
    dedupe_writes,
    fetch_items,
    pack_refs,
    reachable,
    retained,
    split_refs,
)
from ...errors import BlobsMissingError, CorruptDataError, ItemsMissingError
from . import sql
from .transaction import Transaction

# SQLite binds at most 32766 parameters per statement; stay well below it.
MAX_BOUND_REFS: Final = 900

Row = sqlite3.Row | tuple[Any, ...]


def _refs(packed: bytes, where: str) -> tuple[bytes, ...]:
    """Stored item references, or CorruptDataError naming where they were read."""
    try:
        return split_refs(bytes(packed))
    except ValueError as exc:
        raise CorruptDataError(f"{where}: {exc}") from None


def _record(row: Row) -> CheckpointRecord:
    return CheckpointRecord(
        thread_id=row[0],
        checkpoint_ns=row[1],
        checkpoint_id=row[2],
        parent_checkpoint_id=row[3],
        type=row[4],
        data=bytes(row[5]),
        channel_versions=load_channel_versions(row[6], row[0], row[1], row[2]),
        metadata=row[7].encode() if isinstance(row[7], str) else bytes(row[7]),
        run_id=row[8],
    )


def fetchall(db: sqlite3.Connection, statement: str, params: Sequence[Any]) -> list[Any]:
    return db.execute(statement, params).fetchall()


def heads(db: sqlite3.Connection, thread_id: str) -> list[CheckpointRecord]:
    return [_record(row) for row in db.execute(sql.SELECT_HEADS, (thread_id,))]


# -- writing ---------------------------------------------------------------------------------


def _insert_items(db: sqlite3.Connection, thread_id: str, items: Sequence[ItemRecord]) -> None:
    if items:
        db.executemany(
            sql.INSERT_ITEM,
            [(thread_id, i.ref, i.type, i.data, pack_refs(i.item_refs)) for i in items],
        )


def _blob_stored(db: sqlite3.Connection, thread_id: str, ns: str, channel: str, version: str) -> bool:
    return db.execute(sql.SELECT_BLOB_EXISTS, (thread_id, ns, channel, version)).fetchone() is not None


def put_checkpoint(
    db: sqlite3.Connection,
    record: CheckpointRecord,
    blobs: Sequence[BlobRecord],
    items: Sequence[ItemRecord],
    inherited: Collection[str],
) -> None:
    thread_id, ns = record.thread_id, record.checkpoint_ns
    # BEGIN IMMEDIATE: no other connection writes (or collects garbage) until COMMIT, so
    # what is checked here is still there when the checkpoint lands.
    with Transaction(db, write=True):
        gone = [
            channel
            for channel in inherited
            if not _blob_stored(db, thread_id, ns, channel, record.channel_versions[channel])
        ]
        if gone:
            raise BlobsMissingError(thread_id, ns, record.checkpoint_id, gone)
        for blob in blobs:
            if blob.base_version is not None and not _blob_stored(
                db, thread_id, ns, blob.channel, blob.base_version
            ):
                raise ItemsMissingError.base_gone(thread_id, blob.channel, blob.base_version)
        _insert_items(db, thread_id, items)
        if blobs:
            db.executemany(
                sql.INSERT_BLOB,
                [
                    (thread_id, ns, b.channel, b.version, b.type, b.data, pack_refs(b.item_refs))
                    for b in blobs
                ],
            )
        db.execute(
            sql.UPSERT_CHECKPOINT,
            (
                thread_id,
                ns,
                record.checkpoint_id,
                record.parent_checkpoint_id,
                record.type,
                record.data,
                orjson.dumps(record.channel_versions).decode(),
                record.metadata.decode(),
                record.run_id,
            ),
        )


def put_writes(
    db: sqlite3.Connection,
    thread_id: str,
    ns: str,
    checkpoint_id: str,
    writes: Sequence[WriteRecord],
    items: Sequence[ItemRecord],
    replace: bool,
) -> None:
    rows = [
        (
            thread_id, ns, checkpoint_id, w.task_id, w.idx, w.channel, w.type, w.data,
            w.task_path, pack_refs(w.item_refs),
        )
        for w in dedupe_writes(writes, replace=replace)
    ]
    with Transaction(db, write=True):
        _insert_items(db, thread_id, items)
        db.executemany(sql.INSERT_WRITE_REPLACE if replace else sql.INSERT_WRITE_KEEP, rows)


# -- reading ---------------------------------------------------------------------------------


def _item_lookup(
    db: sqlite3.Connection, thread_id: str, cache: ItemCache
) -> Callable[[Sequence[bytes]], list[ItemRecord]]:
    """A batch lookup for ``core.rules.fetch_items``: the cache, then the table."""

    def lookup(refs: Sequence[bytes]) -> list[ItemRecord]:
        found: list[ItemRecord] = []
        missing: list[bytes] = []
        for ref in refs:
            item = cache.get(thread_id, ref)
            if item is None:
                missing.append(ref)
            else:
                found.append(item)
        fetched: list[ItemRecord] = []
        for start in range(0, len(missing), MAX_BOUND_REFS):
            chunk = missing[start : start + MAX_BOUND_REFS]
            for ref, type_, data, inner in db.execute(
                sql.SELECT_ITEMS.format(marks=sql.marks(len(chunk))), (thread_id, *chunk)
            ):
                where = f"thread {thread_id!r}, item {bytes(ref).hex()}"
                fetched.append(ItemRecord(bytes(ref), type_, bytes(data), _refs(inner, where)))
        cache.put(thread_id, fetched)
        return found + fetched

    return lookup


def _assemble(db: sqlite3.Connection, row: Row, cache: ItemCache) -> StoredCheckpoint:
    record = _record(row)
    stored = StoredCheckpoint(record)
    thread_id, ns = record.thread_id, record.checkpoint_ns
    where = f"thread {thread_id!r}, namespace {ns!r}, checkpoint {record.checkpoint_id!r}"
    refs: list[bytes] = []
    for channel, version, type_, data, item_refs in db.execute(
        sql.SELECT_BLOBS, (thread_id, ns, row[6])
    ):
        blob = BlobRecord(channel, version, type_, bytes(data), _refs(item_refs, where))
        stored.blobs[channel] = blob
        refs.extend(blob.item_refs)
    for task_id, idx, channel, type_, data, task_path, item_refs in db.execute(
        sql.SELECT_WRITES, (thread_id, ns, record.checkpoint_id)
    ):
        write = WriteRecord(
            task_id, idx, channel, type_, bytes(data), task_path, _refs(item_refs, where)
        )
        stored.writes.append(write)
        refs.extend(write.item_refs)
    if refs:
        stored.items = fetch_items(refs, _item_lookup(db, thread_id, cache))
    return stored


def get_checkpoint(
    db: sqlite3.Connection, thread_id: str, ns: str, checkpoint_id: str | None, cache: ItemCache
) -> StoredCheckpoint | None:
    with Transaction(db, write=False):
        if checkpoint_id is None:
            row = db.execute(sql.SELECT_LATEST_CHECKPOINT, (thread_id, ns)).fetchone()
        else:
            row = db.execute(sql.SELECT_CHECKPOINT, (thread_id, ns, checkpoint_id)).fetchone()
        return None if row is None else _assemble(db, row, cache)


def _metadata_condition(key: str, value: Any) -> tuple[str, list[Any]]:
    """The condition that one top-level metadata key equals a filter scalar, JSON-typed
    (``core.rules.json_equal``: true is not 1, "1" is not 1)."""
    if isinstance(value, bool):
        return sql.LIST_METADATA_BOOL, [key, "true" if value else "false"]
    if isinstance(value, (int, float)):
        return sql.LIST_METADATA_NUMBER, [key, value]
    return sql.LIST_METADATA_TEXT, [key, value]


def list_page(
    db: sqlite3.Connection,
    query: ListQuery,
    cursor: tuple[str, str, str] | None,
    page_size: int,
    cache: ItemCache,
) -> list[StoredCheckpoint]:
    conditions: list[str] = []
    params: list[Any] = []
    for condition, wanted in (
        (sql.LIST_THREAD, query.thread_id),
        (sql.LIST_NAMESPACE, query.checkpoint_ns),
        (sql.LIST_CHECKPOINT, query.checkpoint_id),
        (sql.LIST_BEFORE, query.before),
    ):
        if wanted is not None:
            conditions.append(condition)
            params.append(wanted)
    for key, value in query.filter.items():
        condition, values = _metadata_condition(key, value)
        conditions.append(condition)
        params.extend(values)
    if cursor is not None:
        conditions.append(sql.LIST_AFTER_CURSOR)
        params.extend(cursor)
    statement = sql.SELECT_LIST_PAGE.format(where=" AND ".join(conditions) or "1")
    with Transaction(db, write=False):
        rows = db.execute(statement, (*params, page_size)).fetchall()
        return [_assemble(db, row, cache) for row in rows]


# -- deleting and copying --------------------------------------------------------------------


def delete_thread(db: sqlite3.Connection, thread_id: str) -> None:
    with Transaction(db, write=True):
        for statement in sql.DELETE_THREAD:
            db.execute(statement, (thread_id,))


def _versions_or_none(raw: str) -> dict[str, str] | None:
    """A survivor's channel versions, or None when they cannot be read (it might then
    name any blob: ``core.rules.reachable`` keeps them all)."""
    try:
        versions = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
        return None
    return versions


def _collect_garbage(db: sqlite3.Connection, thread_id: str) -> None:
    """Drop writes, blobs and items that no surviving checkpoint of the thread needs."""
    where = f"thread {thread_id!r}"
    db.execute(sql.DELETE_ORPHAN_WRITES, (thread_id,))
    blob_refs = {
        (ns, channel, version): _refs(refs, where)
        for ns, channel, version, refs in db.execute(sql.SELECT_BLOB_REFS, (thread_id,))
    }
    item_refs = {
        bytes(ref): _refs(refs, where)
        for ref, refs in db.execute(sql.SELECT_ITEM_REFS, (thread_id,))
    }
    live = reachable(
        [
            (ns, _versions_or_none(versions))
            for ns, versions in db.execute(sql.SELECT_LIVE_VERSIONS, (thread_id,))
        ],
        blob_refs,
        [_refs(refs, where) for (refs,) in db.execute(sql.SELECT_WRITE_REFS, (thread_id,))],
        item_refs,
    )
    db.executemany(
        sql.DELETE_BLOB, [(thread_id, *key) for key in blob_refs if key not in live.blobs]
    )
    db.executemany(sql.DELETE_ITEM, [(thread_id, ref) for ref in item_refs if ref not in live.items])


def delete_for_runs(db: sqlite3.Connection, run_ids: list[str]) -> None:
    with Transaction(db, write=True):
        for start in range(0, len(run_ids), MAX_BOUND_REFS):
            chunk = run_ids[start : start + MAX_BOUND_REFS]
            marks = sql.marks(len(chunk))
            threads = [
                row[0] for row in db.execute(sql.SELECT_THREADS_OF_RUNS.format(marks=marks), chunk)
            ]
            db.execute(sql.DELETE_RUN_CHECKPOINTS.format(marks=marks), chunk)
            for thread_id in threads:
                _collect_garbage(db, thread_id)


def retain(db: sqlite3.Connection, thread_id: str, keep: Iterable[tuple[str, str]]) -> None:
    keeps = retained(set(keep))
    with Transaction(db, write=True):
        doomed = [
            (thread_id, ns, checkpoint_id)
            for ns, checkpoint_id in db.execute(sql.SELECT_CHECKPOINT_KEYS, (thread_id,)).fetchall()
            if not keeps(ns, checkpoint_id)
        ]
        db.executemany(sql.DELETE_CHECKPOINT_WRITES, doomed)
        db.executemany(sql.DELETE_CHECKPOINT, doomed)
        _collect_garbage(db, thread_id)


def copy_thread(db: sqlite3.Connection, source: str, target: str) -> None:
    with Transaction(db, write=True):
        for statement in sql.COPY_THREAD:
            db.execute(statement, (target, source))
