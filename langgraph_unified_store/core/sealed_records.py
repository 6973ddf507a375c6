"""Sealing a put's records and opening a read's, each value bound to its place.

Split from ``core.codec``: ``Codec`` serializes values; with encryption, this mixin
(one of ``Codec``'s bases) seals every record afterwards and opens it before decoding,
with the place each value must not be moved away from, and reads release 0.1's
unencrypted list layouts when ``read_legacy`` asks for it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import ormsgpack

from ..errors import CorruptDataError
from .encryption import Sealer, SealError
from .msgpack_split import skip_object
from .records import (
    ITEM_DICT_TYPE,
    ITEM_LIST_TYPE,
    SEGMENT_TYPE,
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    StoredCheckpoint,
    WriteRecord,
)

OpenedKey = tuple[str, bytes, tuple[bytes, ...], str, bytes]


class OpenedItems:
    """Decrypted items of one codec, bounded by bytes (oldest dropped first)."""

    def __init__(self, max_bytes: int) -> None:
        self._opened: dict[OpenedKey, tuple[str, bytes]] = {}
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, key: OpenedKey) -> tuple[str, bytes] | None:
        return self._opened.get(key)

    def put(self, key: OpenedKey, value: tuple[str, bytes]) -> None:
        size = len(key[4]) + len(value[1]) + 128
        if size * 8 > self._max_bytes:
            return
        with self._lock:
            if key not in self._opened:
                self._opened[key] = value
                self._bytes += size
            while self._bytes > self._max_bytes:
                oldest = next(iter(self._opened))
                dropped = self._opened.pop(oldest)
                self._bytes -= len(oldest[4]) + len(dropped[1]) + 128


class RecordSealing:
    """The encryption half of ``Codec``: every stored value sealed with its place."""

    _sealer: Sealer | None
    _opened_items: OpenedItems

    # A value's place is what it must not be moved away from:
    # - a checkpoint skeleton: (thread, namespace, checkpoint id, parent id, channel
    #   versions), so the plaintext versions and parent that name its blobs are bound too;
    # - a blob: (thread, namespace, channel, version, item refs), shared by every
    #   checkpoint that names that version;
    # - a write: (thread, namespace, checkpoint, task, idx, channel, task path, item refs);
    # - an item: (thread, ref, item refs); items are content-addressed per thread and shared
    #   across namespaces and channels, and its ref is a keyed hash of its plaintext.
    # List layouts (item lists, item dicts, segments) are sealed like any other value.

    def seal_checkpoint(
        self, record: CheckpointRecord, blobs: Sequence[BlobRecord], items: Sequence[ItemRecord]
    ) -> tuple[CheckpointRecord, list[BlobRecord], list[ItemRecord]]:
        """The records of a put, encrypted (only called when ``sealed``)."""
        sealer = self._sealer
        assert sealer is not None
        thread_id, ns = record.thread_id, record.checkpoint_ns
        type_, data = sealer.seal(record.type, record.data, _checkpoint_place(record))
        sealed_blobs = []
        for blob in blobs:
            blob_type, blob_data = sealer.seal(
                blob.type, blob.data, _blob_place(thread_id, ns, blob)
            )
            sealed_blobs.append(replace(blob, type=blob_type, data=blob_data))
        return (
            replace(record, type=type_, data=data),
            sealed_blobs,
            self._seal_items(thread_id, items),
        )

    def seal_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[WriteRecord],
        items: Sequence[ItemRecord],
    ) -> tuple[list[WriteRecord], list[ItemRecord]]:
        """The records of a put_writes, encrypted (only called when ``sealed``)."""
        sealer = self._sealer
        assert sealer is not None
        sealed = []
        for write in writes:
            place = _write_place(thread_id, checkpoint_ns, checkpoint_id, write)
            type_, data = sealer.seal(write.type, write.data, place)
            sealed.append(replace(write, type=type_, data=data))
        return sealed, self._seal_items(thread_id, items)

    def _seal_items(self, thread_id: str, items: Sequence[ItemRecord]) -> list[ItemRecord]:
        sealer = self._sealer
        assert sealer is not None
        sealed = []
        for item in items:
            type_, data = sealer.seal(item.type, item.data, _item_place(thread_id, item))
            sealed.append(replace(item, type=type_, data=data))
        return sealed

    def open_checkpoint(self, stored: StoredCheckpoint) -> StoredCheckpoint:
        """A stored checkpoint with every value decrypted, each checked against its place;
        CorruptDataError naming thread, namespace, checkpoint and channel otherwise."""
        record = stored.record
        thread_id, ns = record.thread_id, record.checkpoint_ns
        where = (
            f"thread {thread_id!r}, namespace {ns!r}, checkpoint {record.checkpoint_id!r}"
        )
        type_, data = self._open(record.type, record.data, _checkpoint_place(record), where, None)
        blobs = {}
        for channel, blob in stored.blobs.items():
            blob_type, blob_data = self._open(
                blob.type, blob.data, _blob_place(thread_id, ns, blob),
                f"{where}, channel {channel!r}", blob.item_refs,
            )
            blobs[channel] = BlobRecord(
                blob.channel, blob.version, blob_type, blob_data, blob.item_refs, blob.base_version
            )
        writes = []
        for write in stored.writes:
            place = _write_place(thread_id, ns, record.checkpoint_id, write)
            write_type, write_data = self._open(
                write.type, write.data, place,
                f"{where}, write {write.channel!r} by task {write.task_id!r}", write.item_refs,
            )
            writes.append(replace(write, type=write_type, data=write_data))
        items = {}
        opened = self._opened_items
        for ref, item in stored.items.items():
            # Items are shared by many checkpoints of a thread and decrypted on every read:
            # keep what opened, keyed by everything its place and ciphertext are, so a
            # ciphertext moved to another place still has to open there.
            key = (thread_id, bytes(ref), item.item_refs, item.type, bytes(item.data))
            hit = opened.get(key)
            if hit is None:
                try:
                    hit = self._open(
                        item.type, item.data, _item_place(thread_id, item), "", item.item_refs
                    )
                except CorruptDataError as exc:
                    raise CorruptDataError(
                        f"{where}, channel {_user_of(stored, ref)!r}: stored item {ref.hex()} {exc}"
                    ) from None
                opened.put(key, hit)
            items[ref] = ItemRecord(item.ref, hit[0], hit[1], item.item_refs)
        return StoredCheckpoint(
            CheckpointRecord(
                record.thread_id, ns, record.checkpoint_id, record.parent_checkpoint_id,
                type_, data, record.channel_versions, record.metadata, record.run_id,
            ),
            blobs, writes, items,
        )

    def _open(
        self,
        type_: str,
        data: bytes,
        place: tuple[Any, ...],
        where: str,
        refs: Sequence[bytes] | None,
    ) -> tuple[str, bytes]:
        sealer = self._sealer
        assert sealer is not None
        prefix = f"{where}: " if where else ""
        if sealer.read_legacy and type_ in _LEGACY_LAYOUTS:
            # Release 0.1 stored list layouts unencrypted: accept their structure only, with
            # every value in it still encrypted.
            try:
                return type_, _open_legacy_layout(sealer, type_, bytes(data))
            except Exception as exc:  # any parse failure of planted bytes: the library's error
                raise CorruptDataError(f"{prefix}stored value cannot be read: {exc}") from None
        try:
            return sealer.open(type_, data, place)
        except SealError as exc:
            hint = ""
            if type_ in _LEGACY_LAYOUTS:
                hint = (
                    " (release 0.1 stored list layouts unencrypted: to read such data, pass "
                    "serde=EncryptedSerializer(AesGcmCipher(key, read_legacy=True)))"
                )
            raise CorruptDataError(
                f"{prefix}stored value cannot be decrypted: {exc}{hint}"
            ) from None


_LEGACY_LAYOUTS = frozenset({ITEM_LIST_TYPE, ITEM_DICT_TYPE, SEGMENT_TYPE})


def _checkpoint_place(record: CheckpointRecord) -> tuple[Any, ...]:
    return (
        "checkpoint",
        record.thread_id,
        record.checkpoint_ns,
        record.checkpoint_id,
        record.parent_checkpoint_id or "",
        sorted(record.channel_versions.items()),
    )


def _blob_place(thread_id: str, checkpoint_ns: str, blob: BlobRecord) -> tuple[Any, ...]:
    return ("blob", thread_id, checkpoint_ns, blob.channel, blob.version, b"".join(blob.item_refs))


def _write_place(
    thread_id: str, checkpoint_ns: str, checkpoint_id: str, write: WriteRecord
) -> tuple[Any, ...]:
    return (
        "write", thread_id, checkpoint_ns, checkpoint_id, write.task_id, write.idx,
        write.channel, write.task_path, b"".join(write.item_refs),
    )


def _item_place(thread_id: str, item: ItemRecord) -> tuple[Any, ...]:
    return ("item", thread_id, bytes(item.ref), b"".join(item.item_refs))


def _user_of(stored: StoredCheckpoint, ref: bytes) -> str:
    """The channel whose value references an item (for an error message)."""
    for channel, blob in stored.blobs.items():
        if ref in blob.item_refs:
            return channel
    for write in stored.writes:
        if ref in write.item_refs:
            return write.channel
    for item in stored.items.values():
        if ref in item.item_refs:
            return _user_of(stored, item.ref)
    return "?"


def _only_placeholders(layout: bytes) -> None:
    """A legacy list layout may only hold item placeholders: its elements were items,
    each encrypted; an inline element would be plaintext nobody encrypted."""
    if any(entry is not None for entry in ormsgpack.unpackb(layout)):
        raise SealError("an unencrypted element was planted in an encrypted list")


def _open_legacy_layout(sealer: Sealer, type_: str, data: bytes) -> bytes:
    """A release-0.1 list layout, checked (and for an item dict, its values decrypted)."""
    if type_ == SEGMENT_TYPE:
        _only_placeholders(data)
        return data
    if type_ == ITEM_LIST_TYPE:
        _only_placeholders(data[skip_object(data, 0) :])
        return data
    entries = []
    for key, sub_type, sub_data, ref_count in ormsgpack.unpackb(
        data, option=ormsgpack.OPT_NON_STR_KEYS
    ):
        if sub_type == ITEM_LIST_TYPE:
            _only_placeholders(sub_data[skip_object(sub_data, 0) :])
        elif "+" in sub_type:
            sub_type, sub_data = sealer.open_legacy(sub_type, sub_data)
        else:
            raise SealError(f"an unencrypted value ({sub_type[:40]!r}) was planted in an encrypted dict")
        entries.append((key, sub_type, sub_data, ref_count))
    return ormsgpack.packb(entries, option=ormsgpack.OPT_NON_STR_KEYS)
