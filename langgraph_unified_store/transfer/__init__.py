"""Export, import and copy of checkpoints and store items between any backends.

The format (``format``, ``docs/export-format.md``) is versioned JSON Lines, read and
written one line at a time. ``aexport_to`` / ``aimport_from`` move a file;
``acopy`` migrates between two backends, verified and resumable. Each has a blocking
twin (``export_to``, ``import_from``, ``copy``) for code without an event loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import IO, Any, TypeVar

from ..core.saver import UnifiedCheckpointSaver
from ..core.store import UnifiedStore
from ..core.sync import ensure_no_running_loop
from .copying import acopy
from .export import Progress, aexport_records, aexport_to
from .format import (
    CONFLICT_CHOICES,
    FORMAT_NAME,
    FORMAT_VERSION,
    ExportDecryptError,
    ExportFormatError,
    ExportKeyError,
    ExportSourceError,
    ImportConflictError,
    Trailer,
    parse_line,
    record_json,
)
from .import_ import (
    ON_CONFLICT,
    ImportSummary,
    OnConflict,
    aimport_from,
    aimport_records,
    records_of,
)

T = TypeVar("T")

__all__ = [
    "CONFLICT_CHOICES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ON_CONFLICT",
    "ExportDecryptError",
    "ExportFormatError",
    "ExportKeyError",
    "ExportSourceError",
    "ImportConflictError",
    "ImportSummary",
    "OnConflict",
    "Progress",
    "Trailer",
    "acopy",
    "aexport_records",
    "aexport_to",
    "aimport_from",
    "aimport_records",
    "copy",
    "export_to",
    "import_from",
    "parse_line",
    "record_json",
    "records_of",
]


def _blocking(method: str, coro: Coroutine[Any, Any, T]) -> T:
    try:
        ensure_no_running_loop(method)
    except Exception:
        coro.close()
        raise
    return asyncio.run(coro)


def export_to(
    destination: str | os.PathLike[str] | IO[bytes],
    saver: UnifiedCheckpointSaver | None = None,
    store: UnifiedStore | None = None,
    **options: Any,
) -> Trailer:
    """The blocking ``aexport_to`` (on an event loop of its own)."""
    return _blocking("export_to", aexport_to(destination, saver, store, **options))


def import_from(
    source: str | os.PathLike[str] | IO[bytes],
    saver: UnifiedCheckpointSaver | None = None,
    store: UnifiedStore | None = None,
    **options: Any,
) -> ImportSummary:
    """The blocking ``aimport_from`` (on an event loop of its own)."""
    return _blocking("import_from", aimport_from(source, saver, store, **options))


def copy(
    source: UnifiedCheckpointSaver | None,
    target: UnifiedCheckpointSaver | None,
    **options: Any,
) -> ImportSummary:
    """The blocking ``acopy`` (on an event loop of its own)."""
    return _blocking("copy", acopy(source, target, **options))
