"""Import: the export format into a saver and a store, line by line.

Records are checked as they come (``Structure``: header first, each thread's block
closed by its ``thread_end`` with matching counts, the trailer last with the file's
counts); a file is checked whole before anything is written, so a truncated or damaged
file writes nothing. Each thread is written through the saver's public ``aput`` and
``aput_writes``, parents before children, each blob's value sent once; a thread that
fails part-way (a bad line, a conflict) is deleted again if the import created it.

A thread the target already holds is refused (``on_conflict="error"``, the default),
left as it is (``"skip"``), deleted and imported afresh (``"replace"``), or completed
(``"resume"``): every checkpoint it holds must equal the export's, and those it lacks
are added, which is how an interrupted import or copy finishes.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import IO, Any, Final, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple

from ..core.checkpoints import checkpoint_config
from ..core.records import ListQuery
from ..core.saver import UnifiedCheckpointSaver
from ..core.store import UnifiedStore
from ..core.store_backend import StoredItem
from ..core.store_rules import check_namespace, decode_value, encode_value
from ..core.validate import check_text, check_thread_id
from ..errors import (
    CorruptDataError,
    InvalidConfigError,
    SerializationError,
    UnsafeDeserializationError,
)
from .export import Progress
from .format import (
    Blob,
    CheckpointEntry,
    ExportFormatError,
    ExportKeyError,
    Header,
    ImportConflictError,
    Record,
    StoreItemEntry,
    ThreadEnd,
    ThreadStart,
    Trailer,
    parse_line,
)
from .values import ValueReader, blob_place, skeleton_place, write_place

logger = logging.getLogger(__name__)

OnConflict = Literal["error", "skip", "replace", "resume"]
ON_CONFLICT: Final = ("error", "skip", "replace", "resume")
STORE_BATCH: Final = 100
# What a failed thread is rolled back for: the data was wrong, not the connection.
DATA_ERRORS: Final = (
    CorruptDataError, InvalidConfigError, ImportConflictError, SerializationError,
    UnsafeDeserializationError,
)


@dataclass(slots=True)
class ImportSummary:
    """What an import (or copy) did."""

    threads: int = 0
    """Threads imported or completed."""
    threads_skipped: list[str] = field(default_factory=list)
    checkpoints_written: int = 0
    checkpoints_present: int = 0
    """Checkpoints the target held already, equal to the export's (resume)."""
    writes_written: int = 0
    store_items_written: int = 0
    store_items_skipped: int = 0
    verified: bool = False
    """Every checkpoint and store item written was read back equal (``verify``)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "threads": self.threads, "threads_skipped": list(self.threads_skipped),
            "checkpoints_written": self.checkpoints_written,
            "checkpoints_present": self.checkpoints_present,
            "writes_written": self.writes_written,
            "store_items_written": self.store_items_written,
            "store_items_skipped": self.store_items_skipped, "verified": self.verified,
        }


class Structure:
    """The order records must come in, and the counts they must add up to."""

    def __init__(self) -> None:
        self.header: Header | None = None
        self.block: ThreadEnd | None = None
        self.block_line = 0
        self.totals = Trailer()
        self.trailer_seen = False
        self.line = 0

    def feed(self, line: int, record: Record) -> None:
        self.line = line
        if self.header is None:
            if not isinstance(record, Header):
                raise ExportFormatError(line, "an export starts with its header record")
            self.header = record
            return
        if self.trailer_seen:
            raise ExportFormatError(line, "a record after the trailer")
        kind = type(record).__name__
        if isinstance(record, Header):
            raise ExportFormatError(line, "a second header")
        block = self.block
        if isinstance(record, (Blob, CheckpointEntry, ThreadEnd)):
            if block is None:
                raise ExportFormatError(line, f"a {kind} record outside any thread's block")
            if isinstance(record, Blob):
                block.blobs += 1
            elif isinstance(record, CheckpointEntry):
                block.checkpoints += 1
                block.writes += len(record.writes)
            else:
                self._end(line, block, record)
            return
        if block is not None:
            raise ExportFormatError(
                line, f"thread {block.thread_id!r} (from line {self.block_line}) has no "
                "thread_end record before this one"
            )
        if isinstance(record, ThreadStart):
            self.block = ThreadEnd(record.thread_id, 0, 0, 0)
            self.block_line = line
        elif isinstance(record, StoreItemEntry):
            self.totals.store_items += 1
        elif isinstance(record, Trailer):
            if record != self.totals:
                raise ExportFormatError(
                    line, f"the trailer counts {record} but the file holds {self.totals}: "
                    "records are missing or were added"
                )
            self.trailer_seen = True

    def _end(self, line: int, block: ThreadEnd, end: ThreadEnd) -> None:
        if end != block:
            raise ExportFormatError(
                line, f"thread {block.thread_id!r}'s block holds {block.checkpoints} "
                f"checkpoints, {block.blobs} blobs and {block.writes} writes, but its "
                f"thread_end (thread {end.thread_id!r}) counts {end.checkpoints}, "
                f"{end.blobs} and {end.writes}"
            )
        self.totals.threads += 1
        self.totals.checkpoints += block.checkpoints
        self.totals.blobs += block.blobs
        self.totals.writes += block.writes
        self.block = None

    def finish(self) -> None:
        if self.header is None:
            raise ExportFormatError(0, "the export is empty (no header)")
        if self.block is not None:
            raise ExportFormatError(
                self.line, f"the export ends inside thread {self.block.thread_id!r}'s block "
                f"(from line {self.block_line}): it is truncated"
            )
        if not self.trailer_seen:
            raise ExportFormatError(
                self.line, "the export ends without its trailer: it is truncated"
            )


def _same_checkpoint(a: CheckpointTuple, b: CheckpointTuple) -> bool:
    return (
        a.config == b.config and a.checkpoint == b.checkpoint and a.metadata == b.metadata
        and a.parent_config == b.parent_config
    )


async def _thread_exists(saver: UnifiedCheckpointSaver, thread_id: str) -> bool:
    async for _ in saver.alist({"configurable": {"thread_id": thread_id}}, limit=1):
        return True
    return False


class ThreadImport:
    """One thread's block going into the target saver."""

    def __init__(
        self,
        saver: UnifiedCheckpointSaver,
        reader: ValueReader,
        thread_id: str,
        *,
        existed: bool,
        verify: bool,
        summary: ImportSummary,
    ) -> None:
        self.saver = saver
        self.reader = reader
        self.thread_id = thread_id
        self.existed = existed
        self.verify = verify
        self.summary = summary
        self.touched = False
        # Values of the blobs just read, for the checkpoint that follows them.
        self.fresh: dict[tuple[str, str, str], Any] = {}
        # Per (namespace, channel): the last blob's version and value (``extends`` base).
        self.last: dict[tuple[str, str], tuple[str, Any]] = {}
        # Per blob: a checkpoint of the target that holds it (to read an old value back).
        self.home: dict[tuple[str, str, str], str] = {}
        self.imported: set[tuple[str, str]] = set()

    def where(self, ns: str, checkpoint_id: str | None = None) -> str:
        text = f"thread {self.thread_id!r}, namespace {ns!r}"
        return text if checkpoint_id is None else f"{text}, checkpoint {checkpoint_id!r}"

    def blob(self, line: int, blob: Blob) -> None:
        ns, channel, version = blob.checkpoint_ns, blob.channel, blob.version
        place = blob_place(self.thread_id, ns, channel, version)
        where = f"{self.where(ns)}, channel {channel!r} at version {version!r}"
        if blob.value is not None:
            value = self.reader.load(blob.value, place, line, where)
        else:
            base = self.last.get((ns, channel))
            if base is None or base[0] != blob.extends or type(base[1]) is not list:
                raise ExportFormatError(
                    line, f"{where} extends version {blob.extends!r}, which is not the list "
                    "of this channel's previous blob"
                )
            value = [
                *base[1],
                *(
                    self.reader.load(element, (*place, i), line, f"{where}, element {i}")
                    for i, element in enumerate(blob.append)
                ),
            ]
        self.last[(ns, channel)] = (version, value)
        self.fresh[(ns, channel, version)] = value

    async def checkpoint(self, line: int, entry: CheckpointEntry) -> None:
        ns, checkpoint_id = entry.checkpoint_ns, entry.checkpoint_id
        where = self.where(ns, checkpoint_id)
        check_text(ns, "checkpoint_ns", f"import, line {line}")
        check_text(checkpoint_id, "checkpoint_id", f"import, line {line}")
        skeleton: Any = entry.skeleton
        if entry.skeleton_value is not None:
            skeleton = self.reader.load(
                entry.skeleton_value, skeleton_place(self.thread_id, ns, checkpoint_id), line, where
            )
        versions = skeleton.get("channel_versions") if isinstance(skeleton, dict) else None
        if not isinstance(versions, dict) or "id" in skeleton or "channel_values" in skeleton:
            raise ExportFormatError(
                line, f"{where}: 'checkpoint' must be a checkpoint without 'id' and "
                "'channel_values', with its 'channel_versions'"
            )
        if not set(entry.none) | set(entry.empty) <= set(versions):
            raise ExportFormatError(line, f"{where}: 'none' and 'empty' name channels it has not")
        values: dict[str, Any] = {}
        new_versions: dict[str, Any] = {}
        wanted: list[tuple[str, str]] = []
        for channel, version in versions.items():
            if channel in entry.empty:
                continue
            if channel in entry.none:
                values[channel] = None
                continue
            key = (ns, channel, str(version))
            if key in self.fresh:
                values[channel] = self.fresh.pop(key)
                new_versions[channel] = version
                continue
            last = self.last.get((ns, channel))
            if last is not None and last[0] == str(version):
                values[channel] = last[1]
            else:
                wanted.append((channel, str(version)))
        self.fresh.clear()
        if wanted:
            values.update(await self._read_back(line, ns, entry, wanted))
        checkpoint: dict[str, Any] = {**skeleton, "id": checkpoint_id, "channel_values": values}
        writes = [
            (
                w,
                self.reader.load(
                    w.value, write_place(self.thread_id, ns, checkpoint_id, position), line,
                    f"{where}, write {w.channel!r} by task {w.task_id!r}",
                ),
            )
            for position, w in enumerate(entry.writes)
        ]
        parent = entry.parent_checkpoint_id
        config = checkpoint_config(self.thread_id, ns, checkpoint_id)
        expected = CheckpointTuple(
            config=config,
            checkpoint=checkpoint,  # type: ignore[arg-type]
            metadata=entry.metadata,  # type: ignore[arg-type]
            parent_config=None if parent is None else checkpoint_config(self.thread_id, ns, parent),
            pending_writes=[(w.task_id, w.channel, value) for w, value in writes],
        )
        present = await self.saver.aget_tuple(config) if self.existed else None
        if present is not None:
            if not _same_checkpoint(present, expected):
                raise ImportConflictError(
                    f"line {line}: {where} is stored in the target and differs from the "
                    "export's; nothing of it was changed",
                    thread_id=self.thread_id,
                )
            self.summary.checkpoints_present += 1
            if present.pending_writes != expected.pending_writes:
                await self._put_writes(config, writes)
        else:
            put_config: RunnableConfig = {
                "configurable": {"thread_id": self.thread_id, "checkpoint_ns": ns}
            }
            if parent is not None:
                put_config["configurable"]["checkpoint_id"] = parent
            self.touched = True
            await self.saver.aput(
                put_config, checkpoint, dict(entry.metadata),  # type: ignore[arg-type]
                new_versions,
            )
            self.summary.checkpoints_written += 1
            await self._put_writes(config, writes)
        if self.verify and (present is None or present.pending_writes != expected.pending_writes):
            got = await self.saver.aget_tuple(config)
            if got != expected:
                raise CorruptDataError(
                    f"line {line}: {where} does not read back equal to the export after "
                    "it was written"
                )
        for channel, version in versions.items():
            if channel in values and values[channel] is not None:
                self.home.setdefault((ns, channel, str(version)), checkpoint_id)
        self.imported.add((checkpoint_id, ns))

    async def _read_back(
        self, line: int, ns: str, entry: CheckpointEntry, wanted: list[tuple[str, str]]
    ) -> dict[str, Any]:
        """Values a checkpoint names whose blob came earlier in the thread: read from a
        checkpoint of the target that holds them (the parent, if no other is known)."""
        found: dict[str, Any] = {}
        by_home: dict[str, list[tuple[str, str]]] = {}
        for channel, version in wanted:
            home = self.home.get((ns, channel, version)) or entry.parent_checkpoint_id
            if home is None:
                raise ExportFormatError(
                    line, f"{self.where(ns, entry.checkpoint_id)} names channel {channel!r} "
                    f"at version {version!r}, which no blob before it holds"
                )
            by_home.setdefault(home, []).append((channel, version))
        for home, channels in by_home.items():
            held = await self.saver.aget_tuple(checkpoint_config(self.thread_id, ns, home))
            for channel, version in channels:
                if (
                    held is None
                    or str(held.checkpoint["channel_versions"].get(channel)) != version
                    or channel not in held.checkpoint["channel_values"]
                ):
                    raise ExportFormatError(
                        line, f"{self.where(ns, entry.checkpoint_id)} names channel "
                        f"{channel!r} at version {version!r}, which no blob before it holds"
                    )
                found[channel] = held.checkpoint["channel_values"][channel]
        return found

    async def _put_writes(self, config: RunnableConfig, writes: list[tuple[Any, Any]]) -> None:
        """Each task's writes in one ``aput_writes``, in the export's order (the saver
        numbers them by position, which keeps that order)."""
        by_task: dict[tuple[str, str], list[tuple[str, Any]]] = {}
        for w, value in writes:
            by_task.setdefault((w.task_id, w.task_path), []).append((w.channel, value))
        for (task_id, task_path), pairs in by_task.items():
            self.touched = True
            await self.saver.aput_writes(config, pairs, task_id, task_path)
            self.summary.writes_written += len(pairs)

    async def finish(self, line: int) -> None:
        if self.fresh:
            ns, channel, version = next(iter(self.fresh))
            raise ExportFormatError(
                line, f"{self.where(ns)}: the blob of channel {channel!r} at version "
                f"{version!r} is named by no checkpoint after it"
            )
        if self.verify and self.existed:
            stored = {
                (s.record.checkpoint_id, s.record.checkpoint_ns)
                async for s in self.saver.backend.list_checkpoints(ListQuery(thread_id=self.thread_id))
            }
            extra = sorted(stored - self.imported)
            if extra:
                raise ImportConflictError(
                    f"line {line}: thread {self.thread_id!r} holds {len(extra)} checkpoint(s) "
                    f"the export lacks (first: {extra[0][0]!r} in namespace {extra[0][1]!r})",
                    thread_id=self.thread_id,
                )
        self.summary.threads += 1


class Importer:
    """The import of one stream of records into a saver and a store."""

    def __init__(
        self,
        saver: UnifiedCheckpointSaver | None,
        store: UnifiedStore | None,
        on_conflict: str,
        verify: bool,
        progress: Progress | None,
    ) -> None:
        if on_conflict not in ON_CONFLICT:
            raise InvalidConfigError(
                f"import: on_conflict must be one of {', '.join(ON_CONFLICT)}, not {on_conflict!r}"
            )
        self.saver = saver
        self.store = store
        self.on_conflict = on_conflict
        self.verify = verify
        self.progress = progress
        self.summary = ImportSummary()
        self.structure = Structure()
        self.reader = None if saver is None else ValueReader(saver)
        self.thread: ThreadImport | None = None
        self.skipping = False
        self.batch: list[tuple[int, StoreItemEntry]] = []
        self.done = 0

    async def run(self, records: AsyncIterable[tuple[int, Record]]) -> ImportSummary:
        if self.saver is not None:
            await self.saver.asetup()
        if self.store is not None:
            await self.store.asetup()
        try:
            async for line, record in records:
                self.structure.feed(line, record)
                await self._take(line, record)
            self.structure.finish()
            await self._flush()
        except DATA_ERRORS:
            await self._roll_back()
            raise
        self.summary.verified = self.verify
        return self.summary

    async def _take(self, line: int, record: Record) -> None:
        if isinstance(record, Header):
            if (
                record.encrypted and self.saver is not None and self.reader is not None
                and self.reader.sealer is None
            ):
                raise ExportKeyError("import: the export is encrypted")
        elif isinstance(record, ThreadStart):
            await self._flush()
            await self._begin(line, record)
        elif isinstance(record, Blob):
            if self.thread is not None:
                self.thread.blob(line, record)
        elif isinstance(record, CheckpointEntry):
            if self.thread is not None:
                await self.thread.checkpoint(line, record)
        elif isinstance(record, ThreadEnd):
            if self.thread is not None:
                await self.thread.finish(line)
            self.thread = None
            self.skipping = False
            self._advance()
        elif isinstance(record, StoreItemEntry):
            self.batch.append((line, record))
            if len(self.batch) >= STORE_BATCH:
                await self._flush()
        elif isinstance(record, Trailer):
            await self._flush()

    def _advance(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, None)

    async def _begin(self, line: int, record: ThreadStart) -> None:
        saver = self.saver
        if saver is None or self.reader is None:
            self.summary.threads_skipped.append(record.thread_id)
            self.skipping = True
            return
        thread_id = check_thread_id(record.thread_id, f"import, line {line}")
        existed = await _thread_exists(saver, thread_id)
        if existed:
            if self.on_conflict == "error":
                raise ImportConflictError(
                    f"line {line}: thread {thread_id!r} exists in the target; nothing of it "
                    "was written",
                    thread_id=thread_id, choices=True,
                )
            if self.on_conflict == "skip":
                self.summary.threads_skipped.append(thread_id)
                self.skipping = True
                return
            if self.on_conflict == "replace":
                await saver.adelete_thread(thread_id)
                existed = False
        self.thread = ThreadImport(
            saver, self.reader, thread_id, existed=existed, verify=self.verify,
            summary=self.summary,
        )

    async def _flush(self) -> None:
        batch, self.batch = self.batch, []
        if not batch:
            return
        store = self.store
        if store is None:
            self.summary.store_items_skipped += len(batch)
            return
        now = store.now()
        items: dict[tuple[tuple[str, ...], str], StoredItem] = {}
        lines: dict[tuple[tuple[str, ...], str], int] = {}
        for line, entry in batch:
            operation = f"import, line {line}"
            namespace = check_namespace(entry.namespace, operation)
            name = check_text(entry.key, "key", operation)
            items[(namespace, name)] = StoredItem(
                namespace, name, encode_value(entry.value, namespace, name), entry.created_at,
                entry.updated_at, entry.ttl, entry.expires_at, entry.vectors,
            )
            lines[(namespace, name)] = line
        keys = list(items)
        found = await store.backend.get_items(keys, now, False)
        for key, present in zip(keys, found, strict=True):
            if present is None:
                continue
            if self.on_conflict == "skip" or (
                self.on_conflict == "resume" and _same_item(present, items[key])
            ):
                del items[key]
                self.summary.store_items_skipped += 1
            elif self.on_conflict != "replace":
                raise ImportConflictError(
                    f"line {lines[key]}: store item {key[0]!r} / {key[1]!r} exists in the "
                    "target" + (" and differs" if self.on_conflict == "resume" else "")
                    + "; nothing of this batch was written"
                )
        if items:
            await store.backend.write_items(list(items.values()), [], now)
            self.summary.store_items_written += len(items)
            if self.verify:
                written = list(items)
                for key, got in zip(written, await store.backend.get_items(written, now, False), strict=True):
                    if got is None or not _same_item(got, items[key]):
                        raise CorruptDataError(
                            f"line {lines[key]}: store item {key[0]!r} / {key[1]!r} does not "
                            "read back equal to the export after it was written"
                        )
        for _ in batch:
            self._advance()

    async def _roll_back(self) -> None:
        """Delete the thread this import was writing, if the import created it."""
        thread = self.thread
        self.thread = None
        if thread is None or thread.existed or not thread.touched or self.saver is None:
            return
        with contextlib.suppress(Exception):
            await self.saver.adelete_thread(thread.thread_id)
            logger.warning("import: thread %r was rolled back (deleted)", thread.thread_id)


def _same_item(a: StoredItem, b: StoredItem) -> bool:
    return (
        decode_value(a.value) == decode_value(b.value)
        and a.created_at == b.created_at and a.updated_at == b.updated_at
        and a.ttl == b.ttl and a.expires_at == b.expires_at
    )


async def aimport_records(
    records: AsyncIterable[tuple[int, Record]],
    saver: UnifiedCheckpointSaver | None = None,
    store: UnifiedStore | None = None,
    *,
    on_conflict: OnConflict = "error",
    verify: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import ``(line number, record)`` pairs (see the module doc for ``on_conflict``);
    with ``verify``, every checkpoint and store item written is read back and compared.
    Threads go to ``saver`` and items to ``store``; without one, they are skipped."""
    return await Importer(saver, store, on_conflict, verify, progress).run(records)


async def _lines(file: IO[bytes]) -> AsyncIterator[tuple[int, Record]]:
    for number, raw in enumerate(file, start=1):
        if raw.strip():
            yield number, parse_line(raw, number)


async def _checked(file: IO[bytes]) -> None:
    structure = Structure()
    async for line, record in _lines(file):
        structure.feed(line, record)
    structure.finish()


async def aimport_from(
    source: str | os.PathLike[str] | IO[bytes],
    saver: UnifiedCheckpointSaver | None = None,
    store: UnifiedStore | None = None,
    *,
    on_conflict: OnConflict = "error",
    verify: bool = False,
    check_first: bool = True,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import an export file (a path, or a binary file), line by line. With
    ``check_first`` (and a path or seekable file), the whole file is checked first, so
    that a damaged or truncated file writes nothing."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as file:
            return await _import_file(file, saver, store, on_conflict, verify, check_first, progress)
    return await _import_file(source, saver, store, on_conflict, verify, check_first, progress)


async def _import_file(
    file: IO[bytes],
    saver: UnifiedCheckpointSaver | None,
    store: UnifiedStore | None,
    on_conflict: OnConflict,
    verify: bool,
    check_first: bool,
    progress: Progress | None,
) -> ImportSummary:
    if check_first and file.seekable():
        start = file.tell()
        await _checked(file)
        file.seek(start)
    return await aimport_records(
        _lines(file), saver, store, on_conflict=on_conflict, verify=verify, progress=progress
    )


def records_of(lines: Iterable[bytes | str]) -> AsyncIterator[tuple[int, Record]]:
    """Parsed records of export lines (e.g. read from a stream), numbered from 1."""

    async def parsed() -> AsyncIterator[tuple[int, Record]]:
        for number, raw in enumerate(lines, start=1):
            if raw.strip():
                yield number, parse_line(raw, number)

    return parsed()
