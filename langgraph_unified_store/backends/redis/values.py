"""The stored value codec: hash values are frames (length-prefixed parts), and what the
scripts hand back (``lua/lib/assemble.lua``) decodes here into ``core.records``, where a
list filter Lua's doubles cannot compare exactly is checked again.

Checkpoint records were once stored deflated a second time, against a fixed dictionary,
under the type prefix ``lus.zr1:``. Core's ``zc1:`` already compresses them, so that layer
shrank nothing; records are now written as the core hands them over, and records written
the old way still read back (``inflate_record``), within the saver's ReadLimits.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Any, Final

import orjson

from ...core import rules
from ...core.codec import Codec
from ...core.limits import DEFAULT_READ_LIMITS, ReadLimits
from ...core.records import (
    BlobRecord,
    CheckpointRecord,
    FilterScalar,
    ItemRecord,
    StoredCheckpoint,
    WriteRecord,
)
from ...core.rules import pack_refs, split_refs
from ...errors import CorruptDataError, InvalidConfigError
from .keys import blob_field, namespace_hex_of, split_index_member, text_of

PART_LENGTH: Final = struct.Struct(">I")

# The legacy record layer: a checkpoint record deflated (raw deflate, level 9, against
# RECORD_DICTIONARY) and followed by the CRC-32 of the record, under this type prefix.
# Old databases hold such records, so neither the prefix nor the dictionary may change.
DEFLATED_RECORD_PREFIX: Final = "lus.zr1:"
RECORD_DICTIONARY: Final = (
    b"__interrupt__ __pregel_tasks __pregel_push __pregel_pull __end__ __error__ "
    b"__resume__ __scheduled__ branch:to:\x84\xa1v\x04\xa2ts\xd9 2025-01-01T00:00:00.000000"
    b"+00:00\xadversions_seen\x82\xa9__input__\x80\xa9__start__\x81\xa9__start__\xa31.0"
    b"\xb0updated_channels\x93\xa8messages\xa9__start__\xaabranch:to:"
)
# Records smaller than this were never deflated by the legacy writer.
RECORD_DEFLATE_MIN: Final = 64
# A legacy record never inflates past this, nor past what the saver's ReadLimits allow
# its stored size (a garbled or planted one could try to).
RECORD_INFLATE_MAX: Final = 1 << 24

# What garbled stored bytes raise while being decoded (JSON and UTF-8 errors are ValueErrors).
UNREADABLE: Final = (ValueError, TypeError, KeyError, IndexError, struct.error)
# Lua numbers are doubles: beyond this a filter value may compare equal to a neighbour,
# so such filters are re-checked here and the script gets no limit.
LUA_EXACT_INT: Final = 2**53


def frame(*parts: bytes) -> bytes:
    """Length-prefixed parts: binary-safe, and cheap for a Lua script to split."""
    return b"".join([PART_LENGTH.pack(len(part)) + part for part in parts])


def frame_parts(data: bytes, count: int) -> list[bytes]:
    """Exactly ``count`` framed parts, or ValueError: a stored frame may be garbled."""
    parts: list[bytes] = []
    position, end = 0, len(data)
    while position < end:
        if position + 4 > end:
            raise ValueError("a frame ends inside a length prefix")
        (size,) = PART_LENGTH.unpack_from(data, position)
        position += 4
        if position + size > end:
            raise ValueError("a frame part runs past the end of the value")
        parts.append(data[position : position + size])
        position += size
    if len(parts) != count:
        raise ValueError(f"expected {count} framed parts, found {len(parts)}")
    return parts


# -- checkpoint records ------------------------------------------------------------------


def encode_record(type_: str, data: bytes) -> tuple[bytes, bytes]:
    """The stored (type, bytes) of a checkpoint record: the serde's own. Only a serde type
    that itself begins with the legacy prefix is wrapped in the legacy layer, so that
    reading it back (which strips that prefix) stays unambiguous."""
    if type_.startswith(DEFLATED_RECORD_PREFIX):
        return deflate_record(type_, data)
    return type_.encode(), data


def deflate_record(
    type_: str, data: bytes, max_ratio: int = DEFAULT_READ_LIMITS.ratio
) -> tuple[bytes, bytes]:
    """A record in the legacy layer, exactly as the old writer stored it: deflated when
    that is smaller and not more than ``max_ratio`` times smaller (a read would refuse it
    as a bomb); always for a type with the reserved prefix. Written now only by
    ``encode_record`` for such a type, and by tests that plant old records."""
    reserved = type_.startswith(DEFLATED_RECORD_PREFIX)
    if len(data) > RECORD_INFLATE_MAX or (len(data) < RECORD_DEFLATE_MIN and not reserved):
        if reserved:
            raise InvalidConfigError(f"serde type {type_[:40]!r}... uses a reserved prefix")
        return type_.encode(), data
    deflater = zlib.compressobj(
        9, zlib.DEFLATED, -15, 4, zlib.Z_DEFAULT_STRATEGY, RECORD_DICTIONARY
    )
    packed = deflater.compress(data) + deflater.flush() + PART_LENGTH.pack(zlib.crc32(data))
    if not reserved and (
        len(packed) + len(DEFLATED_RECORD_PREFIX) >= len(data) or len(packed) * max_ratio < len(data)
    ):
        return type_.encode(), data
    return (DEFLATED_RECORD_PREFIX + type_).encode(), packed


def inflate_record(
    type_: bytes, data: bytes, limits: ReadLimits = DEFAULT_READ_LIMITS
) -> tuple[str, bytes]:
    """The serde (type, bytes) of a stored checkpoint record, in either form; ValueError
    when garbled or when it inflates past what ``limits`` allow its stored size."""
    text = type_.decode()
    if not text.startswith(DEFLATED_RECORD_PREFIX):
        return text, data
    if len(data) < 4:
        raise ValueError("a deflated record is shorter than its checksum")
    try:
        limit = min(limits.allowance(len(data)), RECORD_INFLATE_MAX)
        inflater = zlib.decompressobj(-15, RECORD_DICTIONARY)
        plain = inflater.decompress(data[:-4], limit + 1)
        if len(plain) > limit:
            raise ValueError(
                f"a deflated record of {len(data)} bytes inflates past {limit} bytes (the "
                f"saver's read_limits=ReadLimits(ratio={limits.ratio}, floor={limits.floor}))"
            )
        if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
            raise ValueError("a deflated record is cut short or has trailing bytes")
    except zlib.error as exc:
        raise ValueError(f"a deflated record cannot be inflated ({exc})") from None
    if PART_LENGTH.unpack(data[-4:])[0] != zlib.crc32(plain):
        raise ValueError("a deflated record fails its checksum")
    return text[len(DEFLATED_RECORD_PREFIX) :], plain


def checkpoint_value(record: CheckpointRecord) -> bytes:
    """A checkpoint's B:c value: frame(head JSON with parent and channel versions, type,
    record bytes). Scripts read the head to find the checkpoint's blobs."""
    head = orjson.dumps({"p": record.parent_checkpoint_id, "v": record.channel_versions})
    return frame(head, *encode_record(record.type, record.data))


# -- blobs, writes and items -------------------------------------------------------------


def blob_value(blob: BlobRecord) -> bytes:
    """A blob's B:b value: frame(item refs, type, bytes)."""
    return frame(pack_refs(blob.item_refs), blob.type.encode(), blob.data)


def item_value(item: ItemRecord) -> bytes:
    """An item's B:t value: frame(item refs, type, bytes)."""
    return frame(pack_refs(item.item_refs), item.type.encode(), item.data)


def write_match_key(write: WriteRecord) -> bytes:
    """How a write's head JSON begins (``["<task id>",<idx>,``): what put_writes.lua
    matches a stored write of the same key on."""
    return orjson.dumps([write.task_id, write.idx])[:-1] + b","


def write_value(write: WriteRecord) -> bytes:
    """A write's B:w value: frame(item refs, head JSON [task id, idx, channel, task path,
    type], bytes)."""
    head = orjson.dumps([write.task_id, write.idx, write.channel, write.task_path, write.type])
    return frame(pack_refs(write.item_refs), head, write.data)


# -- reading what the scripts return -------------------------------------------------------


def describe(thread_id: str, member: bytes) -> str:
    """Where a stored value was read, for error messages."""
    try:
        checkpoint_ns, checkpoint_id = split_index_member(member)
        return f"thread {thread_id!r}, namespace {checkpoint_ns!r}, checkpoint {checkpoint_id!r}"
    except ValueError:
        return f"thread {thread_id!r}, checkpoint entry {member!r}"


def decode_record(
    thread_id: str,
    member: bytes,
    stored_record: bytes,
    metadata: bytes | None,
    run_id: bytes | None,
    limits: ReadLimits,
) -> CheckpointRecord:
    """The checkpoint record behind a B:i member and its B:c, B:m and B:r values."""
    try:
        checkpoint_ns, checkpoint_id = split_index_member(member)
        head, stored_type, stored_data = frame_parts(stored_record, 3)
        type_, data = inflate_record(stored_type, stored_data, limits)
        loaded = orjson.loads(head)
        versions = loaded["v"]
        parent = loaded["p"]
        if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
            raise ValueError("channel_versions is not an object of strings")
        if parent is not None and not isinstance(parent, str):
            raise ValueError("the parent id is not a string")
        return CheckpointRecord(
            thread_id=thread_id,
            checkpoint_ns=checkpoint_ns,
            checkpoint_id=checkpoint_id,
            parent_checkpoint_id=parent,
            type=type_,
            data=data,
            channel_versions=versions,
            metadata=metadata if metadata is not None else b"{}",
            run_id=None if run_id is None else text_of(run_id),
            stored_size=len(stored_data) if data is not stored_data else None,
        )
    except UNREADABLE as exc:
        raise CorruptDataError(
            f"{describe(thread_id, member)}: stored checkpoint record cannot be read ({exc})"
        ) from exc


def decode_assembled(thread_id: str, assembled: Sequence[Any], limits: ReadLimits) -> StoredCheckpoint:
    """A checkpoint as ``assemble`` (lua/lib/assemble.lua) returns it: member, record,
    metadata, run, blob fields, blob values, write values, then item values in the order
    the script collected their refs (first seen first: blobs in field order, then
    writes, then what those items name)."""
    member, stored_record, metadata, run_id, bfields, bvals, wvals, ivals = assembled
    record = decode_record(thread_id, member, stored_record, metadata, run_id, limits)
    stored = StoredCheckpoint(record)
    refs: list[bytes] = []
    seen: set[bytes] = set()

    def collect(packed_refs: bytes) -> tuple[bytes, ...]:
        split = split_refs(packed_refs)
        for ref in split:
            if ref not in seen:
                seen.add(ref)
                refs.append(ref)
        return split

    what = "blob"
    try:
        blobs: dict[bytes, tuple[tuple[bytes, ...], bytes, bytes]] = {}
        for field, value in zip(bfields, bvals, strict=True):
            if value is not None:
                packed_refs, type_, data = frame_parts(value, 3)
                blobs[field] = (collect(packed_refs), type_, data)
        ns_hex = namespace_hex_of(member)
        for channel, version in record.channel_versions.items():
            found_blob = blobs.get(blob_field(ns_hex, channel, version))
            if found_blob is not None:
                blob_refs, type_, data = found_blob
                stored.blobs[channel] = BlobRecord(channel, version, type_.decode(), data, blob_refs)
        what = "pending write"
        for value in wvals:
            if value is None:
                continue
            packed_refs, head, data = frame_parts(value, 3)
            task_id, idx, channel, task_path, type_ = orjson.loads(head)
            if not all(isinstance(x, str) for x in (task_id, channel, task_path, type_)):
                raise ValueError("the write's head is not four strings and an index")
            stored.writes.append(
                WriteRecord(task_id, int(idx), channel, type_, data, task_path, collect(packed_refs))
            )
        # Items of blobs and writes (segments, elements), then the elements segments name.
        level_one = len(refs)
        if len(ivals) < level_one:
            raise ValueError("fewer items came back than were named")
        for position in range(len(ivals)):
            if position == level_one and len(ivals) != len(refs):
                raise ValueError("the items that came back are not the ones named")
            ref, value = refs[position], ivals[position]
            what = f"item {ref.hex()}"
            if value is not None:
                packed_refs, type_, data = frame_parts(value, 3)
                item_refs = collect(packed_refs) if position < level_one else split_refs(packed_refs)
                stored.items[ref] = ItemRecord(ref, type_.decode(), data, item_refs)
    except UNREADABLE as exc:
        raise CorruptDataError(
            f"{describe(thread_id, member)}: stored {what} cannot be read ({exc})"
        ) from exc
    return stored


def filter_is_exact_in_lua(flt: dict[str, FilterScalar]) -> bool:
    """Whether Lua's double comparison agrees with Python's for every value."""
    for value in flt.values():
        if isinstance(value, (bool, str)):
            continue
        if isinstance(value, float) and (value != value or abs(value) == float("inf")):
            return False
        if abs(value) >= LUA_EXACT_INT:
            return False
    return True


def metadata_matches(metadata: bytes, flt: dict[str, FilterScalar], where: str) -> bool:
    """What list.lua checks, in Python (``core.rules.metadata_matches``), for filters
    Lua's doubles cannot compare exactly and for records the script could not parse."""
    return rules.metadata_matches(Codec.load_metadata(metadata, where), flt)
