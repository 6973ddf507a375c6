"""Nothing is left behind: after delete_thread, delete_for_runs, prune (both
strategies) and copy_thread, every stored blob, write and item is needed by a stored
checkpoint, and everything a checkpoint needs is stored (``raw.orphans``)."""

from __future__ import annotations

import contextlib
import uuid

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.errors import CorruptDataError

from ..reliability import raw
from ..support import config_for
from .chat import chat, messages

NONE_LEFT = {"blobs": 0, "writes": 0, "items": 0, "missing_items": 0, "other": 0}


async def test_a_long_chat_stores_items_and_no_orphans(saver: UnifiedCheckpointSaver) -> None:
    await chat(saver, "t", 6)
    stored = await raw.stored_thread(saver, "t")
    assert stored.items, "the chat's message lists should be stored as items"
    assert await raw.orphans(saver, ["t"]) == NONE_LEFT


async def test_delete_thread_leaves_nothing(saver: UnifiedCheckpointSaver) -> None:
    await chat(saver, "t", 4)
    kept = await chat(saver, "other", 2)
    await saver.adelete_thread("t")
    assert await raw.orphans(saver, ["t", "other"]) == NONE_LEFT
    assert await raw.checkpoint_count(saver, "t") == 0
    assert await messages(saver, "other") == kept


async def test_delete_for_runs_leaves_no_orphans(saver: UnifiedCheckpointSaver) -> None:
    runs = [str(uuid.uuid4()) for _ in range(4)]
    for run in runs:
        await chat(saver, "t", 1, run_id=run)
    kept = await chat(saver, "keep", 1, run_id=runs[0])
    await saver.adelete_for_runs(runs[2:])
    left = {t.metadata.get("run_id") async for t in saver.alist(config_for("t"))}
    assert left == set(runs[:2])
    assert len(await messages(saver, "t")) == 6
    assert await raw.orphans(saver, ["t", "keep"]) == NONE_LEFT
    await saver.adelete_for_runs(runs)
    assert await raw.orphans(saver, ["t", "keep"]) == NONE_LEFT
    assert await raw.checkpoint_count(saver, "t") == 0
    assert kept and await raw.checkpoint_count(saver, "keep") == 0


async def test_prune_keep_latest_leaves_no_orphans(saver: UnifiedCheckpointSaver) -> None:
    before = await chat(saver, "t", 8)
    other = await chat(saver, "other", 2)
    await saver.aprune(["t"], strategy="keep_latest")
    assert await messages(saver, "t") == before
    assert len([c async for c in saver.alist(config_for("t"))]) == 1
    assert await raw.orphans(saver, ["t", "other"]) == NONE_LEFT
    assert await messages(saver, "other") == other
    # The pruned thread goes on as before.
    after = await chat(saver, "t", 1)
    assert after[: len(before)] == before and len(after) == len(before) + 3
    assert await raw.orphans(saver, ["t"]) == NONE_LEFT


async def test_prune_delete_leaves_nothing(saver: UnifiedCheckpointSaver) -> None:
    await chat(saver, "t", 3)
    other = await chat(saver, "other", 2)
    await saver.aprune(["t"], strategy="delete")
    assert await raw.checkpoint_count(saver, "t") == 0
    assert await raw.orphans(saver, ["t", "other"]) == NONE_LEFT
    assert await messages(saver, "other") == other


async def test_copy_thread_is_whole_and_independent(saver: UnifiedCheckpointSaver) -> None:
    source = await chat(saver, "src", 4)
    await saver.acopy_thread("src", "dst")
    assert await raw.orphans(saver, ["src", "dst"]) == NONE_LEFT
    await saver.adelete_thread("src")
    assert await messages(saver, "dst") == source
    assert await raw.orphans(saver, ["src", "dst"]) == NONE_LEFT
    await chat(saver, "dst", 1)
    await saver.aprune(["dst"])
    assert await raw.orphans(saver, ["src", "dst"]) == NONE_LEFT


async def test_copy_thread_overwrites_the_targets_checkpoints(saver: UnifiedCheckpointSaver) -> None:
    """Checkpoints and writes of the same key are overwritten by the copy, as a put would;
    blobs and items are insert-if-absent (a key always names one content)."""
    await chat(saver, "src", 1)
    await saver.acopy_thread("src", "dst")
    head = await saver.aget_tuple(config_for("dst"))
    assert head is not None
    await saver.aput(
        head.config, head.checkpoint, {**head.metadata, "changed": "in dst"}, {}
    )
    changed = await saver.aget_tuple(config_for("dst"))
    assert changed is not None and changed.metadata.get("changed") == "in dst"
    await saver.acopy_thread("src", "dst")
    copied = await saver.aget_tuple(config_for("dst"))
    assert copied is not None and "changed" not in copied.metadata
    assert await raw.orphans(saver, ["src", "dst"]) == NONE_LEFT


async def test_a_survivor_whose_versions_cannot_be_read_keeps_every_blob(
    saver: UnifiedCheckpointSaver, backend_name: str
) -> None:
    """``core.rules.reachable``: a surviving checkpoint whose channel_versions is damaged
    might name any blob, so a collection keeps them all (or refuses to run)."""
    if backend_name == "memory":
        return  # memory keeps channel_versions as a dict: nothing stored to damage
    await chat(saver, "t", 2, run_id="first")
    await chat(saver, "t", 2, run_id="second")
    blobs_before = set((await raw.stored_thread(saver, "t")).blobs)
    await raw.overwrite(
        saver, "t", "versions-shape", raw.garbage_for(backend_name, "versions-shape", b"")
    )
    for collect in (
        lambda: saver.aprune(["t"], strategy="keep_latest"),
        lambda: saver.adelete_for_runs(["first"]),
    ):
        with contextlib.suppress(CorruptDataError):  # refusing to collect keeps all too
            await collect()
        assert set((await raw.stored_thread(saver, "t")).blobs) == blobs_before
