"""Reading a whole thread back: ``list()``, ``graph.get_state_history`` and ``get_tuple``
of the latest, ours next to the official saver of each backend, in one run.

    python -m benchmarks.history                  # 100 turns (400 checkpoints), 5 repeats
    python -m benchmarks.history --quick          # seconds
    python -m benchmarks.history --backends sqlite postgres --out /tmp/history.json

Our savers are measured twice on the same stored thread: as shipped ("after": each
stored item decoded once per ``list`` call, ``core.decoded_items``) and with that off
("before": ``decode_items_once = False``, every checkpoint decodes its whole message
list). The figures are medians in milliseconds, wall time and (``_cpu``) this process's
CPU time; ratios are official / ours.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from . import savers
from .chat import build_chat_graph, thread_config, turn_inputs
from .savers import SaverSpec, Store, Unavailable

THREAD = "history"
MODES = ("list", "get_state_history", "get_tuple", "list_cpu", "get_state_history_cpu")


async def _median_ms(repeats: int, operation: Callable[[], Awaitable[Any]]) -> float:
    samples: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        await operation()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def _median_cpu_ms(repeats: int, operation: Callable[[], Awaitable[Any]]) -> float:
    """This process's CPU (all threads; not a server's): steadier than wall time on a
    machine shared with other work."""
    samples: list[float] = []
    for _ in range(repeats):
        start = time.process_time()
        await operation()
        samples.append((time.process_time() - start) * 1000)
    return statistics.median(samples)


async def _measure(saver: Any, graph: Any, repeats: int) -> dict[str, float]:
    config = thread_config(THREAD)

    async def whole_list() -> int:
        return len([t async for t in saver.alist(config)])

    async def state_history() -> int:
        return len([s async for s in graph.aget_state_history(config)])

    async def latest() -> Any:
        return await saver.aget_tuple(config)

    return {
        "list": await _median_ms(repeats, whole_list),
        "get_state_history": await _median_ms(repeats, state_history),
        "get_tuple": await _median_ms(max(repeats * 4, 1), latest),
        "list_cpu": await _median_cpu_ms(repeats, whole_list),
        "get_state_history_cpu": await _median_cpu_ms(repeats, state_history),
    }


async def measure_saver(
    spec: SaverSpec, turns: int, repeats: int, folder: Path
) -> dict[str, Any]:
    """One saver's figures on a fresh ``turns``-turn thread; ours also with the cache off."""
    store = Store(f"lusbench_hist_{secrets.token_hex(3)}", folder)
    try:
        async with savers.open_async(spec, store) as saver:
            graph = build_chat_graph(saver, asynchronous=True)
            for turn_input in turn_inputs(THREAD, turns):
                await graph.ainvoke(turn_input, thread_config(THREAD))
            result: dict[str, Any] = {
                "checkpoints": len([t async for t in saver.alist(thread_config(THREAD))])
            }
            result["after" if spec.ours else "official"] = await _measure(saver, graph, repeats)
            if spec.ours:
                saver.decode_items_once = False
                result["before"] = await _measure(saver, graph, repeats)
                saver.decode_items_once = True
            return result
    finally:
        await savers.drop_store(spec, store, [THREAD])


def _table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| saver | checkpoints | " + " | ".join(f"{m} ms (x official)" for m in MODES) + " |",
        "|---|---|" + "---|" * len(MODES),
    ]
    for key, result in results.items():
        if "reason" in result:
            lines.append(f"| {key} | - | {result['reason']} |")
            continue
        spec = savers.SPECS[key]
        # The official Redis saver needs Redis modules; then ours is set against the
        # official PostgreSQL saver, the nearest server-backed one.
        baseline = results.get(f"official-{spec.backend}", {}).get("official") or results.get(
            "official-postgres", {}
        ).get("official")
        for mode in ("before", "after", "official"):
            if mode not in result:
                continue
            cells = []
            for op in MODES:
                ms = result[mode][op]
                ratio = f" ({baseline[op] / ms:.1f}x)" if baseline and mode != "official" else ""
                cells.append(f"{ms:.1f}{ratio}")
            label = key if mode == "official" else f"{key} ({mode})"
            lines.append(f"| {label} | {result['checkpoints']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def run(backends: list[str], turns: int, repeats: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="lusbench_hist_") as folder:
        for spec in savers.specs_for(backends):
            try:
                savers.check_available(spec)
                results[spec.key] = await measure_saver(spec, turns, repeats, Path(folder))
            except Unavailable as exc:
                results[spec.key] = {"reason": str(exc).replace("|", "/")}
            print(f"[history] {spec.key} done", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 turns, 1 repeat")
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=list(savers.BACKENDS))
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    turns, repeats = (3, 1) if args.quick else (args.turns, args.repeats)
    results = asyncio.run(run(args.backends, turns, repeats))
    print(_table(results))
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
