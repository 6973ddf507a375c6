"""The measured workloads. Each phase opens a fresh store, runs, and is cleaned up.

Phases are plain functions of (saver, sizes) so ``benchmarks.profile`` can run any one of
them under a profiler exactly as the benchmark times it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import copy_checkpoint, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from .chat import build_chat_graph, message_text, thread_config, turn_inputs

CHAT_THREAD = "chat"
HISTORY_THREAD = "history"
FILTER_KEY = "user_id"
FILTER_USERS = 10


@dataclass(frozen=True)
class Throughput:
    """Turns per second, and this process's CPU per turn (all its threads). The CPU figure
    moves much less than wall-clock time when other processes crowd the machine; it leaves
    out the database server's own CPU."""

    turns_per_second: float
    cpu_ms_per_turn: float


class _Clock:
    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def rate(self, turns: int) -> Throughput:
        wall = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        return Throughput(turns / wall, cpu * 1000 / turns)


@dataclass(frozen=True)
class Sizes:
    turns: int
    threads: int
    turns_per_thread: int
    history_turns: int  # four checkpoints per turn: 75 turns make the 300-checkpoint thread
    filler_threads: int
    filler_checkpoints: int
    op_repeats: int
    history_repeats: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


FULL = Sizes(
    turns=100,
    threads=8,
    turns_per_thread=20,
    history_turns=75,
    filler_threads=50,
    filler_checkpoints=6,
    op_repeats=30,
    history_repeats=3,
)
QUICK = Sizes(
    turns=5,
    threads=2,
    turns_per_thread=3,
    history_turns=5,
    filler_threads=4,
    filler_checkpoints=2,
    op_repeats=2,
    history_repeats=1,
)


def concurrent_threads(sizes: Sizes) -> list[str]:
    return [f"chat-{i}" for i in range(sizes.threads)]


# -- chat throughput ----------------------------------------------------------------------------


async def _run_turns(graph: Any, thread_id: str, inputs: list[dict[str, Any]]) -> None:
    config = thread_config(thread_id)
    for turn_input in inputs:
        await graph.ainvoke(turn_input, config)


def _run_turns_sync(graph: Any, thread_id: str, inputs: list[dict[str, Any]]) -> None:
    config = thread_config(thread_id)
    for turn_input in inputs:
        graph.invoke(turn_input, config)


async def ainvoke_one_thread(saver: Any, sizes: Sizes) -> Throughput:
    """Turns per second of one thread driven through ``ainvoke``."""
    graph = build_chat_graph(saver, asynchronous=True)
    inputs = turn_inputs(CHAT_THREAD, sizes.turns)
    clock = _Clock()
    await _run_turns(graph, CHAT_THREAD, inputs)
    return clock.rate(sizes.turns)


async def ainvoke_concurrent(saver: Any, sizes: Sizes) -> Throughput:
    """Turns per second, all threads together, with the threads run by ``asyncio.gather``."""
    graph = build_chat_graph(saver, asynchronous=True)
    inputs = {t: turn_inputs(t, sizes.turns_per_thread) for t in concurrent_threads(sizes)}
    clock = _Clock()
    await asyncio.gather(*(_run_turns(graph, t, i) for t, i in inputs.items()))
    return clock.rate(sizes.threads * sizes.turns_per_thread)


def invoke_one_thread(saver: Any, sizes: Sizes) -> Throughput:
    graph = build_chat_graph(saver, asynchronous=False)
    inputs = turn_inputs(CHAT_THREAD, sizes.turns)
    clock = _Clock()
    _run_turns_sync(graph, CHAT_THREAD, inputs)
    return clock.rate(sizes.turns)


def invoke_concurrent(saver: Any, sizes: Sizes) -> Throughput:
    """Turns per second with one OS thread per conversation thread (a ThreadPoolExecutor)."""
    graph = build_chat_graph(saver, asynchronous=False)
    inputs = {t: turn_inputs(t, sizes.turns_per_thread) for t in concurrent_threads(sizes)}
    clock = _Clock()
    with ThreadPoolExecutor(max_workers=len(inputs)) as pool:
        futures = [pool.submit(_run_turns_sync, graph, t, i) for t, i in inputs.items()]
        for future in futures:
            future.result()
    return clock.rate(len(inputs) * sizes.turns_per_thread)


async def final_values_bytes(saver: Any, thread_id: str = CHAT_THREAD) -> int:
    """Size of the last checkpoint's channel values under the official JsonPlusSerializer:
    the yardstick for storage (one copy of the conversation, serialized)."""
    latest = await saver.aget_tuple(thread_config(thread_id))
    if latest is None:
        raise RuntimeError(f"thread {thread_id!r} has no checkpoint after the run")
    _, data = JsonPlusSerializer().dumps_typed(latest.checkpoint["channel_values"])
    return len(data)


# -- single operations on a long thread ---------------------------------------------------------


def _next_checkpoint(
    saver: Any, parent: dict[str, Any], step: int, text: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """A child checkpoint with one more message, as LangGraph would write after a step."""
    checkpoint = copy_checkpoint(parent)  # type: ignore[arg-type]
    checkpoint["id"] = str(uuid6(clock_seq=step))
    messages = list(checkpoint["channel_values"].get("messages", []))
    messages.append(AIMessage(content=text, id=f"op-{step}"))
    checkpoint["channel_values"]["messages"] = messages
    version = saver.get_next_version(checkpoint["channel_versions"].get("messages"), None)
    checkpoint["channel_versions"]["messages"] = version
    metadata = {"source": "loop", "step": step, "parents": {}}
    return checkpoint, metadata, {"messages": version}  # type: ignore[return-value]


async def _fill_other_threads(saver: Any, sizes: Sizes) -> None:
    """Small threads whose metadata carries a user id, for the cross-thread filter."""
    for index in range(sizes.filler_threads):
        thread_id = f"filler-{index}"
        config: dict[str, Any] = thread_config(thread_id)
        checkpoint: dict[str, Any] = dict(empty_checkpoint())
        for step in range(sizes.filler_checkpoints):
            checkpoint = dict(copy_checkpoint(checkpoint))  # type: ignore[arg-type]
            checkpoint["id"] = str(uuid6(clock_seq=step))
            checkpoint["channel_values"]["messages"] = [
                HumanMessage(content=message_text(f"{thread_id}/{step}"), id=f"f-{step}")
            ]
            version = saver.get_next_version(checkpoint["channel_versions"].get("messages"), None)
            checkpoint["channel_versions"]["messages"] = version
            metadata = {
                "source": "loop",
                "step": step,
                "parents": {},
                FILTER_KEY: f"user-{index % FILTER_USERS}",
            }
            config = await saver.aput(config, checkpoint, metadata, {"messages": version})


async def _median_ms(repeats: int, operation: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    samples: list[float] = []
    result: Any = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = await operation()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), result


async def prepare_operations(saver: Any, sizes: Sizes) -> int:
    """Build the long thread through the graph and the filler threads; returns the
    long thread's checkpoint count."""
    graph = build_chat_graph(saver, asynchronous=True)
    await _run_turns(graph, HISTORY_THREAD, turn_inputs(HISTORY_THREAD, sizes.history_turns))
    await _fill_other_threads(saver, sizes)
    return len([t async for t in saver.alist(thread_config(HISTORY_THREAD))])


async def single_operations(saver: Any, sizes: Sizes) -> dict[str, Any]:
    """Median milliseconds of each single saver operation on the prepared store."""
    history = thread_config(HISTORY_THREAD)
    results: dict[str, Any] = {}

    async def get_latest() -> Any:
        return await saver.aget_tuple(history)

    async def list_ten() -> int:
        return len([t async for t in saver.alist(history, limit=10)])

    wanted = {FILTER_KEY: "user-3"}

    async def list_filtered() -> int:
        return len([t async for t in saver.alist(None, filter=wanted)])

    async def whole_history() -> int:
        return len([t async for t in saver.alist(history)])

    results["get_tuple"], _ = await _median_ms(sizes.op_repeats, get_latest)
    results["list_10"], _ = await _median_ms(sizes.op_repeats, list_ten)
    results["list_filter"], results["filter_matches"] = await _median_ms(
        max(1, sizes.op_repeats // 3), list_filtered
    )
    results["history"], results["history_checkpoints"] = await _median_ms(
        sizes.history_repeats, whole_history
    )

    latest = await saver.aget_tuple(history)
    state = {"config": latest.config, "checkpoint": latest.checkpoint, "step": 10_000}

    async def put_with_writes() -> None:
        state["step"] += 1
        text = message_text(f"op/{state['step']}")
        checkpoint, metadata, versions = _next_checkpoint(
            saver, state["checkpoint"], state["step"], text
        )
        config = await saver.aput(state["config"], checkpoint, metadata, versions)
        await saver.aput_writes(
            config,
            [("messages", [AIMessage(content=text, id=f"w-{state['step']}")])],
            task_id=str(uuid.uuid4()),
        )
        state["config"], state["checkpoint"] = config, checkpoint

    results["put_with_writes"], _ = await _median_ms(sizes.op_repeats, put_with_writes)
    return results


OPERATIONS = ("put_with_writes", "get_tuple", "list_10", "list_filter", "history")
CHAT_WORKLOADS = ("ainvoke_1", "ainvoke_n", "invoke_1", "invoke_n")
