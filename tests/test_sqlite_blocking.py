"""SQLite's blocking API runs on the caller's thread: no hop to the saver's I/O loop."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from langchain_core.messages import HumanMessage

from langgraph_unified_store import SQLiteSaver

from .graphs import chat_graph
from .support import thread_config


def _io_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.endswith("-io")]


def test_blocking_calls_never_start_the_io_loop(tmp_path: Path) -> None:
    before = _io_threads()
    saver = SQLiteSaver(tmp_path / "blocking.db")
    graph = chat_graph(saver)
    for turn in range(3):
        graph.invoke({"messages": [HumanMessage(f"hi {turn}", id=f"h{turn}")]}, thread_config("t"))
    assert len(graph.get_state(thread_config("t")).values["messages"]) == 9
    assert len(list(saver.list(thread_config("t")))) >= 3
    assert _io_threads() == before
    saver.close()
    with SQLiteSaver(tmp_path / "blocking.db") as reopened:
        assert len(chat_graph(reopened).get_state(thread_config("t")).values["messages"]) == 9


def test_blocking_threads_and_async_tasks_share_one_connection(tmp_path: Path) -> None:
    saver = SQLiteSaver(tmp_path / "mixed.db")
    graph = chat_graph(saver)

    def blocking(thread_id: str) -> int:
        for turn in range(4):
            message = HumanMessage(f"{thread_id} {turn}", id=f"{thread_id}-{turn}")
            graph.invoke({"messages": [message]}, thread_config(thread_id))
        return len(graph.get_state(thread_config(thread_id)).values["messages"])

    async def asynchronous(thread_id: str) -> int:
        for turn in range(4):
            message = HumanMessage(f"{thread_id} {turn}", id=f"{thread_id}-{turn}")
            await graph.ainvoke({"messages": [message]}, thread_config(thread_id))
        return len((await graph.aget_state(thread_config(thread_id))).values["messages"])

    async def both() -> list[int]:
        with ThreadPoolExecutor(max_workers=4) as pool:
            loop = asyncio.get_running_loop()
            threads = [loop.run_in_executor(pool, blocking, f"sync-{i}") for i in range(4)]
            tasks = [asynchronous(f"async-{i}") for i in range(4)]
            return list(await asyncio.gather(*threads, *tasks))

    try:
        assert asyncio.run(both()) == [12] * 8
        assert sorted(saver.list_workflows()) == sorted(
            [f"sync-{i}" for i in range(4)] + [f"async-{i}" for i in range(4)]
        )
    finally:
        saver.close()
