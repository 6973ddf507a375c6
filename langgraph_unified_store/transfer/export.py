"""Export: a saver's threads and a store's items as the export format, streamed.

``aexport_records`` yields the records one at a time; ``aexport_to`` writes them as
lines. Neither holds more than one thread's checkpoint ids, one checkpoint's values and,
per channel, the last list it sent (to send the next as what it appends): a database
of any size streams through.

Reading goes through the storage contracts every backend implements (``Backend``,
``StoreBackend``) and the core's own decode, so the export is the same whichever backend
it comes from: ``get_checkpoint`` and ``decode_checkpoint`` are what ``aget_tuple`` is
made of, read here directly for the pending writes' task paths, which the tuple drops;
store items keep their times, ttl and vectors, which a store's ``search`` does not show.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, Any, Final

import orjson
from langgraph.checkpoint.base import writes_sort_key

from ..core.checkpoints import decode_checkpoint
from ..core.lifecycle import LIST_THREADS_MAX
from ..core.records import ListQuery
from ..core.saver import UnifiedCheckpointSaver
from ..core.store import UnifiedStore
from ..core.store_backend import ItemSearch
from ..core.store_rules import compile_filter, decode_value
from ..core.validate import check_thread_id
from ..errors import BackendUnavailableError, CheckpointNotFoundError, InvalidConfigError
from .format import (
    Blob,
    CheckpointEntry,
    ExportSourceError,
    Header,
    Record,
    StoreItemEntry,
    ThreadEnd,
    ThreadStart,
    Trailer,
    TypedValue,
    Write,
    record_json,
)
from .values import MSGPACK, ValueWriter, blob_place, skeleton_place, write_place

logger = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
"""``progress(done, total)``: threads and store items done, and the total when known."""
STORE_PAGE: Final = 500


def _json_exact(value: dict[str, Any]) -> bool:
    """Whether JSON holds ``value`` as it is (no tuples, no non-string keys...)."""
    try:
        return bool(orjson.loads(orjson.dumps(value)) == value) and _plain_types(value)
    except (TypeError, orjson.JSONEncodeError):
        return False


def _plain_types(value: Any) -> bool:
    pending = [value]
    while pending:
        current = pending.pop()
        if type(current) is dict:
            if not all(type(k) is str for k in current):
                return False
            pending.extend(current.values())
        elif type(current) is list:
            pending.extend(current)
        elif current is not None and type(current) not in (str, int, float, bool):
            return False
    return True


async def _thread_ids(
    saver: UnifiedCheckpointSaver,
    threads: Iterable[str] | None,
    filter: Mapping[str, Any] | None,
    updated_after: datetime | None,
    updated_before: datetime | None,
) -> AsyncIterator[str]:
    """The threads to export: those named (each must exist), else every thread the
    filters pass, a page of ids at a time."""
    if threads is not None:
        if filter is not None or updated_after is not None or updated_before is not None:
            raise InvalidConfigError("export: give threads or filters, not both")
        for thread_id in threads:
            yield thread_id
        return
    cursor: str | None = None
    while True:
        page = await saver.alist_threads(
            filter=filter, updated_after=updated_after, updated_before=updated_before,
            limit=LIST_THREADS_MAX, cursor=cursor,
        )
        for info in page.threads:
            yield info.thread_id
        cursor = page.next_cursor
        if cursor is None:
            return


async def _checkpoint_ids(saver: UnifiedCheckpointSaver, thread_id: str) -> list[tuple[str, str]]:
    """(checkpoint id, namespace) of every checkpoint of the thread, oldest first: a
    parent's id always sorts before its child's."""
    found = [
        (stored.record.checkpoint_id, stored.record.checkpoint_ns)
        async for stored in saver.backend.list_checkpoints(ListQuery(thread_id=thread_id))
    ]
    found.sort()
    return found


async def _thread_records(
    saver: UnifiedCheckpointSaver, writer: ValueWriter, thread_id: str, totals: Trailer
) -> AsyncIterator[Record]:
    ids = await _checkpoint_ids(saver, thread_id)
    if not ids:
        raise CheckpointNotFoundError(f"export: thread {thread_id!r} has no checkpoint")
    yield ThreadStart(thread_id)
    sent: set[tuple[str, str, str]] = set()
    # Per (namespace, channel): the version last sent and its packed list body, if a list.
    last: dict[tuple[str, str], tuple[str, bytes | None]] = {}
    end = ThreadEnd(thread_id, 0, 0, 0)
    for checkpoint_id, ns in ids:
        stored = await saver.backend.get_checkpoint(thread_id, ns, checkpoint_id)
        if stored is None:
            logger.warning(
                "export: checkpoint %r of thread %r (namespace %r) went away while exporting",
                checkpoint_id, thread_id, ns,
            )
            continue
        tup = decode_checkpoint(saver.codec, saver.read_limits, stored)
        checkpoint = tup.checkpoint
        where = f"thread {thread_id!r}, namespace {ns!r}, checkpoint {checkpoint_id!r}"
        values = checkpoint.get("channel_values") or {}
        versions = checkpoint["channel_versions"]
        for channel, version in versions.items():
            value = values.get(channel)
            key = (ns, channel, str(version))
            if value is None or key in sent:
                continue
            sent.add(key)
            yield _blob(writer, thread_id, key, value, last, f"{where}, channel {channel!r}")
            end.blobs += 1
        skeleton = {k: v for k, v in checkpoint.items() if k not in ("id", "channel_values")}
        skeleton_value: TypedValue | None = None
        if writer.encrypted or not _json_exact(skeleton):
            skeleton_value = writer.value(
                skeleton, skeleton_place(thread_id, ns, checkpoint_id), where
            )
        records = sorted(stored.writes, key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx))
        writes = [
            Write(
                task_id, record.task_path, record.idx, channel,
                writer.value(
                    value, write_place(thread_id, ns, checkpoint_id, position),
                    f"{where}, write {channel!r}",
                ),
            )
            for position, (record, (task_id, channel, value)) in enumerate(
                zip(records, tup.pending_writes or [], strict=True)
            )
        ]
        parent = tup.parent_config
        yield CheckpointEntry(
            ns, checkpoint_id,
            None if parent is None else parent["configurable"]["checkpoint_id"],
            None if skeleton_value is not None else skeleton, skeleton_value,
            [c for c in versions if c in values and values[c] is None],
            [c for c in versions if c not in values],
            dict(tup.metadata), writes,
        )
        end.checkpoints += 1
        end.writes += len(writes)
    yield end
    totals.threads += 1
    totals.checkpoints += end.checkpoints
    totals.blobs += end.blobs
    totals.writes += end.writes


def _blob(
    writer: ValueWriter,
    thread_id: str,
    key: tuple[str, str, str],
    value: Any,
    last: dict[tuple[str, str], tuple[str, bytes | None]],
    where: str,
) -> Blob:
    """One channel value at one version; a list that continues the channel's last sent
    list is sent as what it appends."""
    ns, channel, version = key
    place = blob_place(thread_id, ns, channel, version)
    plain, body = writer.list_body(value, where)
    previous = last.get((ns, channel))
    last[(ns, channel)] = (version, body)
    appended = None if body is None or previous is None else writer.appended(body, previous[1])
    if appended is not None and previous is not None:
        return Blob(
            ns, channel, version, extends=previous[0],
            append=[writer.seal(MSGPACK, element, (*place, i)) for i, element in enumerate(appended)],
        )
    assert plain is not None
    return Blob(ns, channel, version, value=writer.seal(plain.type, plain.data, place))


async def _store_records(store: UnifiedStore, totals: Trailer) -> AsyncIterator[StoreItemEntry]:
    """Every unexpired item, a page at a time (newest first), with its times and vectors."""
    now = store.now()
    search = ItemSearch(
        prefix=(), filter=compile_filter(None), offset=0, limit=STORE_PAGE, now=now,
        with_vectors=True,
    )
    while True:
        rows = await store.backend.search_items(search)
        for row in rows:
            totals.store_items += 1
            yield StoreItemEntry(
                tuple(row.namespace), row.key, decode_value(row.value), float(row.created_at),
                float(row.updated_at), row.ttl, row.expires_at,
                None if not row.vectors else {p: list(v) for p, v in row.vectors.items()},
            )
        if len(rows) < STORE_PAGE:
            return
        search.offset += len(rows)


async def _holds_data(client: UnifiedCheckpointSaver | UnifiedStore, what: str) -> bool:
    """Whether the source's storage was ever set up, found by its health probe, which
    only reads: an export never creates, migrates or upgrades anything in its source
    (``setup()`` would, and so would a read through a schema an older release wrote).
    Storage never set up (no tables, no schema) holds nothing and exports as empty;
    one that ``setup()`` has still to migrate is refused, naming what is pending."""
    report = await client.ahealth()
    if not report.reachable:
        raise BackendUnavailableError(f"export: the source {what}: {'; '.join(report.problems)}")
    if report.schema_version == 0:
        return False
    if report.pending_migrations:
        raise ExportSourceError(
            f"export: the source {what} at {report.location or report.backend}: "
            f"{'; '.join(report.problems)}; an export changes nothing in its source, so "
            "run setup() there first (lus doctor shows what it would apply)"
        )
    return True


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


async def aexport_records(
    saver: UnifiedCheckpointSaver | None = None,
    store: UnifiedStore | None = None,
    *,
    threads: Iterable[str] | None = None,
    filter: Mapping[str, Any] | None = None,
    updated_after: datetime | None = None,
    updated_before: datetime | None = None,
    decrypt: bool = False,
    progress: Progress | None = None,
) -> AsyncIterator[Record]:
    """The export of ``saver``'s threads (those named by ``threads``, else every one the
    ``list_threads`` filters pass) and of every item of ``store``, record by record:
    header, each thread's block (its blobs and checkpoints, oldest first), the store
    items, the trailer with the counts. An encrypting saver's values are exported
    sealed with its key, unless ``decrypt``. Nothing is set up in the source: storage
    never set up exports as empty, one with migrations pending raises
    ``ExportSourceError``."""
    if saver is None and store is None:
        raise InvalidConfigError("export: give a saver, a store, or both")
    writer = None if saver is None else ValueWriter(saver, decrypt=decrypt)
    named = None if threads is None else list(
        dict.fromkeys(check_thread_id(thread_id, "export") for thread_id in threads)
    )
    total = len(named) if named is not None and store is None else None
    saver_holds = saver is not None and await _holds_data(saver, "saver")
    store_holds = store is not None and await _holds_data(store, "store")
    if saver is not None:
        for thread_id in named or ():
            if not saver_holds or not await saver.backend.checkpoint_heads(thread_id):
                raise CheckpointNotFoundError(f"export: thread {thread_id!r} has no checkpoint")
    yield Header(
        _now_iso(),
        saver.backend.name if saver is not None else store.backend.name if store is not None else None,
        writer is not None and writer.encrypted,
    )
    totals = Trailer()
    done = 0
    if saver is not None and writer is not None and saver_holds:
        async for thread_id in _thread_ids(saver, named, filter, updated_after, updated_before):
            async for record in _thread_records(saver, writer, thread_id, totals):
                yield record
            done += 1
            if progress is not None:
                progress(done, total)
    if store is not None and store_holds:
        async for item in _store_records(store, totals):
            yield item
            done += 1
            if progress is not None:
                progress(done, total)
    yield totals


async def aexport_to(
    destination: str | os.PathLike[str] | IO[bytes],
    saver: UnifiedCheckpointSaver | None = None,
    store: UnifiedStore | None = None,
    **options: Any,
) -> Trailer:
    """Write the export (``aexport_records``, same options) to a file path or a binary
    file, line by line; returns the counts written. A path is written to a temporary
    name beside it and renamed at the end, so a cut-short export never looks whole."""
    records = aexport_records(saver, store, **options)
    if isinstance(destination, (str, os.PathLike)):
        path = os.fspath(destination)
        partial = f"{path}.partial"
        with open(partial, "wb") as file:
            trailer = await _write(records, file)
        os.replace(partial, path)
        return trailer
    return await _write(records, destination)


async def _write(records: AsyncIterator[Record], file: IO[bytes]) -> Trailer:
    last: Record | None = None
    async for record in records:
        file.write(record_json(record))
        last = record
    assert isinstance(last, Trailer)
    return last
