"""Thread histories the transfer tests move between backends, and how they compare.

``build_history`` runs real graphs on a saver: a chat of several turns (its message
list grows, so it is sent as what each version appends), a fork from an earlier
checkpoint (parents matter), a step cut short by an interrupt (pending writes of the
task that finished, and the interrupt's), and a graph with a subgraph (a second
namespace). ``thread_view`` is everything a reader sees of a thread.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.graph import START, StateGraph
from langgraph.types import interrupt

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..graphs import chat_graph, padded_chat_graph, padded_turn

CHAT = "chat"
FORKED = "forked"
INTERRUPTED = "interrupted"
NESTED = "nested"
PADDED = "padded"
THREADS = (CHAT, FORKED, INTERRUPTED, NESTED, PADDED)


class Log(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def _fast(state: Log) -> dict[str, Any]:
    return {"log": ["fast"]}


def _ask(state: Log) -> dict[str, Any]:
    answer = interrupt("question?")
    return {"log": [f"answer {answer}"]}


def interrupted_graph(saver: Any) -> Any:
    builder = StateGraph(Log)
    builder.add_node("fast", _fast)
    builder.add_node("ask", _ask)
    builder.add_edge(START, "fast")
    builder.add_edge(START, "ask")
    return builder.compile(checkpointer=saver)


def nested_graph(saver: Any) -> Any:
    inner = StateGraph(Log)
    inner.add_node("inner", lambda s: {"log": ["inner"]})
    inner.add_node("ask_inner", lambda s: {"log": [f"inner answer {interrupt('inner?')}"]})
    inner.add_edge(START, "inner")
    inner.add_edge("inner", "ask_inner")
    outer = StateGraph(Log)
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "sub")
    return outer.compile(checkpointer=saver)


def config(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id}}


async def build_history(saver: UnifiedCheckpointSaver, prefix: str = "", turns: int = 3) -> list[str]:
    """The threads above on ``saver`` (ids led by ``prefix``); returns their ids."""
    chat = chat_graph(saver)
    for turn in range(turns):
        await chat.ainvoke({"messages": [HumanMessage(f"turn {turn}", id=f"h{turn}")]}, config(prefix + CHAT))
    for turn in range(2):
        await chat.ainvoke({"messages": [HumanMessage(f"fork turn {turn}", id=f"f{turn}")]}, config(prefix + FORKED))
    history = [s async for s in chat.aget_state_history(config(prefix + FORKED))]
    earlier = history[len(history) // 2].config
    await chat.ainvoke({"messages": [HumanMessage("time travel", id="tt")]}, earlier)
    await interrupted_graph(saver).ainvoke({"log": []}, config(prefix + INTERRUPTED))
    await nested_graph(saver).ainvoke({"log": []}, config(prefix + NESTED))
    padded = padded_chat_graph(saver)
    for turn in range(turns):
        await padded.ainvoke(padded_turn(f"p{turn}"), config(prefix + PADDED))
    return [prefix + name for name in THREADS]


async def thread_view(saver: UnifiedCheckpointSaver, thread_id: str) -> dict[str, list[CheckpointTuple]]:
    """Every namespace's history, newest first, as ``alist`` returns it."""
    namespaces: set[str] = set()
    async for tup in saver.alist(config(thread_id)):
        namespaces.add(tup.config["configurable"]["checkpoint_ns"])
    view: dict[str, list[CheckpointTuple]] = {}
    for ns in sorted(namespaces):
        view[ns] = [
            t async for t in saver.alist({"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}})
        ]
        latest = await saver.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}})
        assert latest == view[ns][0]
    return view
