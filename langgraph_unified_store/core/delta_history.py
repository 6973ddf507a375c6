"""LangGraph's ``get_delta_channel_history`` in one backend read, and what prune keeps
for delta channels.

The base class walks the parent chain with one ``get_tuple`` per ancestor. Here the
backend streams the target and its ancestors in one read (``Backend.checkpoint_lineage``,
newest first), the walk stops as soon as every channel has its seed, and the message
items the ancestors share are decoded once (``core.decoded_items``). The answer is the
base class's, entry for entry (tests/test_delta_history.py holds it to that).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import DeltaChannelHistory, PendingWrite

from .backend import Backend
from .checkpoints import decode_checkpoint, require_configurable
from .codec import Codec
from .decoded_items import DecodedItems
from .limits import ReadLimits
from .records import EMPTY_TYPE, CheckpointRecord


async def delta_channel_history(
    codec: Codec,
    read_limits: ReadLimits,
    backend: Backend,
    config: RunnableConfig,
    channels: Sequence[str],
) -> dict[str, DeltaChannelHistory]:
    """Per channel: its writes on the path to the target, oldest first (the target's own
    writes are pending, so left out), and the nearest ancestor's stored value as ``seed``."""
    if not channels:
        return {}
    configurable = require_configurable(config, "get_delta_channel_history")
    collected: dict[str, list[PendingWrite]] = {c: [] for c in channels}
    seeds: dict[str, Any] = {}
    remaining = set(channels)
    decoded = DecodedItems()
    lineage = backend.checkpoint_lineage(
        configurable["thread_id"],
        configurable["checkpoint_ns"],
        configurable.get("checkpoint_id"),
    )
    async with contextlib.aclosing(lineage) as ancestors:
        target_seen = False
        async for stored in ancestors:
            if not target_seen:
                target_seen = True
                continue
            tup = decode_checkpoint(codec, read_limits, stored, decoded)
            for write in reversed(tup.pending_writes or []):
                if write[1] in remaining:
                    collected[write[1]].append(write)
            values = tup.checkpoint["channel_values"]
            for channel in [c for c in remaining if c in values]:
                seeds[channel] = values[channel]
                remaining.discard(channel)
            if not remaining:
                break
    result: dict[str, DeltaChannelHistory] = {}
    for channel in channels:
        entry: DeltaChannelHistory = {"writes": list(reversed(collected[channel]))}
        if channel in seeds:
            entry["seed"] = seeds[channel]
        result[channel] = entry
    return result


async def delta_chain(backend: Backend, head: CheckpointRecord) -> list[tuple[str, str]]:
    """The head plus every ancestor its DeltaChannels still need to rebuild their value.

    A delta channel's value at the head is rebuilt from the writes of ancestors back
    to the nearest one that stored a snapshot; pruning those would silently empty it.
    The ancestors come from one read (``Backend.checkpoint_lineage``).
    """
    kept = [(head.checkpoint_ns, head.checkpoint_id)]
    metadata = Codec.load_metadata(head.metadata, "prune")
    waiting = set((metadata.get("counters_since_delta_snapshot") or {}).keys())
    if not waiting:
        return kept
    lineage = backend.checkpoint_lineage(head.thread_id, head.checkpoint_ns, head.checkpoint_id)
    async with contextlib.aclosing(lineage) as ancestors:
        async for stored in ancestors:
            record = stored.record
            if record.checkpoint_id == head.checkpoint_id:
                continue  # the head itself
            kept.append((record.checkpoint_ns, record.checkpoint_id))
            waiting -= {
                ch for ch in waiting
                if ch in stored.blobs and stored.blobs[ch].type != EMPTY_TYPE
            }
            if not waiting:
                break
    return kept
