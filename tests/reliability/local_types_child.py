"""Child process of ``test_local_types``: a graph whose state model, and the models and
dataclasses in it, are defined inside a function (as graphs built by factories are).

Usage: python -m tests.reliability.local_types_child PHASE BACKEND LOCATION [REDIS_URL]

PHASE ``write`` runs the graph once per API; ``read`` (a fresh process: the classes are
new objects that no stored module and name can find) builds the graph again and goes on
from the stored checkpoints. ``both`` does both in one process (Memory). Prints one JSON
line: what the graph returned and the warnings logged.
"""

# No ``from __future__ import annotations``: the state's hints name classes local to
# make_graph, which LangGraph resolves at runtime.
import asyncio
import json
import logging
import sys
from dataclasses import dataclass
from typing import Any

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from ..support import open_saver


def make_graph(saver: Any) -> Any:
    class Profile(BaseModel):
        name: str
        tags: list[str] = []

    @dataclass
    class Note:
        text: str
        n: int

    class State(BaseModel):
        profile: Profile | None = None
        notes: list[Note] = []
        visits: int = 0

    def visit(state: State) -> dict[str, Any]:
        # Stored values come back as dicts; the pydantic state coerces them to the models.
        assert state.profile is None or isinstance(state.profile, Profile), type(state.profile)
        assert all(isinstance(n, Note) for n in state.notes), [type(n) for n in state.notes]
        visits = state.visits + 1
        name = state.profile.name if state.profile else "ada"
        tags = state.profile.tags if state.profile else []
        return {
            "profile": Profile(name=name, tags=[*tags, f"v{visits}"]),
            "notes": [*state.notes, Note(f"note {visits}", visits)],
            "visits": visits,
        }

    builder = StateGraph(State)
    builder.add_node("visit", visit)
    builder.add_edge(START, "visit")
    builder.add_edge("visit", END)
    return builder.compile(checkpointer=saver)


class Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _plain(result: Any) -> Any:
    profile = result["profile"]
    return {
        "profile": [type(profile).__name__, profile.name, profile.tags],
        "notes": [[type(n).__name__, n.text, n.n] for n in result["notes"]],
        "visits": result["visits"],
    }


async def run(phase: str, saver: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if phase in ("write", "both"):
        graph = make_graph(saver)
        await asyncio.to_thread(graph.invoke, {"visits": 0}, {"configurable": {"thread_id": "sync"}})
        await graph.ainvoke({"visits": 0}, {"configurable": {"thread_id": "async"}})
    if phase in ("read", "both"):
        graph = make_graph(saver)  # new classes: the stored ones cannot be found by name
        sync_config = {"configurable": {"thread_id": "sync"}}
        async_config = {"configurable": {"thread_id": "async"}}
        out["sync"] = _plain(await asyncio.to_thread(graph.invoke, {"visits": 1}, sync_config))
        out["async"] = _plain(await graph.ainvoke({"visits": 1}, async_config))
        history = [s async for s in graph.aget_state_history(async_config)]
        synced = await asyncio.to_thread(lambda: list(graph.get_state_history(sync_config)))
        out["history"] = [len(history), len(synced)]
    return out


async def main(phase: str, backend: str, location: str, url: str | None) -> None:
    handler = Count()
    logging.getLogger("langgraph_unified_store").addHandler(handler)
    saver = open_saver(backend, location, **({"url": url} if url else {}))
    await saver.asetup()
    try:
        out = await run(phase, saver)
    finally:
        await saver.aclose()
    out["warnings"] = [m for m in handler.messages if "cannot be found" in m]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None))
