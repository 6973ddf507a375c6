"""The SQLite backend's operations: each a plain function of a sqlite3 connection, run
whole on one thread (aiosqlite's, or a blocking caller's), one transaction each.

The storage rules come from ``core.rules``; what is here is how SQLite rows hold them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from ...core.backend import ItemCache
from ...core.lifecycle import RemovalGuard, Removed, ThreadInfo, ThreadQuery
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


@dataclass(frozen=True, slots=True)
class Stamp:
    """The saver's lifecycle at one call (``core.lifecycle.ThreadClock``): the time by
    its clock, its ttl (None: none) and whether reads restart ttls."""

    now: float
    ttl: float | None
    refresh: bool


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


# -- the lifecycle of a thread ---------------------------------------------------------------


def _ids(thread_ids: Sequence[str]) -> str:
    """Thread ids as the JSON array the set-based statements take (``json_each``)."""
    return orjson.dumps(list(thread_ids)).decode()


def _thread_state(db: sqlite3.Connection, thread_id: str, now: float) -> tuple[bool, bool]:
    """(expired, expires): whether reads must miss the thread, and whether it has an
    expiry a read may restart."""
    row = db.execute(sql.SELECT_THREAD_STATE, (thread_id,)).fetchone()
    if row is None or row[0] is None:
        return False, False
    return row[0] <= now, row[0] > now


def _refresh(db: sqlite3.Connection, thread_ids: Sequence[str], stamp: Stamp) -> None:
    """With ``refresh_on_read``, restart the ttl of threads a read found. Outside the
    read's transaction (a read never upgrades to a write under its snapshot)."""
    if stamp.refresh and thread_ids:
        db.execute(sql.REFRESH_THREADS, (stamp.now, stamp.ttl, _ids(thread_ids)))


def _stamp_write(db: sqlite3.Connection, thread_id: str, stamp: Stamp, cache: ItemCache) -> None:
    """Inside a write transaction, before anything else: a thread that has expired (and
    was not swept yet) is removed whole first, so none of its rows comes back; then
    its row is stamped with this write (a fresh row for a fresh thread)."""
    expired, _ = _thread_state(db, thread_id, stamp.now)
    if expired:
        for statement in sql.DELETE_THREAD:
            db.execute(statement, (thread_id,))
        cache.forget(thread_id)
    db.execute(sql.UPSERT_THREAD_WRITE, (thread_id, stamp.now, stamp.ttl))


def heads(db: sqlite3.Connection, thread_id: str, stamp: Stamp) -> list[CheckpointRecord]:
    with Transaction(db, write=False):
        expired, expires = _thread_state(db, thread_id, stamp.now)
        if expired:
            return []
        found = [_record(row) for row in db.execute(sql.SELECT_HEADS, (thread_id,))]
    if expires:
        _refresh(db, [thread_id], stamp)
    return found


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
    stamp: Stamp,
    cache: ItemCache,
) -> None:
    thread_id, ns = record.thread_id, record.checkpoint_ns
    # BEGIN IMMEDIATE: no other connection writes (or collects garbage) until COMMIT, so
    # what is checked here is still there when the checkpoint lands.
    with Transaction(db, write=True):
        # An expired thread's blobs are gone before the checks: the core re-sends them.
        _stamp_write(db, thread_id, stamp, cache)
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
    stamp: Stamp,
    cache: ItemCache,
) -> None:
    rows = [
        (
            thread_id, ns, checkpoint_id, w.task_id, w.idx, w.channel, w.type, w.data,
            w.task_path, pack_refs(w.item_refs),
        )
        for w in dedupe_writes(writes, replace=replace)
    ]
    with Transaction(db, write=True):
        _stamp_write(db, thread_id, stamp, cache)
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
    db: sqlite3.Connection,
    thread_id: str,
    ns: str,
    checkpoint_id: str | None,
    cache: ItemCache,
    stamp: Stamp,
) -> StoredCheckpoint | None:
    with Transaction(db, write=False):
        expired, expires = _thread_state(db, thread_id, stamp.now)
        if expired:
            return None
        if checkpoint_id is None:
            row = db.execute(sql.SELECT_LATEST_CHECKPOINT, (thread_id, ns)).fetchone()
        else:
            row = db.execute(sql.SELECT_CHECKPOINT, (thread_id, ns, checkpoint_id)).fetchone()
        found = None if row is None else _assemble(db, row, cache)
    if expires:
        _refresh(db, [thread_id], stamp)
    return found


def _metadata_condition(key: str, value: Any) -> tuple[str, list[Any]]:
    """The condition that one top-level metadata key equals a filter scalar, JSON-typed
    (``core.rules.json_equal``: true is not 1, "1" is not 1)."""
    if isinstance(value, bool):
        return sql.LIST_METADATA_BOOL, [key, "true" if value else "false"]
    if isinstance(value, (int, float)):
        return sql.LIST_METADATA_NUMBER, [key, value]
    return sql.LIST_METADATA_TEXT, [key, value]


def _given(*pairs: tuple[str, Any]) -> tuple[list[str], list[Any]]:
    """The conditions whose value is given (not None), each with its one bound value."""
    given = [(condition, value) for condition, value in pairs if value is not None]
    return [c for c, _ in given], [v for _, v in given]


def list_page(
    db: sqlite3.Connection,
    query: ListQuery,
    cursor: tuple[str, str, str] | None,
    page_size: int,
    cache: ItemCache,
    stamp: Stamp,
) -> list[StoredCheckpoint]:
    conditions, params = _given(
        (sql.LIST_THREAD, query.thread_id),
        (sql.LIST_NAMESPACE, query.checkpoint_ns),
        (sql.LIST_CHECKPOINT, query.checkpoint_id),
        (sql.LIST_BEFORE, query.before),
    )
    for key, value in query.filter.items():
        condition, values = _metadata_condition(key, value)
        conditions.append(condition)
        params.extend(values)
    if cursor is not None:
        conditions.append(sql.LIST_AFTER_CURSOR)
        params.extend(cursor)
    if query.thread_id is None:
        conditions.append(sql.LIST_UNEXPIRED)
        params.append(stamp.now)
    statement = sql.SELECT_LIST_PAGE.format(where=" AND ".join(conditions) or "1")
    with Transaction(db, write=False):
        expires = False
        if query.thread_id is not None:
            expired, expires = _thread_state(db, query.thread_id, stamp.now)
            if expired:
                return []
        rows = db.execute(statement, (*params, page_size)).fetchall()
        page = [_assemble(db, row, cache) for row in rows]
    if query.thread_id is None:
        _refresh(db, list(dict.fromkeys(s.record.thread_id for s in page)), stamp)
    elif expires and cursor is None:  # once per listing: at its first page
        _refresh(db, [query.thread_id], stamp)
    return page


def thread_ids(db: sqlite3.Connection, now: float) -> list[str]:
    return [row[0] for row in db.execute(sql.SELECT_THREAD_IDS, (now,))]


# -- deleting and copying --------------------------------------------------------------------


def delete_thread(db: sqlite3.Connection, thread_id: str) -> None:
    with Transaction(db, write=True):
        for statement in sql.DELETE_THREAD:  # its lifecycle row too
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
    # No checkpoint left: nothing else is (writes, blobs and items all hang off them).
    db.execute(sql.DELETE_THREAD_IF_EMPTY, (thread_id,))


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


def copy_thread(
    db: sqlite3.Connection, source: str, target: str, stamp: Stamp, cache: ItemCache
) -> None:
    with Transaction(db, write=True):
        # As a read of the source: nothing of it when it never was or has expired.
        row = db.execute(sql.SELECT_THREAD_STATE, (source,)).fetchone()
        if row is None or (row[0] is not None and row[0] <= stamp.now):
            return
        if row[0] is not None:
            _refresh(db, [source], stamp)
        _stamp_write(db, target, stamp, cache)
        for statement in sql.COPY_THREAD:
            db.execute(statement, (target, source))


# -- the lifecycle primitives ----------------------------------------------------------------


def thread_page_statement(query: ThreadQuery, now: float) -> tuple[str, list[Any]]:
    """The statement and parameters of ``thread_page`` (tests look at its plan)."""
    conditions, params = _given(
        (sql.THREAD_AFTER, query.after),
        (sql.THREAD_UPDATED_AFTER, query.updated_after),
        (sql.THREAD_UPDATED_BEFORE, query.updated_before),
        (sql.THREAD_EXPIRED_AT, query.expired_at),
    )
    if not query.everything:
        conditions[:0] = [sql.THREAD_UNEXPIRED, sql.THREAD_HAS_CHECKPOINT]
        params.insert(0, now)
    if query.filter:
        matches: list[str] = []
        for key, value in query.filter.items():
            condition, values = _metadata_condition(key, value)
            matches.append(condition)
            params.extend(values)
        conditions.append(sql.THREAD_MATCHES.format(conditions=" AND ".join(matches)))
    page = sql.SELECT_THREAD_PAGE if query.ordered else sql.SELECT_THREAD_PAGE_ANY_ORDER
    params.append(query.limit)
    return page.format(where=" AND ".join(conditions) or "1"), params


def thread_page(db: sqlite3.Connection, query: ThreadQuery, now: float) -> list[ThreadInfo]:
    statement, params = thread_page_statement(query, now)
    found: list[ThreadInfo] = []
    with Transaction(db, write=False):
        for thread_id, first_write, last_write, expires_at in db.execute(statement, params).fetchall():
            info = ThreadInfo(
                thread_id, first_write=first_write, last_write=last_write, expires_at=expires_at
            )
            if query.with_stats:
                counts = db.execute(sql.SELECT_THREAD_NAMESPACES, (thread_id,)).fetchall()
                info.namespaces = tuple(ns for ns, _ in counts)
                info.checkpoints = sum(count for _, count in counts)
                info.stored_bytes = int(db.execute(sql.SELECT_THREAD_BYTES, (thread_id,)).fetchone()[0])
            found.append(info)
    return found


def remove_threads(db: sqlite3.Connection, thread_ids: Sequence[str], guard: RemovalGuard) -> Removed:
    """Every named thread that passes ``guard`` now (under the write lock), whole, in one
    transaction. A thread with rows but no lifecycle row (none is known to be left after
    migration 3) has no expiry and no known last write: only a guard by age or none
    removes it."""
    wanted = _ids(list(dict.fromkeys(thread_ids)))
    removed = Removed()
    with Transaction(db, write=True):
        passing = {
            row[0]
            for row in db.execute(
                sql.SELECT_REMOVABLE_THREADS, (wanted, guard.written_before, guard.expired_at)
            )
        }
        if guard.expired_at is None:
            known = {row[0] for row in db.execute(sql.SELECT_KNOWN_THREADS, (wanted,))}
            passing.update(
                row[0] for row in db.execute(sql.SELECT_THREAD_RESIDUE, (wanted,)) if row[0] not in known
            )
        if not passing:
            return removed
        removed.thread_ids = [t for t in dict.fromkeys(thread_ids) if t in passing]
        doomed = _ids(removed.thread_ids)
        counts = [db.execute(statement, (doomed,)).rowcount for statement in sql.DELETE_THREADS]
        removed.checkpoints, removed.writes, removed.blobs, removed.items = counts[:4]
    return removed


def set_thread_ttl(db: sqlite3.Connection, thread_id: str, ttl: float, now: float) -> bool:
    with Transaction(db, write=True):
        return db.execute(sql.SET_THREAD_TTL, (ttl, thread_id, now)).rowcount == 1


def thread_residue(db: sqlite3.Connection, thread_ids: Sequence[str]) -> list[str]:
    with Transaction(db, write=False):
        return [row[0] for row in db.execute(sql.SELECT_THREAD_RESIDUE, (_ids(thread_ids),))]
