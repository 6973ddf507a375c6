"""Plain records a storage backend keeps. Backends never call serde: they store bytes and JSON.

Layout (what makes long threads grow linearly):
- a checkpoint record holds the checkpoint *without* channel values;
- a blob holds one channel's value at one version, written once per (thread, ns, channel, version);
- a list-valued blob (a message list, say) holds only references to items;
- an item is one serialized list element, stored once per thread under its content hash;
- a segment is an item holding a run of element references. A list of N elements is
  cut into power-of-two segments fixed by N alone, so consecutive versions of a growing
  list share their segments and each version stores O(log N) references, not N.

Items reference items one level deep at most (a segment names elements); backends
fetch and keep that closure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import CorruptDataError

# A blob whose channel had no value at that version (LangGraph's "empty").
EMPTY_TYPE = "empty"
# A blob that holds a list as segment references plus a short tail (see core.codec).
ITEM_LIST_TYPE = "lus.itemlist"
# A blob of a dict whose list values are item lists: {"messages": [...]} as graph input.
ITEM_DICT_TYPE = "lus.itemdict"
# An item that holds a run of list entries (element references or small inline elements).
SEGMENT_TYPE = "lus.segment"
# Length of an item reference (a keyed BLAKE2b digest).
ITEM_REF_SIZE = 16


@dataclass(slots=True)
class CheckpointRecord:
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    type: str
    """serde type tag of ``data``, the checkpoint without channel values."""
    data: bytes
    channel_versions: dict[str, str]
    """channel -> version as text; plaintext so a backend can fetch the blobs in one query."""
    metadata: bytes
    """UTF-8 JSON object; backends keep it queryable for list filters."""
    run_id: str | None = None
    stored_size: int | None = None
    """Bytes ``data`` took in storage when the backend stored it transformed (Redis
    deflates records); a read's decode budget counts those, not the inflated bytes."""


@dataclass(slots=True)
class BlobRecord:
    channel: str
    version: str
    type: str
    data: bytes
    item_refs: tuple[bytes, ...] = ()
    """Items this blob needs; a backend must keep them while the blob exists."""
    base_version: str | None = None
    """The version of this channel's blob (same thread and namespace) whose items this
    encoding reuses without sending them: ``put_checkpoint`` must raise
    ``ItemsMissingError`` and write nothing if that blob no longer exists."""


@dataclass(slots=True)
class WriteRecord:
    task_id: str
    idx: int
    channel: str
    type: str
    data: bytes
    task_path: str = ""
    item_refs: tuple[bytes, ...] = ()


@dataclass(slots=True)
class ItemRecord:
    ref: bytes
    type: str
    data: bytes
    item_refs: tuple[bytes, ...] = ()
    """Element items a segment names; empty for an element."""


@dataclass(slots=True)
class StoredCheckpoint:
    """One checkpoint as read back: its record, the blobs of its channel_versions,
    its pending writes (any order) and every item those blobs and writes reference,
    plus the items those items reference."""

    record: CheckpointRecord
    blobs: dict[str, BlobRecord] = field(default_factory=dict)
    writes: list[WriteRecord] = field(default_factory=list)
    items: dict[bytes, ItemRecord] = field(default_factory=dict)


FilterScalar = str | int | float | bool


@dataclass(slots=True)
class ListQuery:
    """What ``list`` asks a backend for. Results come newest first (checkpoint_id descending)."""

    thread_id: str | None = None
    checkpoint_ns: str | None = None
    checkpoint_id: str | None = None
    before: str | None = None
    """Only checkpoints whose id sorts strictly before this one."""
    filter: dict[str, FilterScalar] = field(default_factory=dict)
    """Top-level metadata keys that must equal these JSON scalars (type-exact: true != 1)."""
    limit: int | None = None


def load_channel_versions(
    raw: bytes | str, thread_id: str, checkpoint_ns: str, checkpoint_id: str
) -> dict[str, str]:
    """A stored channel_versions JSON object, or CorruptDataError naming the checkpoint.

    Every backend reads this column through here, so a damaged row is reported the
    same way everywhere instead of surfacing a driver's JSON error (or, worse, reading
    back as a checkpoint with no values).
    """
    try:
        versions: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        versions = exc
    if not isinstance(versions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in versions.items()
    ):
        raise CorruptDataError(
            f"thread {thread_id!r}, namespace {checkpoint_ns!r}, checkpoint {checkpoint_id!r}: "
            "stored channel_versions is not a JSON object of version strings"
        )
    return versions
