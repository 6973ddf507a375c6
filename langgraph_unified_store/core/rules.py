"""Storage rules, each written once as a pure function.

Memory and SQLite call these directly. PostgreSQL (SQL) and Redis (Lua) keep server-side
versions of some of them for speed; the backend contract suite (tests/contract) holds
every backend to the rule stated here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .records import ITEM_REF_SIZE, ItemRecord, WriteRecord


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


# -- garbage collection ----------------------------------------------------------------------

BlobKey = tuple[str, str, str]
"""A stored blob's key within its thread: (checkpoint_ns, channel, version)."""


@dataclass(frozen=True, slots=True)
class Reachable:
    """What a collection keeps of a thread: these blobs and these items; the rest goes."""

    blobs: frozenset[BlobKey]
    items: frozenset[bytes]


def reachable(
    survivors: Iterable[tuple[str, Mapping[str, str] | None]],
    blob_refs: Mapping[BlobKey, Sequence[bytes]],
    write_refs: Iterable[Sequence[bytes]],
    item_refs: Mapping[bytes, Sequence[bytes]],
) -> Reachable:
    """Which blobs and items of a thread survive a collection.

    ``survivors`` are the (checkpoint_ns, channel_versions) of the checkpoints that stay,
    ``blob_refs`` every stored blob with the items it references, ``write_refs`` the item
    references of the writes that stay (those of surviving checkpoints: a deleted
    checkpoint's writes go with it), ``item_refs`` every stored item with the items it
    references (a segment names its elements).

    The rule: a blob survives when a surviving checkpoint names it in its channel
    versions. An item survives when a surviving blob or write references it, or when
    such an item (a segment) references it: two levels, as reads fetch them, no deeper.
    A survivor whose channel versions cannot be read (``None``) might name any blob, so
    then every blob survives: nothing that survives may depend on something removed.
    """
    live_blobs: set[BlobKey] = set()
    unsure = False
    for checkpoint_ns, versions in survivors:
        if versions is None:
            unsure = True
            continue
        live_blobs.update((checkpoint_ns, channel, v) for channel, v in versions.items())
    kept = set(blob_refs) if unsure else live_blobs & blob_refs.keys()
    named: set[bytes] = {ref for key in kept for ref in blob_refs[key]}
    for refs in write_refs:
        named.update(refs)
    inner = {ref for outer in named for ref in item_refs.get(outer, ())}
    return Reachable(frozenset(kept), frozenset((named | inner) & item_refs.keys()))


def retained(keep: Collection[tuple[str, str]]) -> Callable[[str, str], bool]:
    """Whether ``retain(keep)`` keeps checkpoint (checkpoint_ns, checkpoint_id): it is in
    ``keep``, or newer than every kept checkpoint of its namespace, or of a namespace with
    none kept (so a put that landed between choosing the heads and collecting is never
    collected as if it were old)."""
    kept = set(keep)
    newest: dict[str, str] = {}
    for ns, checkpoint_id in kept:
        if ns not in newest or checkpoint_id > newest[ns]:
            newest[ns] = checkpoint_id

    def keeps(checkpoint_ns: str, checkpoint_id: str) -> bool:
        if (checkpoint_ns, checkpoint_id) in kept:
            return True
        newest_here = newest.get(checkpoint_ns)
        return newest_here is None or checkpoint_id > newest_here

    return keeps


# -- reading items ---------------------------------------------------------------------------


def fetch_items(
    refs: Iterable[bytes], lookup: Callable[[Sequence[bytes]], Iterable[ItemRecord]]
) -> dict[bytes, ItemRecord]:
    """The items a checkpoint's blobs and writes reference (``refs``) and the items
    *those* reference (a segment's elements): two levels, no deeper.

    ``lookup`` fetches a batch of refs and returns the items it found (a missing one is
    simply absent: the core names it as damage). Each level is one call, each ref is
    asked for once, and an item named at both levels is returned once.
    """
    found: dict[bytes, ItemRecord] = {}
    wanted = list(dict.fromkeys(refs))
    for _level in range(2):
        if not wanted:
            break
        inner: list[bytes] = []
        for item in lookup(wanted):
            if item.ref not in found:
                found[item.ref] = item
                inner.extend(item.item_refs)
        wanted = [ref for ref in dict.fromkeys(inner) if ref not in found]
    return found


# -- writes ----------------------------------------------------------------------------------


def dedupe_writes(writes: Iterable[WriteRecord], *, replace: bool) -> list[WriteRecord]:
    """The writes of one ``put_writes`` call, one per (task_id, idx).

    The rule (as for writes already stored): with ``replace`` the last write of a key
    wins, otherwise the first; each key keeps the place of its first write. The core
    sets ``replace`` for a call whose writes are all special (negative idx: errors,
    interrupts, ...), which replace each other; regular writes are kept once stored.
    """
    by_key: dict[tuple[str, int], WriteRecord] = {}
    for write in writes:
        key = (write.task_id, write.idx)
        if replace or key not in by_key:
            by_key[key] = write
    return list(by_key.values())


# -- metadata filters ------------------------------------------------------------------------


def json_equal(actual: Any, expected: Any) -> bool:
    """Equality of two JSON values by JSON type: ``true`` is not ``1``, ``"1"`` is not
    ``1``, ``1`` is ``1.0`` (both numbers), ``null`` is only ``null``; arrays equal
    element by element in order, objects key by key (no partial match)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and actual == expected
    if isinstance(expected, str):
        return isinstance(actual, str) and actual == expected
    if expected is None:
        return actual is None
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(actual, (list, tuple))
            and len(actual) == len(expected)
            and all(json_equal(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, Mapping):
        return (
            isinstance(actual, Mapping)
            and actual.keys() == expected.keys()
            and all(json_equal(actual[k], v) for k, v in expected.items())
        )
    return False


def metadata_value_matches(metadata: Mapping[str, Any], key: str, expected: Any) -> bool:
    """Whether one filter entry matches checkpoint metadata: ``None`` matches a missing
    key or ``null`` (as LangGraph's savers do); anything else must be present and
    ``json_equal``."""
    if expected is None:
        return metadata.get(key) is None
    return key in metadata and json_equal(metadata[key], expected)


def metadata_matches(metadata: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
    """Whether checkpoint metadata matches a ``list`` filter: every top-level key
    matches (``metadata_value_matches``); an empty filter matches everything.

    Backends compare only the scalars the core pushes down (``ListQuery.filter``:
    strings, 64-bit ints, finite floats, booleans), server-side where they can; the core
    checks ``None``, lists and objects itself, with this same rule.
    """
    return all(metadata_value_matches(metadata, k, v) for k, v in filter.items())
