"""Checkpoint ids in PostgreSQL keys: short for UUIDs, and in the same order as the text.

A checkpoint's key ends with its id, and listing walks those keys in order, so the
encoding must keep byte order equal to the id's text order (UTF-8, the "C" collation)
for *any* id, while a LangGraph id (a canonical lowercase UUID) takes 18 or 19 bytes, not 36.

It is an order-preserving prefix code that follows the UUID template: at a position
where a UUID has a hex digit, the digits have 4- or 5-bit codes; where it has a dash,
the dash has 2 bits; after its 36th character, the end has 1 bit. Any other byte at a
position is an escape code (ordered between the template's codes where the byte sorts)
followed by the byte, after which every further byte is written as it is and the end as
a zero byte (text never holds NUL). The code words at each position are dyadic intervals
in symbol order, so comparing encodings bit by bit compares the texts; the last byte is
padded with zero bits, which cannot reorder two encodings since neither is a prefix of
the other.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

UUID_LENGTH: Final = 36
DASH_POSITIONS: Final = frozenset((8, 13, 18, 23))

# (first byte, last byte, code, bits) in byte order; byte 0 stands for the end of the id.
# A range of more than one byte is an escape: its code is followed by the byte itself.
Table = tuple[tuple[int, int, int, int], ...]
HEX_TABLE: Final[Table] = (
    (0x00, 0x00, 0b000000, 6),
    (0x01, 0x2F, 0b000001, 6),
    (0x30, 0x30, 0b00001, 5),  # '0'
    *((0x31 + i, 0x31 + i, 1 + i, 4) for i in range(9)),  # '1'..'9': 0001..1001
    (0x3A, 0x60, 0b10100, 5),
    (0x61, 0x61, 0b10101, 5),  # 'a'
    *((0x62 + i, 0x62 + i, 0b1011 + i, 4) for i in range(4)),  # 'b'..'e': 1011..1110
    (0x66, 0x66, 0b11110, 5),  # 'f'
    (0x67, 0xFF, 0b11111, 5),
)
DASH_TABLE: Final[Table] = (
    (0x00, 0x00, 0b000, 3),
    (0x01, 0x2C, 0b001, 3),
    (0x2D, 0x2D, 0b01, 2),  # '-'
    (0x2E, 0xFF, 0b1, 1),
)
END_TABLE: Final[Table] = ((0x00, 0x00, 0b0, 1), (0x01, 0xFF, 0b1, 1))


def _table_for(position: int) -> Table:
    if position < UUID_LENGTH:
        return DASH_TABLE if position in DASH_POSITIONS else HEX_TABLE
    return END_TABLE


def _by_byte(table: Table) -> tuple[tuple[int, int, bool], ...]:
    """byte -> (code, bits, escaped) for one table."""
    rows = []
    for byte in range(256):
        for first, last, code, bits in table:
            if first <= byte <= last:
                rows.append((code, bits, first != last))
                break
    return tuple(rows)


def _by_peek(table: Table) -> tuple[tuple[int, int, bool], ...]:
    """For every value of the table's longest code length in bits: (byte, bits, escaped)
    of the code word it starts with; the byte is 0 for an escape."""
    longest = max(bits for *_, bits in table)
    rows = []
    for value in range(1 << longest):
        for first, last, code, bits in table:
            if value >> (longest - bits) == code:
                rows.append((first if first == last else 0, bits, first != last))
                break
    return tuple(rows)


# Per position of the template (the end table from position 36 on).
_TABLES: Final = tuple(_table_for(position) for position in range(UUID_LENGTH + 1))
_ENCODE: Final = tuple(_by_byte(table) for table in _TABLES)
_PEEK: Final = tuple(_by_peek(table) for table in _TABLES)
_PEEK_BITS: Final = tuple(max(bits for *_, bits in table) for table in _TABLES)


@lru_cache(maxsize=8192)
def encode_ordered_id(value: str) -> bytes:
    """The id as key bytes (see the module docstring). Text never holds NUL, so an id
    with one is refused."""
    data = value.encode("utf-8", "surrogatepass")
    if 0 in data:
        raise ValueError(f"an id cannot hold a NUL character: {value!r}")
    number = length = 0
    data += b"\x00"
    for position, byte in enumerate(data):
        code, bits, escape = _ENCODE[min(position, UUID_LENGTH)][byte]
        number, length = number << bits | code, length + bits
        if escape:
            # The byte itself, then every further byte as it is (the end as a zero byte).
            rest = data[position:]
            number = number << (8 * len(rest)) | int.from_bytes(rest, "big")
            length += 8 * len(rest)
            break
    padding = -length % 8
    return (number << padding).to_bytes((length + padding) // 8, "big")


@lru_cache(maxsize=8192)
def _decode(encoded: bytes) -> tuple[str, int]:
    total = len(encoded) * 8
    # One spare zero byte, so peeking past the last code word never shifts by less than 0.
    number = int.from_bytes(encoded, "big") << 8
    out = bytearray()
    at = position = 0
    while True:
        index = min(position, UUID_LENGTH)
        peek_bits = _PEEK_BITS[index]
        byte, bits, escape = _PEEK[index][
            (number >> (total + 8 - at - peek_bits)) & ((1 << peek_bits) - 1)
        ]
        at += bits
        if at > total:
            raise ValueError("not an encoded id")
        if escape:
            # The escaped byte, then raw bytes up to the zero byte that ends the id.
            while True:
                if at + 8 > total:
                    raise ValueError("not an encoded id")
                byte = (number >> (total + 8 - at - 8)) & 0xFF
                at += 8
                if byte == 0:
                    return out.decode("utf-8", "surrogatepass"), (at + 7) // 8
                out.append(byte)
        if byte == 0:
            return out.decode("utf-8", "surrogatepass"), (at + 7) // 8
        out.append(byte)
        position += 1


def decode_ordered_id(key: bytes, start: int = 0) -> tuple[str, int]:
    """The id encoded at ``start`` of ``key``, and the offset of the byte after it.

    Raises ValueError if the bytes there are not an encoded id."""
    text, used = _decode(bytes(key[start:]))
    return text, start + used
