"""Quickstart: a LangGraph chat graph on the default saver (a local SQLite file), offline.

    python examples/quickstart.py            # default: SQLite under ./.langgraph_unified_store/
    python examples/quickstart.py --url memory://

It runs three turns of a chat, shows that a second saver object reads the same
thread back (the state is on disk, not in the process), then reads the thread as
framework-neutral UnifiedWorkflowState and adds to it from outside LangGraph.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from langgraph_unified_store import create_saver


class ChatState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    mood: str


def assistant(state: ChatState) -> dict[str, Any]:
    """A stand-in for a chat model: deterministic, so the demo needs no network."""
    last = state["messages"][-1].content
    mood = state.get("mood", "neutral")
    return {"messages": [AIMessage(f"({mood}) you said: {last!s}")]}


def build_graph(saver: Any) -> Any:
    builder = StateGraph(ChatState)
    builder.add_node("assistant", assistant)
    builder.add_edge(START, "assistant")
    builder.add_edge("assistant", END)
    return builder.compile(checkpointer=saver)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="saver URL (memory://, sqlite:///file.db, postgresql://..., redis://...)")
    args = parser.parse_args()
    thread_id = f"quickstart-{uuid.uuid4().hex[:8]}"
    config = {"configurable": {"thread_id": thread_id}}

    with create_saver(args.url) as saver:
        graph = build_graph(saver)
        for text in ("hello", "what can you store?", "thanks"):
            result = graph.invoke({"messages": [HumanMessage(text)]}, config)
            print(f"user: {text}\n  ai: {result['messages'][-1].content}")

        # Another framework (or a script) edits the same thread through the neutral schema.
        state = saver.load_state(thread_id)
        assert state is not None
        print(f"\n{len(state.messages)} messages stored on thread {thread_id!r}")
        state.add_message("user", "(added outside LangGraph) please be cheerful")
        state.update_context(mood="cheerful")
        saver.save_state(thread_id, state, framework="unified")

        result = graph.invoke({"messages": [HumanMessage("and now?")]}, config)
        print(f"  ai: {result['messages'][-1].content}")
        history = saver.history(thread_id)
        print(f"{len(history)} checkpoints, written by: {[s.metadata.framework for s in reversed(history)]}")

    if args.url is None or not args.url.startswith("memory"):
        # A brand-new saver object sees everything: the state survived the process.
        with create_saver(args.url) as again:
            reread = again.load_state(thread_id)
            assert reread is not None and reread.context["mood"] == "cheerful"
            print(f"re-opened the store: {len(reread.messages)} messages, mood={reread.context['mood']}")


if __name__ == "__main__":
    main()
