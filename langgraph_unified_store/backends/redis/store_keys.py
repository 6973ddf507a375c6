"""The memory store's and the node cache's keys, fields and stored values in Redis.

Every store key carries the hash tag ``{memory}`` and every cache key ``{cache}``, so
each lives in one cluster slot and a batch is one atomic script:

=============================  =====  ========================================================
``<prefix>:{memory}:items``    hash   field -> item frame (``lua/lib/store_items.lua``)
``<prefix>:{memory}:names``    zset   every field, score 0: a namespace prefix is a lexical range
``<prefix>:{memory}:expiry``   zset   fields of items with an expiry, scored by it (epoch s)
``<prefix>:{memory}:vectors``  hash   field -> packed vectors (``pack_vectors``)
``<prefix>:{memory}:recent``   zset   every field, scored by minus its updated_at: rank order
                                      is the search order (newest, then field bytes)
``<prefix>:{cache}:entries``   hash   field -> cache frame (``cache_frame``)
``<prefix>:{cache}:names``     zset   every field, score 0: a namespace is a lexical range
``<prefix>:{cache}:expiry``    zset   fields of entries with an expiry, scored by it
=============================  =====  ========================================================

A field is ``<namespace text> NUL <key>`` in UTF-8. Namespace texts and keys hold no NUL
(``core.validate``), so fields sort bytewise as (namespace text, key) do in Python (UTF-8
byte order is code point order) and one namespace's fields are one range: [ns NUL, ns \\x01).

The recent index is newer than the others: a store an earlier release wrote has none
until setup builds it (``lua/store_reindex.lua``); meanwhile, and whenever it does not
hold as many fields as the names index, searches walk the names index instead.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Final

import orjson

from ...core.store_backend import CacheEntry, StoredItem
from ...core.store_rules import NumberRange, namespace_of, namespace_text, prefix_range
from ...errors import CorruptDataError
from .keys import text_of, utf8

STORE_TAG: Final = "{memory}"
CACHE_TAG: Final = "{cache}"
FIELD_SEPARATOR: Final = b"\x00"
ITEM_FORMAT: Final = b"1"
"""The first line of an item frame; the Lua side checks the same."""
CACHE_FORMAT: Final = b"1"
VECTORS_FORMAT: Final = 1
_VECTOR_HEAD: Final = struct.Struct("<II")
"""Per indexed path: the path's UTF-8 length and the vector's size."""


class StoreKey(StrEnum):
    ITEMS = "items"
    NAMES = "names"
    EXPIRY = "expiry"
    VECTORS = "vectors"
    RECENT = "recent"


class CacheKey(StrEnum):
    ENTRIES = "entries"
    NAMES = "names"
    EXPIRY = "expiry"


def store_keys(prefix: str) -> tuple[str, str, str, str, str]:
    """KEYS[1..5] of every store script: items, names, expiry, vectors, recent."""
    base = f"{prefix}:{STORE_TAG}:"
    return (
        base + StoreKey.ITEMS,
        base + StoreKey.NAMES,
        base + StoreKey.EXPIRY,
        base + StoreKey.VECTORS,
        base + StoreKey.RECENT,
    )


def cache_keys(prefix: str) -> tuple[str, str, str]:
    """KEYS[1..3] of every cache script: entries, names, expiry."""
    base = f"{prefix}:{CACHE_TAG}:"
    return (base + CacheKey.ENTRIES, base + CacheKey.NAMES, base + CacheKey.EXPIRY)


def item_field(namespace: Sequence[str], key: str) -> bytes:
    return utf8(namespace_text(namespace)) + FIELD_SEPARATOR + utf8(key)


def cache_field(namespace: str, key: str) -> bytes:
    return utf8(namespace) + FIELD_SEPARATOR + utf8(key)


def split_field(field: bytes) -> tuple[str, str]:
    """(namespace text, key) of a field."""
    text, sep, key = field.partition(FIELD_SEPARATOR)
    if not sep:
        raise CorruptDataError(f"a store field without a separator: {field[:60]!r}")
    return text_of(text), text_of(key)


def prefix_bounds(prefix: Sequence[str]) -> list[bytes]:
    """ZRANGEBYLEX (min, max) pairs of the names index covering every namespace under
    ``prefix``, in the index's order: the namespace itself, then those strictly under."""
    found = prefix_range(prefix)
    if found is None:
        return [b"-", b"+"]
    text, low, high = (utf8(t) for t in found)
    return [b"[" + text + b"\x00", b"(" + text + b"\x01", b"[" + low, b"(" + high]


def scope_args(prefix: Sequence[str]) -> list[bytes]:
    """store_search's (scoped, prefix text): the whole store for an empty prefix."""
    return [b"1", utf8(namespace_text(prefix))] if prefix else [b"0", b""]


def hint_args(hints: Sequence[NumberRange]) -> list[bytes]:
    """store_search's range hints: their count, then per hint the path's length, its
    labels, and the bounds ('' for unbounded)."""
    out = [str(len(hints)).encode("ascii")]
    for hint in hints:
        out.append(str(len(hint.path)).encode("ascii"))
        out.extend(utf8(label) for label in hint.path)
        out += [number_text(hint.low), number_text(hint.high)]
    return out


def number_text(value: float | None) -> bytes:
    """A time or a ttl as the frames and indexes hold it (exact: repr of the float)."""
    return b"" if value is None else repr(float(value)).encode("ascii")


def _number(text: bytes) -> float | None:
    return None if text == b"" else float(text)


def decode_item(field: bytes, frame: bytes, vectors: bytes | None) -> StoredItem:
    """A StoredItem from what the scripts return (see ``lua/lib/store_items.lua``)."""
    parts = frame.split(b"\n", 5)
    if len(parts) != 6 or parts[0] != ITEM_FORMAT:
        raise CorruptDataError(f"a stored store item has an unknown format: {frame[:40]!r}")
    ns_text, key = split_field(field)
    try:
        created, updated = float(parts[1]), float(parts[2])
        ttl, expires = _number(parts[3]), _number(parts[4])
    except ValueError:
        raise CorruptDataError(f"a stored store item has unreadable times: {frame[:80]!r}") from None
    return StoredItem(
        namespace=namespace_of(ns_text),
        key=key,
        value=parts[5],
        created_at=created,
        updated_at=updated,
        ttl=ttl,
        expires_at=expires,
        vectors=None if vectors is None else unpack_vectors(vectors),
    )


def pack_vectors(vectors: Mapping[str, Sequence[float]]) -> bytes:
    """A format byte, then per path: lengths, the path's UTF-8, little-endian float64s."""
    out = [bytes([VECTORS_FORMAT])]
    for path, vector in vectors.items():
        name = utf8(path)
        out.append(_VECTOR_HEAD.pack(len(name), len(vector)))
        out.append(name)
        out.append(struct.pack(f"<{len(vector)}d", *vector))
    return b"".join(out)


def unpack_vectors(data: bytes) -> dict[str, list[float]]:
    if not data or data[0] != VECTORS_FORMAT:
        raise CorruptDataError("stored store vectors have an unknown format")
    vectors: dict[str, list[float]] = {}
    position = 1
    try:
        while position < len(data):
            name_size, size = _VECTOR_HEAD.unpack_from(data, position)
            position += _VECTOR_HEAD.size
            path = text_of(data[position : position + name_size])
            position += name_size
            vectors[path] = list(struct.unpack_from(f"<{size}d", data, position))
            position += 8 * size
    except (struct.error, UnicodeDecodeError):
        raise CorruptDataError("stored store vectors are truncated or garbled") from None
    return vectors


def cache_frame(entry: CacheEntry) -> bytes:
    """``1``, a JSON line [type, expires_at], then the serde's bytes."""
    return CACHE_FORMAT + b"\n" + orjson.dumps([entry.type, entry.expires_at]) + b"\n" + entry.data


def decode_cache_entry(namespace: str, key: str, frame: bytes) -> CacheEntry:
    parts = frame.split(b"\n", 2)
    try:
        if len(parts) != 3 or parts[0] != CACHE_FORMAT:
            raise ValueError(frame[:40])
        kind, expires = orjson.loads(parts[1])
        if not isinstance(kind, str) or not (expires is None or isinstance(expires, (int, float))):
            raise ValueError(parts[1][:80])
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise CorruptDataError(f"a stored cache entry has an unknown format: {exc}") from None
    return CacheEntry(namespace, key, kind, parts[2], None if expires is None else float(expires))
