"""Deflating stored values against preset dictionaries, and inflating them within a budget.

Split from ``core.codec``: element items (``zd1:``) and checkpoint skeletons (``zc1:``)
are deflated against the dictionaries of ``core.dictionaries`` when that saves 10%;
reading inflates them never past the read limits (``core.limits``), and keeps the
bodies of items every read of a long thread inflates again.
"""

from __future__ import annotations

import threading
import zlib

from .dictionaries import ITEM_DICTIONARY_V1
from .limits import DEFAULT_READ_LIMITS, ReadBudget

# Element items and checkpoint skeletons are stored deflated against a preset dictionary
# (core.dictionaries) when that saves 10%, never when encrypted: compressing before
# encrypting can leak through sizes.
COMPRESS_LEVEL = 6
COMPRESSED_ITEM = "zd1:"
COMPRESSED_CHECKPOINT = "zc1:"
INFLATED_MAX_BYTES = 32 * 1024 * 1024


def deflate(plain: bytes, dictionary: bytes, max_ratio: int = DEFAULT_READ_LIMITS.ratio) -> bytes | None:
    """``plain`` deflated against ``dictionary``, or None when that saves under 10%, or
    when it would inflate more than ``max_ratio`` times (a read would take it for a bomb)."""
    deflater = zlib.compressobj(
        COMPRESS_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY, dictionary
    )
    packed = deflater.compress(plain) + deflater.flush()
    if len(packed) * 10 > len(plain) * 9 or len(packed) * max_ratio < len(plain):
        return None
    return packed


def inflate(data: bytes, dictionary: bytes, budget: ReadBudget) -> bytes:
    """``data`` inflated, never past what ``budget`` still allows (charged to it)."""
    room = budget.room()
    inflater = zlib.decompressobj(zlib.MAX_WBITS, dictionary)
    body = inflater.decompress(data, room + 1)
    budget.used += len(body)
    if len(body) > room:
        budget.exceeded()
    if not inflater.eof or inflater.unused_data:
        raise zlib.error("compressed data is truncated or has trailing bytes")
    return body


class InflatedItems:
    """Decompressed item bodies, keyed by their compressed bytes; bounded by bytes.

    Every read of a thread decompresses the items of its whole message list again, so a
    long thread spends much of ``get_tuple`` in zlib. Keyed by the stored bytes
    themselves (not the ref), a damaged row misses the cache and still fails to read.
    """

    def __init__(self, max_bytes: int) -> None:
        self._bodies: dict[bytes, bytes] = {}
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def cached(self, data: bytes) -> bytes | None:
        """The body of ``data`` if it is cached (the caller charges it to its budget)."""
        return self._bodies.get(data) if type(data) is bytes else None

    def inflate(self, data: bytes, budget: ReadBudget) -> bytes:
        """The body of a deflated item, charged to ``budget`` whether cached or not."""
        if type(data) is not bytes:  # a driver's memoryview or bytearray is no dict key
            return inflate(data, ITEM_DICTIONARY_V1, budget)
        body = self._bodies.get(data)
        if body is not None:
            budget.take(len(body))
            return body
        body = inflate(data, ITEM_DICTIONARY_V1, budget)
        size = len(data) + len(body)
        if size * 8 > self._max_bytes:
            return body
        with self._lock:
            if data not in self._bodies:
                self._bodies[data] = body
                self._bytes += size
            while self._bytes > self._max_bytes:
                oldest = next(iter(self._bodies))
                self._bytes -= len(oldest) + len(self._bodies.pop(oldest))
        return body


INFLATED_ITEMS = InflatedItems(INFLATED_MAX_BYTES)
