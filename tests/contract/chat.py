"""The contract suite's chat: a small graph whose message lists are long enough to be
stored as items (``tests.graphs.padded_chat_graph``)."""

from __future__ import annotations

from typing import Any

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..graphs import padded_chat_graph, padded_turn
from ..support import config_for, thread_config

# The chat graph and turn that other tests use too: replies long enough to become items.
chat_graph = padded_chat_graph
turn = padded_turn


async def chat(saver: UnifiedCheckpointSaver, thread_id: str, turns: int, **extra: Any) -> Any:
    """``turns`` turns of the chat on a thread; returns its messages."""
    graph = chat_graph(saver)
    for number in range(turns):
        await graph.ainvoke(turn(f"{thread_id}-{number} "), thread_config(thread_id, **extra))
    return (await graph.aget_state(config_for(thread_id))).values["messages"]


async def messages(saver: UnifiedCheckpointSaver, thread_id: str) -> Any:
    return (await chat_graph(saver).aget_state(config_for(thread_id))).values.get("messages")
