"""Small LangGraph graphs that several test modules run on a saver.

- ``chat_graph``: START -> reply -> review -> END on an ``add_messages`` channel; each
  turn adds the human message and two short AI messages with ids.
- ``padded_chat_graph``: START -> a -> b, each node adding a 200-character AI message
  (no ids), fed by ``padded_turn``: message lists large enough to be stored as items.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages


class ChatState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    topic: str


def _reply(state: ChatState) -> dict[str, Any]:
    seen = len(state["messages"])
    return {"messages": [AIMessage(f"reply to {seen} messages", id=f"ai-{seen}")]}


def _review(state: ChatState) -> dict[str, Any]:
    return {"messages": [AIMessage("reviewed", id=f"review-{len(state['messages'])}")]}


def chat_graph(saver: Any) -> Any:
    builder = StateGraph(ChatState)
    builder.add_node("reply", _reply)
    builder.add_node("review", _review)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", "review")
    builder.add_edge("review", END)
    return builder.compile(checkpointer=saver)


class PaddedChat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def padded_chat_graph(saver: Any) -> Any:
    graph = StateGraph(PaddedChat)
    graph.add_node("a", lambda s: {"messages": [AIMessage("a" * 200 + str(len(s["messages"])))]})
    graph.add_node("b", lambda s: {"messages": [AIMessage("b" * 200 + str(len(s["messages"])))]})
    graph.add_edge(START, "a")
    graph.add_edge("a", "b")
    return graph.compile(checkpointer=saver)


def padded_turn(text: str) -> dict[str, Any]:
    """A human turn of ``text`` repeated 20 times."""
    return {"messages": [HumanMessage(text * 20)]}
