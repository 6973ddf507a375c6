"""Profile one saver on one benchmark workload, exactly as the benchmark runs it.

    python -m benchmarks.profile --saver sqlite --workload ainvoke_1
    python -m benchmarks.profile --saver postgres --workload invoke_n --tool yappi --clock wall

Prints the hot spots by own time and by cumulative time, as file:line, so a missed target
can be traced to the code that costs it. ``yappi`` (if installed) sees every thread, which
the blocking API and aiosqlite need; ``cprofile`` sees only the main thread.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import savers
from .workloads import (
    FULL,
    QUICK,
    Sizes,
    ainvoke_concurrent,
    ainvoke_one_thread,
    invoke_concurrent,
    invoke_one_thread,
    prepare_operations,
    single_operations,
)

WORKLOADS = ("ainvoke_1", "ainvoke_n", "invoke_1", "invoke_n", "ops", "ops_prepare")


@dataclass
class Spot:
    where: str
    calls: int
    own: float
    total: float


def _short(path: str) -> str:
    for marker in ("site-packages/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


class Profiler:
    def __init__(self, tool: str, clock: str) -> None:
        if tool == "auto":
            try:
                import yappi  # noqa: F401

                tool = "yappi"
            except ImportError:
                tool = "cprofile"
        self.tool = tool
        self.clock = clock
        self._cprofile = cProfile.Profile() if tool == "cprofile" else None

    def start(self) -> None:
        if self._cprofile is not None:
            self._cprofile.enable()
            return
        import yappi

        yappi.set_clock_type(self.clock)
        yappi.start(builtins=True)

    def stop(self) -> list[Spot]:
        if self._cprofile is not None:
            self._cprofile.disable()
            stats = pstats.Stats(self._cprofile).stats  # type: ignore[attr-defined]
            return [
                Spot(f"{_short(file)}:{line}({func})", calls, own, total)
                for (file, line, func), (_, calls, own, total, _) in stats.items()
            ]
        import yappi

        yappi.stop()
        spots = [
            Spot(f"{_short(s.module)}:{s.lineno}({s.name})", s.ncall, s.tsub, s.ttot)
            for s in yappi.get_func_stats()
        ]
        yappi.clear_stats()
        return spots


def _print_spots(spots: list[Spot], elapsed: float, top: int, only: str | None) -> None:
    def show(title: str, ranked: list[Spot]) -> None:
        print(f"\n{title}")
        print(f"{'own s':>8} {'total s':>8} {'calls':>9}  where")
        for spot in ranked[:top]:
            print(f"{spot.own:8.3f} {spot.total:8.3f} {spot.calls:9d}  {spot.where}")

    print(f"\nworkload took {elapsed:.2f} s (under the profiler)")
    show("Hot spots by own time:", sorted(spots, key=lambda s: s.own, reverse=True))
    chosen = [s for s in spots if only is None or only in s.where]
    label = f" in {only}" if only else ""
    show(f"By cumulative time{label}:", sorted(chosen, key=lambda s: s.total, reverse=True))


def profile(
    saver_key: str, workload: str, sizes: Sizes, profiler: Profiler
) -> tuple[list[Spot], float]:
    spec = savers.SPECS[saver_key]
    savers.check_available(spec)
    folder = Path(tempfile.mkdtemp(prefix="lusbench_profile_"))
    store = savers.Store(f"lusbench_profile_{secrets.token_hex(4)}", folder)
    threads = ["chat", *(f"chat-{i}" for i in range(sizes.threads)), "history"]
    threads += [f"filler-{i}" for i in range(sizes.filler_threads)]
    try:
        if workload.startswith("invoke"):
            run: Callable[[Any, Sizes], Any] = (
                invoke_one_thread if workload == "invoke_1" else invoke_concurrent
            )
            with savers.open_sync(spec, store) as saver:
                profiler.start()
                start = time.perf_counter()
                run(saver, sizes)
                elapsed = time.perf_counter() - start
                return profiler.stop(), elapsed
        return asyncio.run(_profile_async(spec, store, workload, sizes, profiler))
    finally:
        asyncio.run(savers.drop_store(spec, store, threads))
        shutil.rmtree(folder, ignore_errors=True)


async def _profile_async(
    spec: savers.SaverSpec, store: savers.Store, workload: str, sizes: Sizes, profiler: Profiler
) -> tuple[list[Spot], float]:
    async with savers.open_async(spec, store) as saver:
        if workload == "ops":
            await prepare_operations(saver, sizes)
        profiler.start()
        start = time.perf_counter()
        if workload == "ainvoke_1":
            await ainvoke_one_thread(saver, sizes)
        elif workload == "ainvoke_n":
            await ainvoke_concurrent(saver, sizes)
        elif workload == "ops_prepare":
            await prepare_operations(saver, sizes)
        else:
            await single_operations(saver, sizes)
        elapsed = time.perf_counter() - start
        return profiler.stop(), elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--saver", required=True, choices=sorted(savers.SPECS))
    parser.add_argument("--workload", required=True, choices=WORKLOADS)
    parser.add_argument("--tool", choices=("auto", "yappi", "cprofile"), default="auto")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="yappi's clock: cpu for hot code, wall to see waiting too",
    )
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--only",
        default="langgraph_unified_store",
        help="substring of file paths for the cumulative table ('' for all)",
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)

    profiler = Profiler(args.tool, args.clock)
    print(
        f"profiling {args.saver} on {args.workload} with {profiler.tool}"
        f"{f' ({args.clock} clock)' if profiler.tool == 'yappi' else ''}",
        file=sys.stderr,
    )
    spots, elapsed = profile(args.saver, args.workload, QUICK if args.quick else FULL, profiler)
    _print_spots(spots, elapsed, args.top, args.only or None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
