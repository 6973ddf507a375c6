"""``fixtures/encrypted_v1.json`` (records encrypted by release c2373b4, before the v2
format), and how to plant them beneath a saver's core, as that release stored them."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import ormsgpack

from langgraph_unified_store.core.records import (
    ITEM_LIST_TYPE,
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    WriteRecord,
)
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

FIXTURE = Path(__file__).parent.parent / "fixtures" / "encrypted_v1.json"


def decode_field(text: str) -> bytes:
    """The bytes of a base64 field of the fixture."""
    return base64.b64decode(text)


async def plant_records(
    saver: UnifiedCheckpointSaver,
    thread_id: str,
    thread: dict[str, Any],
    *,
    tamper: str | None = None,
) -> None:
    """Store the fixture's records as the old release stored them (through the backend,
    beneath the core)."""
    items = [
        ItemRecord(
            decode_field(i["ref"]),
            i["type"],
            decode_field(i["data"]),
            tuple(decode_field(r) for r in i["refs"]),
        )
        for i in thread["items"]
    ]
    blobs = [
        BlobRecord(
            b["channel"],
            b["version"],
            b["type"],
            decode_field(b["data"]),
            tuple(decode_field(r) for r in b["refs"]),
        )
        for b in thread["blobs"]
    ]
    if tamper == "inline-element":
        blob = next(b for b in blobs if b.type == ITEM_LIST_TYPE)
        blob.data = ormsgpack.packb(0) + ormsgpack.packb([ormsgpack.packb("planted")])
        blob.item_refs = ()
    if tamper == "plaintext-leaf":
        for blob in blobs:
            if blob.channel == "notes":
                blob.type, blob.data = "msgpack", ormsgpack.packb("planted")
    for index, c in enumerate(sorted(thread["checkpoints"], key=lambda c: c["id"])):
        record = CheckpointRecord(
            thread_id,
            c["ns"],
            c["id"],
            c["parent"],
            c["type"],
            decode_field(c["data"]),
            c["versions"],
            c["metadata"].encode(),
            c["run_id"],
        )
        mine = [b for b in blobs if b.version in c["versions"].values()]
        await saver.backend.put_checkpoint(record, mine, items if index == 0 else [])
    for w in thread["writes"]:
        await saver.backend.put_writes(
            thread_id,
            w["ns"],
            w["checkpoint"],
            [
                WriteRecord(
                    w["task_id"],
                    w["idx"],
                    w["channel"],
                    w["type"],
                    decode_field(w["data"]),
                    w["task_path"],
                    tuple(decode_field(r) for r in w["refs"]),
                )
            ],
            [],
            replace=True,
        )
