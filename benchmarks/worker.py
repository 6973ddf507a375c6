"""One saver's whole workload, in a process of its own so its peak RSS is its own.

``python -m benchmarks.worker --saver sqlite --run-id ID --out result.json [--quick]``
writes one JSON result. A phase that raises is recorded with its error and the others
still run; a saver that cannot run here at all is reported as unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import savers
from .savers import SaverSpec, Store, Unavailable
from .workloads import (
    CHAT_THREAD,
    FULL,
    HISTORY_THREAD,
    QUICK,
    Sizes,
    Throughput,
    ainvoke_concurrent,
    ainvoke_one_thread,
    concurrent_threads,
    final_values_bytes,
    invoke_concurrent,
    invoke_one_thread,
    prepare_operations,
    single_operations,
)


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class Worker:
    def __init__(self, spec: SaverSpec, sizes: Sizes, run_id: str, folder: Path) -> None:
        self.spec = spec
        self.sizes = sizes
        self.run_id = run_id
        self.folder = folder
        self.metrics: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.notes: dict[str, str] = {}

    def new_store(self, phase: str) -> Store:
        return Store(f"lusbench_{self.run_id}_{phase}_{secrets.token_hex(3)}", self.folder)

    def record(self, key: str, throughput: Throughput) -> None:
        self.metrics[key] = throughput.turns_per_second
        self.metrics[f"{key}_cpu_ms"] = throughput.cpu_ms_per_turn

    def _record_error(self, phase: str) -> None:
        self.errors[phase] = traceback.format_exc(limit=8)[-3000:]
        print(f"[{self.spec.key}] {phase} failed:\n{self.errors[phase]}", file=sys.stderr)

    # -- phases -----------------------------------------------------------------------------

    async def chat_single_async(self) -> None:
        """100 turns on one thread; also the storage and final-values figures."""
        store = self.new_store("a1")
        try:
            async with savers.open_async(self.spec, store) as saver:
                self.record("ainvoke_1", await ainvoke_one_thread(saver, self.sizes))
                self.metrics["values_bytes"] = await final_values_bytes(saver)
                keep = saver
            # Measured after close, so SQLite has folded its WAL back into the file.
            stored, how = savers.storage_bytes(self.spec, store, keep)
            self.metrics["storage_bytes"] = stored
            self.notes["storage"] = how
            self.metrics["storage_detail"] = savers.storage_detail(self.spec, store)
        finally:
            await savers.drop_store(self.spec, store, [CHAT_THREAD])

    async def chat_concurrent_async(self) -> None:
        store = self.new_store("an")
        try:
            async with savers.open_async(self.spec, store) as saver:
                self.record("ainvoke_n", await ainvoke_concurrent(saver, self.sizes))
        finally:
            await savers.drop_store(self.spec, store, concurrent_threads(self.sizes))

    async def operations(self) -> None:
        store = self.new_store("op")
        filler = [f"filler-{i}" for i in range(self.sizes.filler_threads)]
        try:
            async with savers.open_async(self.spec, store) as saver:
                self.metrics["history_checkpoints_built"] = await prepare_operations(
                    saver, self.sizes
                )
                self.metrics["ops"] = await single_operations(saver, self.sizes)
        finally:
            await savers.drop_store(self.spec, store, [HISTORY_THREAD, *filler])

    def chat_sync(
        self, key: str, run: Callable[[Any, Sizes], Throughput], threads: list[str]
    ) -> None:
        store = self.new_store(key.replace("invoke_", "i"))
        try:
            with savers.open_sync(self.spec, store) as saver:
                self.record(key, run(saver, self.sizes))
        finally:
            asyncio.run(savers.drop_store(self.spec, store, threads))

    # -- driver ------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        async_phases = {
            "ainvoke_1": self.chat_single_async,
            "ainvoke_n": self.chat_concurrent_async,
            "ops": self.operations,
        }
        for name, phase in async_phases.items():
            try:
                asyncio.run(phase())
            except Exception:
                self._record_error(name)
        sync_phases: list[tuple[str, Callable[[Any, Sizes], Throughput], list[str]]] = [
            ("invoke_1", invoke_one_thread, [CHAT_THREAD]),
            ("invoke_n", invoke_concurrent, concurrent_threads(self.sizes)),
        ]
        for key, run, threads in sync_phases:
            try:
                self.chat_sync(key, run, threads)
            except Exception:
                self._record_error(key)
        return {"metrics": self.metrics, "errors": self.errors, "notes": self.notes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--saver", required=True, choices=sorted(savers.SPECS))
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)

    spec = savers.SPECS[args.saver]
    sizes = QUICK if args.quick else FULL
    result: dict[str, Any] = {
        "saver": spec.key,
        "rss_baseline_bytes": peak_rss_bytes(),
        # Others' processes on a small machine skew timings: keep the load with the figures.
        "load_average_at_start": os.getloadavg()[0],
    }
    started = time.perf_counter()
    try:
        savers.check_available(spec)
    except Unavailable as exc:
        result.update(status="unavailable", reason=str(exc))
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"lusbench_{args.run_id}_"))
        try:
            result.update(Worker(spec, sizes, args.run_id, folder).run())
            result["status"] = "ok" if not result["errors"] else "partial"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    result["rss_peak_bytes"] = peak_rss_bytes()
    result["seconds"] = time.perf_counter() - started
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
