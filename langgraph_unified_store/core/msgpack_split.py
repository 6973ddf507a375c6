"""Cutting a packed msgpack array into its elements, and joining elements back.

A message list is packed in one C call (as LangGraph's own savers do), then cut at
element boundaries so each message can be stored once as an item. The bytes of an
element are exactly what packing it alone would give (msgpack has no context), so
the cut costs a header read per element rather than a second serialization.
"""

from __future__ import annotations

import struct

_FIXED_SIZES: dict[int, int] = {
    0xC0: 1, 0xC2: 1, 0xC3: 1,  # nil, false, true
    0xCA: 5, 0xCB: 9,  # float32, float64
    0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9,  # uint8..64
    0xD0: 2, 0xD1: 3, 0xD2: 5, 0xD3: 9,  # int8..64
    0xD4: 3, 0xD5: 4, 0xD6: 6, 0xD7: 10, 0xD8: 18,  # fixext 1..16
}
# Formats whose header carries a byte length: (size of the length field, header size).
_LENGTH_PREFIXED: dict[int, tuple[str, int]] = {
    0xC4: (">B", 2), 0xC5: (">H", 3), 0xC6: (">I", 5),  # bin
    0xD9: (">B", 2), 0xDA: (">H", 3), 0xDB: (">I", 5),  # str
    0xC7: (">B", 3), 0xC8: (">H", 4), 0xC9: (">I", 6),  # ext (one type byte after the length)
}
_CONTAINERS: dict[int, tuple[str, int, int]] = {
    0xDC: (">H", 3, 1), 0xDD: (">I", 5, 1),  # array16/32: count, header, items per entry
    0xDE: (">H", 3, 2), 0xDF: (">I", 5, 2),  # map16/32
}


def skip_object(data: bytes, pos: int) -> int:
    """The offset just past the msgpack object starting at ``pos``."""
    pending = 1
    while pending:
        pending -= 1
        byte = data[pos]
        if byte <= 0x7F or byte >= 0xE0:  # positive / negative fixint
            pos += 1
        elif byte <= 0x8F:  # fixmap
            pending += 2 * (byte & 0x0F)
            pos += 1
        elif byte <= 0x9F:  # fixarray
            pending += byte & 0x0F
            pos += 1
        elif byte <= 0xBF:  # fixstr
            pos += 1 + (byte & 0x1F)
        elif byte in _FIXED_SIZES:
            pos += _FIXED_SIZES[byte]
        elif byte in _LENGTH_PREFIXED:
            fmt, header = _LENGTH_PREFIXED[byte]
            pos += header + struct.unpack_from(fmt, data, pos + 1)[0]
        elif byte in _CONTAINERS:
            fmt, header, per_entry = _CONTAINERS[byte]
            pending += per_entry * struct.unpack_from(fmt, data, pos + 1)[0]
            pos += header
        else:
            raise ValueError(f"invalid msgpack byte 0x{byte:02x} at offset {pos}")
    return pos


def array_header_size(data: bytes) -> int:
    """Bytes taken by the header of the packed msgpack array ``data``."""
    byte = data[0]
    if 0x90 <= byte <= 0x9F:
        return 1
    if byte == 0xDC:
        return 3
    if byte == 0xDD:
        return 5
    raise ValueError("not a msgpack array")


def split_concatenated(data: bytes, pos: int = 0) -> list[bytes]:
    """Packed objects laid end to end, from ``pos`` to the end of ``data``."""
    elements = []
    end_of_data = len(data)
    while pos < end_of_data:
        end = skip_object(data, pos)
        elements.append(data[pos:end])
        pos = end
    if pos != end_of_data:
        raise ValueError("a msgpack object runs past the end of the data")
    return elements


def join_array(elements: list[bytes]) -> bytes:
    """A packed msgpack array of already packed elements."""
    count = len(elements)
    if count <= 0x0F:
        header = bytes([0x90 | count])
    elif count <= 0xFFFF:
        header = b"\xdc" + struct.pack(">H", count)
    else:
        header = b"\xdd" + struct.pack(">I", count)
    return header + b"".join(elements)


def nesting_depth(data: bytes, limit: int) -> int:
    """How deep arrays and maps nest in the packed object at the start of ``data``
    (extension payloads are not entered), counting no further than ``limit + 1``.

    For bytes that are not valid msgpack, the depth reached before the first bad
    byte: as deep as a decoder would recurse before failing.
    """
    remaining = [1]  # entries left in each open container, outermost first
    deepest = 0
    pos = 0
    try:
        while remaining:
            if not remaining[-1]:
                remaining.pop()
                continue
            remaining[-1] -= 1
            byte = data[pos]
            if 0x80 <= byte <= 0x9F:  # fixmap, fixarray
                count = (byte & 0x0F) * (2 if byte <= 0x8F else 1)
                pos += 1
            elif byte in _CONTAINERS:
                fmt, header, per_entry = _CONTAINERS[byte]
                count = per_entry * struct.unpack_from(fmt, data, pos + 1)[0]
                pos += header
            else:
                pos = skip_object(data, pos)
                continue
            if len(remaining) > deepest:
                deepest = len(remaining)
                if deepest > limit:
                    return deepest
            if count:
                remaining.append(count)
    except (IndexError, ValueError, struct.error):
        pass
    return deepest
