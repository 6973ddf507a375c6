"""Storage rules, each written once as a pure function.

Memory and SQLite call these directly. PostgreSQL (SQL) and Redis (Lua) keep server-side
versions of some of them for speed; the backend contract suite (tests/contract) holds
every backend to the rule stated here.
"""

from __future__ import annotations

from collections.abc import Iterable

from .records import ITEM_REF_SIZE


def pack_refs(refs: Iterable[bytes]) -> bytes:
    """Item references as stored: concatenated, ``ITEM_REF_SIZE`` bytes each, in order.

    No references pack to ``b""``; a backend that stores NULL for none says so itself.
    """
    return b"".join(refs)


def split_refs(packed: bytes | None) -> tuple[bytes, ...]:
    """The item references packed by ``pack_refs``; ``None`` or ``b""`` are none.

    A length that is not a whole number of references is damage, never truncated away:
    ``ValueError`` (the backend names where it read it).
    """
    if not packed:
        return ()
    if len(packed) % ITEM_REF_SIZE:
        raise ValueError(
            f"item references are {len(packed)} bytes, not a whole number of "
            f"{ITEM_REF_SIZE}-byte references"
        )
    packed = bytes(packed)
    return tuple(packed[i : i + ITEM_REF_SIZE] for i in range(0, len(packed), ITEM_REF_SIZE))
