"""A small chat graph whose message lists are long enough to be stored as items."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def chat_graph(saver: UnifiedCheckpointSaver) -> Any:
    graph = StateGraph(Chat)
    graph.add_node("a", lambda s: {"messages": [AIMessage("a" * 200 + str(len(s["messages"])))]})
    graph.add_node("b", lambda s: {"messages": [AIMessage("b" * 200 + str(len(s["messages"])))]})
    graph.add_edge(START, "a")
    graph.add_edge("a", "b")
    graph.add_edge("b", END)
    return graph.compile(checkpointer=saver)


def turn(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(text * 20)]}


def config(thread_id: str, **extra: Any) -> Any:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", **extra}}


async def chat(saver: UnifiedCheckpointSaver, thread_id: str, turns: int, **extra: Any) -> Any:
    """``turns`` turns of the chat on a thread; returns its messages."""
    graph = chat_graph(saver)
    for number in range(turns):
        await graph.ainvoke(turn(f"{thread_id}-{number} "), config(thread_id, **extra))
    return (await graph.aget_state(config(thread_id))).values["messages"]


async def messages(saver: UnifiedCheckpointSaver, thread_id: str) -> Any:
    return (await chat_graph(saver).aget_state(config(thread_id))).values.get("messages")
