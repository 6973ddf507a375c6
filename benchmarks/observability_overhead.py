"""What the structured events cost on the hot path: N blocking puts, then N get_tuples, on
MemorySaver and SQLiteSaver (a temporary file), with the library's loggers at WARNING
(events off, the default) and, for comparison, at DEBUG into a handler that drops them.

Run: PYTHONPATH=$PWD python -m benchmarks.observability_overhead [N] [repeats]
Prints the best of ``repeats`` runs per case, in microseconds per call.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import empty_checkpoint

from langgraph_unified_store import MemorySaver, SQLiteSaver


def _run(saver: Any, n: int) -> tuple[float, float]:
    """Microseconds per put and per get_tuple over ``n`` checkpoints on one thread."""
    configs = []
    parent: dict[str, Any] = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    checkpoints = []
    for i in range(n):
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"n": i, "text": "hello"}
        checkpoint["channel_versions"] = {"n": f"{i + 1:08x}.000000", "text": "00000001.000000"}
        checkpoints.append(checkpoint)
    started = time.perf_counter()
    for i, checkpoint in enumerate(checkpoints):
        versions = {"n": checkpoint["channel_versions"]["n"]} if i else dict(checkpoint["channel_versions"])
        parent = saver.put(parent, checkpoint, {"step": i}, versions)
        configs.append(parent)
    put_us = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for config in configs:
        saver.get_tuple(config)
    get_us = (time.perf_counter() - started) / n * 1e6
    return put_us, get_us


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    library = logging.getLogger("langgraph_unified_store")
    library.propagate = False
    library.addHandler(logging.NullHandler())
    for level in ("WARNING", "DEBUG"):
        library.setLevel(level)
        for name in ("memory", "sqlite"):
            best_put = best_get = float("inf")
            for _ in range(repeats):
                with tempfile.TemporaryDirectory() as tmp:
                    saver = (
                        MemorySaver() if name == "memory"
                        else SQLiteSaver(str(Path(tmp) / "bench.sqlite"))
                    )
                    with saver:
                        put_us, get_us = _run(saver, n)
                best_put, best_get = min(best_put, put_us), min(best_get, get_us)
            print(f"{name:7} loggers at {level:8} put {best_put:7.2f} us  get_tuple {best_get:7.2f} us")


if __name__ == "__main__":
    main()
