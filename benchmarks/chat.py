"""The chat graph every saver runs: deterministic and offline, so only the saver differs.

Two nodes each append an AI message of about 500 characters to an ``add_messages``
list, after a ~500-character human message per turn. Messages carry fixed ids so two
runs store exactly the same state.
"""

from __future__ import annotations

import random
from functools import cache
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

MESSAGE_CHARS = 500
_WORDS = [
    "checkpoint",
    "saver",
    "thread",
    "graph",
    "node",
    "message",
    "state",
    "channel",
    "version",
    "blob",
    "write",
    "store",
    "latency",
    "storage",
    "turn",
    "history",
    "filter",
    "metadata",
    "schema",
    "index",
    "query",
    "snapshot",
    "agent",
    "tool",
    "answer",
    "question",
    "context",
    "summary",
    "detail",
    "reply",
    "draft",
    "review",
    "plan",
    "step",
]


class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


@cache
def message_text(seed: str, chars: int = MESSAGE_CHARS) -> str:
    """Readable filler text of exactly ``chars`` characters, the same for the same seed.

    Cached: the benchmark makes every text before its clock starts (``turn_inputs``)."""
    rng = random.Random(seed)
    words: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:chars]


def human_turn(thread_id: str, turn: int) -> dict[str, Any]:
    """The input of one turn: one human message."""
    return {
        "messages": [HumanMessage(content=message_text(f"{thread_id}/{turn}/h"), id=f"{turn}-h")]
    }


def turn_inputs(thread_id: str, turns: int) -> list[dict[str, Any]]:
    """Every input of a thread's turns, and the nodes' replies warmed in the text cache,
    so that making text is never inside a timed region."""
    for turn in range(turns):
        message_text(f"{turn}/draft")
        message_text(f"{turn}/reply")
    return [human_turn(thread_id, turn) for turn in range(turns)]


def _turn_of(state: ChatState) -> int:
    # Three messages per turn; the human one of the current turn is already in.
    return (len(state["messages"]) - 1) // 3


def _draft(state: ChatState) -> dict[str, Any]:
    turn = _turn_of(state)
    return {"messages": [AIMessage(content=message_text(f"{turn}/draft"), id=f"{turn}-a")]}


def _reply(state: ChatState) -> dict[str, Any]:
    turn = _turn_of(state)
    return {"messages": [AIMessage(content=message_text(f"{turn}/reply"), id=f"{turn}-b")]}


async def _adraft(state: ChatState) -> dict[str, Any]:
    return _draft(state)


async def _areply(state: ChatState) -> dict[str, Any]:
    return _reply(state)


def build_chat_graph(checkpointer: BaseCheckpointSaver[Any], *, asynchronous: bool) -> Any:
    """The two-node chat graph; async nodes for ``ainvoke`` so no executor hop is timed."""
    builder = StateGraph(ChatState)
    builder.add_node("draft", _adraft if asynchronous else _draft)  # type: ignore[arg-type]
    builder.add_node("reply", _areply if asynchronous else _reply)  # type: ignore[arg-type]
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "reply")
    builder.add_edge("reply", END)
    return builder.compile(checkpointer=checkpointer)


def thread_config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
