"""Copy: threads and store items from one backend to another, without a file.

The export streams straight into the import (``on_conflict="resume"``, ``verify``):
every checkpoint and item written is read back and compared, a thread the target holds
already and equal is left alone, and one an interrupted copy left part-way is
completed. Values cross decrypted in memory only, and the target seals them with its
own key (if it has one), so a copy can also move data to a new key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from typing import Any

from ..core.saver import UnifiedCheckpointSaver
from ..core.store import UnifiedStore
from ..errors import InvalidConfigError
from .export import Progress, aexport_records
from .format import Record
from .import_ import ImportSummary, aimport_records


async def acopy(
    source: UnifiedCheckpointSaver | None,
    target: UnifiedCheckpointSaver | None,
    *,
    source_store: UnifiedStore | None = None,
    target_store: UnifiedStore | None = None,
    threads: Iterable[str] | None = None,
    filter: Mapping[str, Any] | None = None,
    updated_after: datetime | None = None,
    updated_before: datetime | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Copy ``source``'s threads (those named, else every one the filters pass) to
    ``target``, and every item of ``source_store`` to ``target_store``; verified by
    reading back, and safe to run again: a rerun after an interruption finishes the job.
    A thread of the target that differs from the source's raises ``ImportConflictError``."""
    if (source is None) != (target is None):
        raise InvalidConfigError("copy: give both a source and a target saver, or neither")
    if (source_store is None) != (target_store is None):
        raise InvalidConfigError("copy: give both a source and a target store, or neither")
    if source is None and source_store is None:
        raise InvalidConfigError("copy: give savers, stores, or both")
    if source is not None and source is target:
        raise InvalidConfigError("copy: source and target are the same saver")
    records = aexport_records(
        source, source_store, threads=threads, filter=filter, updated_after=updated_after,
        updated_before=updated_before, decrypt=True,
    )
    return await aimport_records(
        _numbered(records), target, target_store, on_conflict="resume", verify=True,
        progress=progress,
    )


async def _numbered(records: AsyncIterator[Record]) -> AsyncIterator[tuple[int, Record]]:
    """Records numbered as the lines of a file would be (for error messages)."""
    number = 0
    async for record in records:
        number += 1
        yield number, record
