"""How far stored bytes may expand when they are read back.

Deflated items and skeletons, and lists assembled from shared segments and items,
decode to more bytes than were stored. A planted value can make that ratio
unbounded (a 254 KiB deflate bomb of 256 MiB; a few KiB of references naming one
segment thousands of times). Every read of one checkpoint therefore carries a
``ReadBudget``: what it may decode grows with what it fetched, counting each stored
value, segment and item once however often it is named, so repeating a reference
buys an attacker nothing.

A saver only writes data that it can read back under its own limits (see
``core.codec`` and ``core.compression``): a value that compresses better than ``ratio`` is stored as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CorruptDataError, InvalidConfigError

MIB = 1024 * 1024
# Bytes charged per list element on top of its own bytes: what holding it costs.
ELEMENT_COST = 32


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Limits on what reading one checkpoint may decode (pass as ``read_limits=``).

    - ``ratio``: decoded bytes per stored byte fetched by the read (inflated items and
      skeletons, list elements assembled from items and segments);
    - ``floor``: what any read may decode whatever it fetched (small stored values);
    - ``max_value_bytes``: what one value may decode to, however much was stored.

    Reading past them raises ``CorruptDataError`` naming the limit to raise.
    """

    ratio: int = 64
    floor: int = 16 * MIB
    max_value_bytes: int = 1024 * MIB

    def __post_init__(self) -> None:
        for name in ("ratio", "floor", "max_value_bytes"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise InvalidConfigError(
                    f"ReadLimits: {name} must be a positive integer, not {value!r}"
                )
        if self.floor > self.max_value_bytes:
            raise InvalidConfigError(
                f"ReadLimits: floor ({self.floor}) exceeds max_value_bytes ({self.max_value_bytes})"
            )

    def allowance(self, stored: int) -> int:
        """What ``stored`` bytes may decode to on their own."""
        return min(max(self.ratio * stored, self.floor), self.max_value_bytes)


DEFAULT_READ_LIMITS = ReadLimits()


def check_read_limits(value: object) -> ReadLimits:
    """The saver's ``read_limits`` argument, or InvalidConfigError saying what it must be."""
    if value is None:
        return DEFAULT_READ_LIMITS
    if not isinstance(value, ReadLimits):
        raise InvalidConfigError(
            f"read_limits must be a ReadLimits (e.g. ReadLimits(ratio=256)), not {type(value).__name__}"
        )
    return value


class ReadBudget:
    """What one read (one checkpoint: skeleton, values, writes) has fetched and decoded.

    ``stored`` grows by every stored value, and by every segment and item the first
    time it is used; ``used`` by every byte decoded beyond what is stored verbatim.
    """

    __slots__ = ("limits", "seen", "stored", "used", "value_start")

    def __init__(self, limits: ReadLimits = DEFAULT_READ_LIMITS) -> None:
        self.limits = limits
        self.stored = 0
        self.used = 0
        self.value_start = 0
        self.seen: set[bytes] = set()
        """Stored segments and items this read has counted in ``stored``."""

    def first_use(self, ref: bytes) -> bool:
        """True the first time this read uses the stored item ``ref``."""
        if ref in self.seen:
            return False
        self.seen.add(ref)
        return True

    def limit(self) -> int:
        """The value of ``used`` this read may not pass."""
        limits = self.limits
        return min(
            max(limits.ratio * self.stored, limits.floor),
            self.value_start + limits.max_value_bytes,
        )

    def room(self) -> int:
        """Bytes that may still be decoded (for an inflater's output limit)."""
        return max(self.limit() - self.used, 0)

    def take(self, size: int) -> None:
        self.used += size
        if self.used > self.limit():
            self.exceeded()

    def exceeded(self) -> None:
        limits = self.limits
        if self.used - self.value_start > limits.max_value_bytes:
            reason = f"more than max_value_bytes={limits.max_value_bytes} for one value"
        else:
            reason = (
                f"more than ratio={limits.ratio} x the {self.stored} bytes read "
                f"(floor={limits.floor})"
            )
        raise CorruptDataError(
            f"stored data decodes to {reason}; if it is genuine, pass a larger "
            "read_limits=ReadLimits(...) to the saver"
        )
