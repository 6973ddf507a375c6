"""``list`` decodes each stored item once per call and hands out fresh copies: no two
returned checkpoints share a mutable object, on every backend."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langgraph_unified_store.core.decoded_items import DecodedItems, NotCopyable, fresh_copy
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from .support import checkpoint_and_versions, config_for


def _message(turn: int) -> AIMessage:
    return AIMessage(
        content=f"reply {turn} " + "x" * 80,
        id=f"m{turn}",
        additional_kwargs={"tags": ["a", {"deep": [turn]}]},
        response_metadata={"model": "m"},
    )


async def _chat(saver: UnifiedCheckpointSaver, thread: str, turns: int) -> None:
    messages: list[Any] = []
    parent = None
    for turn in range(turns):
        messages = [*messages, _message(turn)]
        checkpoint, versions = checkpoint_and_versions({"messages": messages}, turn)
        config = await saver.aput(
            config_for(thread, parent), checkpoint, {"source": "loop", "step": turn}, versions
        )
        parent = config["configurable"]["checkpoint_id"]
        await saver.aput_writes(config, [("messages", [_message(turn)])], f"task{turn}")


async def test_returned_checkpoints_share_no_mutable_object(saver: UnifiedCheckpointSaver) -> None:
    await _chat(saver, "copies", 4)
    listed = [t async for t in saver.alist(config_for("copies"))]
    assert len(listed) == 4
    saver.decode_items_once = False
    assert [t async for t in saver.alist(config_for("copies"))] == listed, "same answer"
    saver.decode_items_once = True
    newest, older = listed[0], listed[1]
    first_new = newest.checkpoint["channel_values"]["messages"][0]
    first_old = older.checkpoint["channel_values"]["messages"][0]
    assert first_new == first_old and first_new is not first_old
    first_new.content = "changed"
    first_new.additional_kwargs["tags"][1]["deep"].append("changed")
    first_new.response_metadata["model"] = "changed"
    assert first_old == _message(0), "the other checkpoint's message is unchanged"
    # A pending write holding the same stored item is a copy too.
    written = older.pending_writes[0][2][0]
    assert written == _message(2) and written is not listed[0].checkpoint["channel_values"]["messages"][2]
    # Mutating a message before the next checkpoint is read changes nothing in it.
    iterator = saver.alist(config_for("copies"))
    head = await anext(iterator)
    head.checkpoint["channel_values"]["messages"][1].additional_kwargs["tags"].clear()
    after = await anext(iterator)
    assert after.checkpoint["channel_values"]["messages"][1] == _message(1)
    await iterator.aclose()


class Colour(enum.Enum):
    RED = 1


def test_fresh_copy_rebuilds_every_mutable_object() -> None:
    value = {"m": [HumanMessage(content="hi", id="1")], "t": (1, [2]), "s": {3}, "e": Colour.RED}
    copied = fresh_copy(value)
    assert copied == value
    assert copied["m"][0] is not value["m"][0] and copied["t"][1] is not value["t"][1]
    assert copied["s"] is not value["s"] and copied["e"] is Colour.RED
    assert copied["m"][0].model_fields_set == value["m"][0].model_fields_set


def test_values_of_unknown_types_are_decoded_each_time() -> None:
    class Opaque:
        pass

    with pytest.raises(NotCopyable):
        fresh_copy([Opaque()])
    cache = DecodedItems()
    cache.keep(b"r", "msgpack", b"body", [Opaque()])
    assert cache.take(b"r", "msgpack", b"body") == (False, None)
    cache.keep(b"r", "msgpack", b"body", ["ok"])
    assert cache.take(b"r", "msgpack", b"other bytes")[0] is False, "only the same bytes hit"
    hit, value = cache.take(b"r", "msgpack", b"body")
    assert hit and value == ["ok"]
