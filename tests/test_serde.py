"""The default serializer: exact round trips, fast message reads, nothing unsafe built."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from typing import Any, NamedTuple

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from pydantic import BaseModel

from langgraph_unified_store.core.codec import Codec
from langgraph_unified_store.core.dictionaries import CHECKPOINT_DICTIONARY_V1, ITEM_DICTIONARY_V1
from langgraph_unified_store.core.serde import SafeSerializer
from langgraph_unified_store.errors import CorruptDataError

MESSAGES = [
    HumanMessage("hi", id="1", name="bob", additional_kwargs={"a": {"b": [1]}}, response_metadata={"x": 1}),
    HumanMessage([{"type": "text", "text": "hey"}, {"type": "image_url", "image_url": {"url": "data:"}}]),
    AIMessage(
        "",
        id="3",
        tool_calls=[{"id": "c1", "name": "add", "args": {"a": 1, "b": [2, {"c": None}]}}],
        usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        invalid_tool_calls=[
            {"id": "c2", "name": "x", "args": "{bad", "error": "e", "type": "invalid_tool_call"}
        ],
        response_metadata={"model": "m"},
    ),
    AIMessage("plain"),
    AIMessageChunk("chunk", id="ch"),
    SystemMessage("sys", id="4"),
    ToolMessage("3", tool_call_id="c1", id="5", artifact={"r": [1, 2]}, status="error", name="add"),
    ToolMessage(content=[{"type": "text", "text": "x"}], tool_call_id="c9"),
    ChatMessage(content="c", role="critic"),
    FunctionMessage(content="f", name="fn"),
    RemoveMessage(id="gone"),
]


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Pair(NamedTuple):
    left: str
    right: int


class Inner(BaseModel):
    value: int


class Outer(BaseModel):
    inner: Inner
    tags: list[str]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_messages_round_trip_exactly(message: Any) -> None:
    serde = SafeSerializer()
    back = serde.loads_typed(serde.dumps_typed(message))
    assert back == message
    assert type(back) is type(message)
    assert back.model_dump() == message.model_dump()


def test_message_lists_round_trip_through_items() -> None:
    codec = Codec(SafeSerializer())
    value = MESSAGES * 5
    type_, data, refs, items = codec.encode_value(value, "channel 'messages'")
    back = codec.decode_value(type_, data, {i.ref: i for i in items}, "here", refs)
    assert back == value
    assert [type(m) for m in back] == [type(m) for m in value]


def test_compressed_items_read_back_again_and_damage_is_still_caught() -> None:
    codec = Codec(SafeSerializer())
    value = [HumanMessage("checkpoint " * 60, id=f"m{i}") for i in range(3)]
    type_, data, refs, items = codec.encode_value(value, "channel 'messages'")
    assert all(i.type.startswith("zd1:") for i in items)
    by_ref = {i.ref: i for i in items}
    for _ in range(2):  # the second read takes the decompressed bodies from the cache
        assert codec.decode_value(type_, data, by_ref, "here", refs) == value
    damaged = dataclasses.replace(items[0], data=items[0].data[:-4] + b"\0\0\0\0")
    with pytest.raises(CorruptDataError, match="here"):
        codec.decode_value(type_, data, {**by_ref, damaged.ref: damaged}, "here", refs)


def test_the_item_dictionary_never_changes() -> None:
    # Stored items are deflated against these exact bytes: a new dictionary needs a new
    # prefix, with this one kept for reading what is already stored.
    digest = hashlib.sha256(ITEM_DICTIONARY_V1).hexdigest()
    assert digest == "80b615b80e5439782f37153ba5795f417c572a7bd0bf51372278eb37c3fd05bb"
    digest = hashlib.sha256(CHECKPOINT_DICTIONARY_V1).hexdigest()
    assert digest == "a2d37471f06dc4e6595a2b945959ec0c18c1388fd1029f0c771c598037dbf2a7"


def test_checkpoint_skeletons_deflate_and_read_back() -> None:
    codec = Codec(SafeSerializer())
    skeleton = {
        "v": 4,
        "ts": "2026-11-22T06:33:20.989147+00:00",
        "versions_seen": {
            "__input__": {},
            "__start__": {"__start__": "b75.cccf64"},
            "draft": {"branch:to:draft": "b76.2acc5e"},
            "reply": {"branch:to:reply": "b77.c566fb"},
        },
        "updated_channels": ["messages"],
    }
    plain_type, plain = SafeSerializer().dumps_typed(skeleton)
    type_, data = codec.dumps_checkpoint(skeleton)
    assert type_ == "zc1:" + plain_type and len(data) * 3 < len(plain) * 2
    assert codec.decode_value(type_, data, {}, "here") == skeleton
    with pytest.raises(CorruptDataError, match="here"):
        codec.decode_value(type_, data[:-3], {}, "here")
    # Nothing is compressed where storage is in-process.
    assert Codec(SafeSerializer(), compress=False).dumps_checkpoint(skeleton) == (plain_type, plain)


def test_short_messages_shrink_against_the_dictionary() -> None:
    codec = Codec(SafeSerializer())
    value = [HumanMessage("What is the weather in Paris today?", id="abc-123")] * 2
    plain = len(SafeSerializer().dumps_typed(value[0])[1])
    _, _, _, items = codec.encode_value(value, "channel 'messages'")
    assert [i.type for i in items] == ["zd1:msgpack"]
    assert len(items[0].data) * 2 < plain


def test_user_data_types_round_trip() -> None:
    serde = SafeSerializer()
    value = {"color": Color.RED, "point": Point(1, 2), "pair": Pair("a", 1), "outer": Outer(inner=Inner(value=3), tags=["t"])}
    back = serde.loads_typed(serde.dumps_typed(value))
    assert back == value
    assert isinstance(back["outer"].inner, Inner)


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_writes_the_same_bytes_as_langgraph(message: Any) -> None:
    """The fast path for core messages is an encoder shortcut, not a new format."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    value = {"messages": [message, message], "n": 1}
    assert SafeSerializer().dumps_typed(value) == JsonPlusSerializer().dumps_typed(value)


def test_extra_attributes_take_langgraphs_path() -> None:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    message = HumanMessage("x", id="e", custom_field="kept")
    assert SafeSerializer().dumps_typed(message) == JsonPlusSerializer().dumps_typed(message)
    assert SafeSerializer().loads_typed(SafeSerializer().dumps_typed(message)) == message


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_read_messages_equal_pydantic_construction(message: Any) -> None:
    """What the fast read builds is what model_construct/validation builds, attribute
    for attribute."""
    serde = SafeSerializer()
    back = serde.loads_typed(serde.dumps_typed(message))
    assert back.__dict__ == message.__dict__
    assert back.__pydantic_extra__ == message.__pydantic_extra__
    assert back.__pydantic_fields_set__ >= message.__pydantic_fields_set__
    assert back.model_dump() == message.model_dump()
    assert repr(back) == repr(message)
