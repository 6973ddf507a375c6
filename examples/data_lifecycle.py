"""The data lifecycle, offline: TTL, pinning, keep-last-N, age-based retention, erasure.

    python examples/data_lifecycle.py                     # a temporary SQLite file
    python examples/data_lifecycle.py --url memory://
    python examples/data_lifecycle.py --url postgresql://postgres@127.0.0.1/test

A few users chat on their own threads, with their user id in the checkpoint metadata.
The saver's clock is injected, so the demo moves time forward instead of waiting: threads
expire a day after their last write, one is pinned forever, old history is pruned to the
last two checkpoints, and one user's data is erased with a receipt.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from langgraph_unified_store import create_saver


class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def assistant(state: ChatState) -> dict[str, Any]:
    return {"messages": [AIMessage(f"noted: {state['messages'][-1].content!s}")]}


def build_graph(saver: Any) -> Any:
    builder = StateGraph(ChatState)
    builder.add_node("assistant", assistant)
    builder.add_edge(START, "assistant")
    builder.add_edge("assistant", END)
    return builder.compile(checkpointer=saver)


def chat(graph: Any, user: str, thread_id: str, lines: list[str]) -> None:
    config = {"configurable": {"thread_id": thread_id}, "metadata": {"user_id": user}}
    for line in lines:
        graph.invoke({"messages": [HumanMessage(line)]}, config)


def run(url: str, **options: Any) -> dict[str, Any]:
    """The demo on ``url``; ``options`` go to the saver (a schema or key prefix, say)."""
    now = [time.time()]
    saver = create_saver(url, ttl=timedelta(days=1), clock=lambda: now[0], **options)
    with saver:
        graph = build_graph(saver)
        chat(graph, "ada", "ada-trip", ["I fly to Lisbon on Friday", "window seat, please"])
        chat(graph, "grace", "grace-notes", ["remind me to water the ferns", "and call the bank"])
        chat(graph, "linus", "linus-kernel", ["the build fails on arm64", "only with clang", "fixed it"])
        saver.set_ttl("linus-kernel", None)  # pinned: kept forever, whatever the ttl

        page = saver.list_threads(limit=10)
        print("threads:")
        for info in page.threads:
            row = info.as_dict()
            print(f"  {row['thread_id']:<13} {row['checkpoints']} checkpoints, expires {row['expires_at']}")

        saver.prune(["linus-kernel"], strategy="keep_last", keep=2)
        kept = len(list(saver.list({"configurable": {"thread_id": "linus-kernel"}})))
        print(f"prune keep_last=2: linus-kernel keeps {kept} checkpoints")

        now[0] += timedelta(hours=12).total_seconds()
        chat(graph, "ada", "ada-trip", ["actually, make it Saturday"])  # a write restarts her ttl
        now[0] += timedelta(hours=13).total_seconds()
        visible = saver.list_workflows()
        print(f"25 hours on, threads a reader sees: {visible}")
        swept = saver.sweep()
        print(f"sweep removed {swept.thread_ids} ({swept.checkpoints} checkpoints)")

        old = saver.delete_threads(older_than=timedelta(hours=6), filter={"user_id": "linus"})
        print(f"delete_threads older than 6 h for linus: {old.thread_ids}")

        receipt = saver.forget({"user_id": "ada"})
        print(
            f"forget user ada: threads {receipt.thread_ids}, {receipt.checkpoints} checkpoints, "
            f"{receipt.writes} writes, {receipt.blobs} blobs, {receipt.items} items; "
            f"verified={receipt.verified}"
        )
        return {
            "visible_after_25h": visible,
            "swept": swept.thread_ids,
            "deleted": old.thread_ids,
            "forgotten": receipt.thread_ids,
            "verified": receipt.verified,
            "left": saver.list_workflows(),
        }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a saver URL (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    if args.url:
        return run(args.url)
    with tempfile.TemporaryDirectory() as folder:
        return run(f"sqlite:///{Path(folder) / 'lifecycle.db'}")


if __name__ == "__main__":
    main()
