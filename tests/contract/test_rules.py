"""The storage rules of ``core.rules`` as stated, on small hand-made cases."""

from __future__ import annotations

from langgraph_unified_store.core.records import ItemRecord, WriteRecord
from langgraph_unified_store.core.rules import (
    dedupe_writes,
    fetch_items,
    json_equal,
    metadata_matches,
    reachable,
    retained,
)

A, B, C, D = (bytes([n]) * 16 for n in range(4))


def test_reachable_keeps_two_levels_and_what_survivors_name() -> None:
    live = reachable(
        [("", {"m": "2"})],
        {("", "m", "1"): (A,), ("", "m", "2"): (B,)},
        [(C,)],
        {A: (), B: (D,), C: (), D: (A,)},
    )
    assert live.blobs == {("", "m", "2")}
    assert live.items == {B, C, D}  # A is named only three levels down


def test_reachable_keeps_every_blob_when_a_survivor_is_unreadable() -> None:
    blobs = {("", "m", "1"): (A,), ("", "n", "1"): ()}
    live = reachable([("", None)], blobs, [], {A: ()})
    assert live.blobs == set(blobs) and live.items == {A}


def test_fetch_items_is_two_levels_and_asks_once_per_level() -> None:
    store = {A: ItemRecord(A, "t", b"", (B,)), B: ItemRecord(B, "t", b"", (C,)), C: ItemRecord(C, "t", b"", ())}
    asked: list[list[bytes]] = []

    def lookup(refs: object) -> list[ItemRecord]:
        asked.append(list(refs))  # type: ignore[call-overload]
        return [store[r] for r in asked[-1] if r in store]

    assert set(fetch_items([A, A], lookup)) == {A, B}
    assert asked == [[A], [B]]


def test_dedupe_writes_last_wins_when_replacing_first_otherwise() -> None:
    def write(idx: int, data: bytes) -> WriteRecord:
        return WriteRecord("t", idx, "c", "json", data, "", ())

    writes = [write(-1, b"1"), write(0, b"x"), write(-1, b"2")]
    assert [w.data for w in dedupe_writes(writes, replace=True)] == [b"2", b"x"]
    assert [w.data for w in dedupe_writes(writes, replace=False)] == [b"1", b"x"]


def test_json_equality_is_typed() -> None:
    assert not json_equal(True, 1) and not json_equal(1, True) and not json_equal("1", 1)
    assert json_equal(1, 1.0) and json_equal([1, {"a": None}], [1.0, {"a": None}])
    assert not json_equal([True], [1]) and not json_equal({"a": 1, "b": 2}, {"a": 1})
    assert metadata_matches({"a": None}, {"a": None}) and metadata_matches({}, {"a": None})
    assert not metadata_matches({"a": 0}, {"a": None}) and metadata_matches({"x": 1}, {})


def test_retained_spares_what_is_newer_than_every_kept_checkpoint() -> None:
    keeps = retained([("", "5")])
    assert keeps("", "5") and keeps("", "7") and not keeps("", "3") and keeps("sub", "1")
