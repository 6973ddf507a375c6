"""What a put relies on, the keep/replace rules of writes and the two-level item fetch."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.base import WRITES_IDX_MAP, empty_checkpoint

from langgraph_unified_store.core.rules import fetch_items
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.errors import BlobsMissingError, ItemsMissingError

from ..reliability import raw
from ..support import config_for
from .chat import chat

# Special channels (negative write indexes); langgraph.constants no longer exports them.
ERROR, INTERRUPT = "__error__", "__interrupt__"
assert ERROR in WRITES_IDX_MAP and INTERRUPT in WRITES_IDX_MAP


def _checkpoint(number: int, **values: Any) -> Any:
    made = empty_checkpoint()
    made["id"] = f"1ef00000-0000-6000-8000-{number:012d}"
    made["channel_values"] = dict(values)
    made["channel_versions"] = {k: f"{number:08x}.0" for k in values}
    return made


def _spy_on_puts(saver: UnifiedCheckpointSaver, monkeypatch: pytest.MonkeyPatch) -> list[type]:
    """The errors the backend's put_checkpoint raises (the real backend runs)."""
    raised: list[type] = []
    put = saver.backend.put_checkpoint

    async def spy(*args: Any, **kwargs: Any) -> None:
        try:
            await put(*args, **kwargs)
        except Exception as exc:
            raised.append(type(exc))
            raise

    monkeypatch.setattr(saver.backend, "put_checkpoint", spy)
    return raised


LONG = [f"message {n} " + "x" * 100 for n in range(40)]


async def _two_puts(saver: UnifiedCheckpointSaver, gone: list[str]) -> Any:
    """Put a checkpoint with a long list and a note, delete ``gone`` raw, then put its
    child, which extends the list (relying on its stored items) and inherits the note."""
    first = await saver.aput(
        config_for("t"), _checkpoint(1, messages=LONG, note="n" * 200), {"step": 1}, {"messages": "1", "note": "1"}
    )
    for target in gone:
        await raw.delete(saver, "t", target)
    child = _checkpoint(2, messages=[*LONG, "one more"], note="n" * 200)
    child["channel_versions"]["note"] = _checkpoint(1, note="")["channel_versions"]["note"]
    return await saver.aput(first, child, {"step": 2}, {"messages": child["channel_versions"]["messages"]})


async def test_a_gone_base_list_is_items_missing_and_resent(
    saver: UnifiedCheckpointSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    raised = _spy_on_puts(saver, monkeypatch)
    # What collection leaves when nothing names the list any more: no blob, no items.
    second = await _two_puts(saver, ["blob:messages", "item"])
    assert raised and issubclass(raised[0], ItemsMissingError), raised
    read = await saver.aget_tuple(second)
    assert read is not None and read.checkpoint["channel_values"]["messages"] == [*LONG, "one more"]
    assert read.checkpoint["channel_values"]["note"] == "n" * 200


async def test_a_gone_inherited_blob_is_blobs_missing_and_resent(
    saver: UnifiedCheckpointSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    raised = _spy_on_puts(saver, monkeypatch)
    second = await _two_puts(saver, ["blob:note"])
    assert raised and all(e is BlobsMissingError for e in raised), raised
    read = await saver.aget_tuple(second)
    assert read is not None and read.checkpoint["channel_values"]["note"] == "n" * 200
    assert read.checkpoint["channel_values"]["messages"] == [*LONG, "one more"]


def _pending(tup: Any) -> dict[tuple[str, str], list[Any]]:
    found: dict[tuple[str, str], list[Any]] = {}
    for task_id, channel, value in tup.pending_writes:
        found.setdefault((task_id, channel), []).append(value)
    return found


async def test_writes_keep_regular_and_replace_special(saver: UnifiedCheckpointSaver) -> None:
    stored = await saver.aput(config_for("t"), _checkpoint(1, a="x"), {"step": 1}, {"a": "1"})
    await saver.aput_writes(stored, [("a", 1), ("b", 2)], "task")
    await saver.aput_writes(stored, [("a", 10), ("b", 20)], "task")  # kept: the first stay
    await saver.aput_writes(stored, [(ERROR, "first")], "task")
    await saver.aput_writes(stored, [(ERROR, "second")], "task")  # special: replaced
    await saver.aput_writes(stored, [("a", 3)], "other")
    tup = await saver.aget_tuple(stored)
    assert tup is not None
    assert _pending(tup) == {
        ("task", "a"): [1], ("task", "b"): [2], ("task", ERROR): ["second"], ("other", "a"): [3]
    }


async def test_duplicates_within_one_put_writes(saver: UnifiedCheckpointSaver) -> None:
    """One call, one write per (task, idx): the last wins when the call replaces (all
    special), the first otherwise (``core.rules.dedupe_writes``)."""
    stored = await saver.aput(config_for("t"), _checkpoint(1, a="x"), {"step": 1}, {"a": "1"})
    await saver.aput_writes(stored, [(INTERRUPT, "i1"), (INTERRUPT, "i2")], "replacing")
    await saver.aput_writes(stored, [("a", 1), (ERROR, "e1"), (ERROR, "e2")], "keeping")
    tup = await saver.aget_tuple(stored)
    assert tup is not None
    assert _pending(tup) == {
        ("replacing", INTERRUPT): ["i2"], ("keeping", "a"): [1], ("keeping", ERROR): ["e1"]
    }


async def test_reads_fetch_items_and_the_items_they_name(saver: UnifiedCheckpointSaver) -> None:
    """A read returns exactly the two-level closure (``core.rules.fetch_items``) of what
    its blobs and writes reference, computed here from the raw rows."""
    await chat(saver, "t", 12)
    head = await saver.aget_tuple(config_for("t"))
    assert head is not None
    configurable = head.config["configurable"]
    got = await saver.backend.get_checkpoint("t", "", configurable["checkpoint_id"])
    assert got is not None
    stored = await raw.stored_thread(saver, "t")
    refs = [r for b in got.blobs.values() for r in b.item_refs]
    refs += [r for w in got.writes for r in w.item_refs]
    expected = fetch_items(
        refs, lambda wanted: [raw_item(ref, stored.items) for ref in wanted if ref in stored.items]
    )
    assert set(got.items) == set(expected)
    assert any(item.item_refs for item in got.items.values()), "expected segments naming items"


def raw_item(ref: bytes, items: dict[bytes, tuple[bytes, ...]]) -> Any:
    from langgraph_unified_store.core.records import ItemRecord

    return ItemRecord(ref, "", b"", items[ref])
