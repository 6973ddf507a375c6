"""lus_store rows <-> records: what PostgresBackend sends as parameters, and what it reads.

A writes row packs one ``put_writes`` call of one task (or one write, see ``write_rows``):
msgpack of the task path and, per write, its index, channel, stored type, data and number
of item references, with all its references concatenated in ``refs``. Item references
are packed by ``core.rules.pack_refs``; a row without any stores NULL.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Sequence
from typing import Any

import ormsgpack

from ...core.records import (
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    StoredCheckpoint,
    WriteRecord,
    load_channel_versions,
)
from ...core.rules import pack_refs, split_refs
from ...errors import CorruptDataError
from .keys import (
    STORED_WRITES_TYPE,
    WRITE_IDX_MAX,
    item_key,
    read_checkpoint_key,
    read_stored_id,
    read_type,
    read_write_key,
    stored_type,
    write_key,
)

# The (key, type, data, refs) columns of lus_store rows, as the parameter arrays a
# statement unnests.
StoreColumns = tuple[list[bytes], list[str], list[bytes], list[bytes | None]]


class WriteMode(enum.IntEnum):
    """When PUT_WRITES stores a writes row (its ``mode`` column)."""

    ALWAYS = 0
    IF_TASK_HAS_NONE = 1
    """Only if the task has no writes row stored yet (its key range is empty)."""


# A writes row as PUT_WRITES takes it: key, type, data, refs, mode, and the task's key
# range (low, high) that IF_TASK_HAS_NONE checks.
WriteRow = tuple[bytes, str, bytes, bytes | None, WriteMode, bytes | None, bytes | None]


def stored_refs(refs: Iterable[bytes]) -> bytes | None:
    """Item references as the ``refs`` column holds them: packed, NULL for none."""
    return pack_refs(refs) or None


def pack_writes(task_path: str, writes: Sequence[WriteRecord]) -> tuple[bytes, bytes | None]:
    """The data and refs of a writes row (see the module docstring)."""
    entries = [[w.idx, w.channel, stored_type(w.type), w.data, len(w.item_refs)] for w in writes]
    return (
        ormsgpack.packb([task_path, entries]),
        stored_refs(ref for w in writes for ref in w.item_refs),
    )


def unpack_writes(task_id: str, data: bytes, refs: bytes | None) -> list[WriteRecord]:
    """The writes ``pack_writes`` packed; ValueError (or a msgpack error) if damaged."""
    task_path, entries = ormsgpack.unpackb(data)
    every_ref = split_refs(refs)
    writes = []
    used = 0
    for idx, channel, type_, payload, count in entries:
        writes.append(
            WriteRecord(
                task_id, idx, channel, read_type(type_), payload, task_path,
                every_ref[used : used + count],
            )
        )
        used += count
    if used != len(every_ref) or not isinstance(task_path, str):
        raise ValueError("references do not match the writes")
    return writes


def _writes_row(
    prefix: bytes,
    task_id: str,
    task_path: str,
    batch: list[WriteRecord],
    mode: WriteMode,
    low: bytes | None = None,
    high: bytes | None = None,
) -> WriteRow:
    """One writes row, keyed by its first write's index."""
    data, refs = pack_writes(task_path, batch)
    return (write_key(prefix, task_id, batch[0].idx), STORED_WRITES_TYPE, data, refs, mode, low, high)


def write_rows(
    prefix: bytes, writes: Sequence[WriteRecord], *, replace: bool
) -> tuple[list[WriteRow], dict[bytes, list[WriteRow]]]:
    """The rows of one ``put_writes`` call (see PUT_WRITES for the modes), and for
    each row that packs several writes, the rows to store instead if it was not stored.

    Regular writes (index >= 0) of a task become one row when the task has none stored
    yet, which is every task's first call: a chat turn's writes then cost one row, not
    one per channel. Otherwise, and for special writes (negative indexes, which replace
    each other), each write is its own row, so the first stored write per (task, index)
    is kept and a replaced special write replaces only itself. A reader takes each
    (task, index) from the first row in key order that holds it (``stored_writes``).
    """
    rows: list[WriteRow] = []
    instead: dict[bytes, list[WriteRow]] = {}
    groups: dict[tuple[str, str], list[WriteRecord]] = {}
    for write in writes:
        groups.setdefault((write.task_id, write.task_path), []).append(write)
    for (task_id, task_path), group in groups.items():
        row = functools.partial(_writes_row, prefix, task_id, task_path)
        together = [] if replace else [w for w in group if w.idx >= 0]
        if len(together) > 1:
            low = write_key(prefix, task_id, 0)
            packed = row(together, WriteMode.IF_TASK_HAS_NONE, low, low[:-4] + WRITE_IDX_MAX)
            rows.append(packed)
            instead[packed[0]] = [row([write], WriteMode.ALWAYS) for write in together]
        for write in group if len(together) <= 1 else [w for w in group if w.idx < 0]:
            rows.append(row([write], WriteMode.ALWAYS))
    return rows, instead


def write_columns(rows: Sequence[WriteRow]) -> list[list[Any]]:
    """Writes rows as the parameter arrays PUT_WRITES unnests."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 7


def item_columns(items: Iterable[ItemRecord]) -> StoreColumns:
    """The lus_store columns of items, each once."""
    unique = {item.ref: item for item in items}.values()
    return (
        [item_key(i.ref) for i in unique],
        [stored_type(i.type) for i in unique],
        [i.data for i in unique],
        [stored_refs(i.item_refs) for i in unique],
    )


def checkpoint_record(row: Any) -> CheckpointRecord:
    """A checkpoint row (thread_id, key, refs, type, data, channel_versions, metadata,
    run_id, ...) as a record."""
    thread_id = row[0]
    checkpoint_ns, checkpoint_id = read_checkpoint_key(thread_id, row[1])
    return CheckpointRecord(
        thread_id=thread_id,
        checkpoint_ns=checkpoint_ns,
        checkpoint_id=checkpoint_id,
        parent_checkpoint_id=read_stored_id(row[2]),
        type=read_type(row[3]),
        data=row[4],
        channel_versions=load_channel_versions(row[5], thread_id, checkpoint_ns, checkpoint_id),
        metadata=row[6].encode(),
        run_id=row[7],
    )


def stored_writes(
    record: CheckpointRecord, prefix_length: int, rows: Sequence[Any]
) -> list[WriteRecord]:
    """A checkpoint's writes rows (key, type, data, refs) as writes, the first stored
    per (task, index) (see ``write_rows``). Their keys start with ``prefix_length``
    bytes of the checkpoint's write prefix, as long as its key."""
    writes: dict[tuple[str, int], WriteRecord] = {}
    for key, type_, data, refs in sorted(rows, key=lambda row: bytes(row[0])):
        try:
            task_id, _ = read_write_key(key, prefix_length)
            if type_ != STORED_WRITES_TYPE:
                raise ValueError(f"type {type_!r}")
            unpacked = unpack_writes(task_id, data, refs)
        except (ValueError, TypeError, IndexError, ormsgpack.MsgpackDecodeError) as exc:
            raise CorruptDataError(
                f"thread {record.thread_id!r}, namespace {record.checkpoint_ns!r}, checkpoint "
                f"{record.checkpoint_id!r}: a stored pending-writes row is damaged ({exc})"
            ) from None
        for write in unpacked:
            writes.setdefault((write.task_id, write.idx), write)
    return list(writes.values())


def stored_page(rows: Sequence[Any]) -> list[StoredCheckpoint]:
    """READ_CHECKPOINTS rows as StoredCheckpoints; each shares its thread's item map."""
    by_thread: dict[str, dict[bytes, ItemRecord]] = {}
    if rows and rows[0][10]:
        try:
            for thread_id, ref, type_, data, refs in rows[0][10]:
                by_thread.setdefault(thread_id, {})[ref] = ItemRecord(
                    ref, read_type(type_), data, split_refs(refs)
                )
        except ValueError as exc:
            raise CorruptDataError(
                f"thread {thread_id!r}: a stored item is damaged ({exc})"
            ) from None
    page = []
    for row in rows:
        stored = StoredCheckpoint(checkpoint_record(row))
        if row[8]:
            try:
                stored.blobs = {
                    channel: BlobRecord(channel, version, read_type(type_), data, split_refs(refs))
                    for channel, version, type_, data, refs in row[8]
                }
            except ValueError as exc:
                record = stored.record
                raise CorruptDataError(
                    f"thread {record.thread_id!r}, namespace {record.checkpoint_ns!r}, "
                    f"checkpoint {record.checkpoint_id!r}: a stored channel value is damaged ({exc})"
                ) from None
        if row[9]:
            stored.writes = stored_writes(stored.record, len(row[1]), row[9])
        stored.items = by_thread.get(row[0], {})
        page.append(stored)
    return page
