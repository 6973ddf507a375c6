"""Run the whole benchmark: every saver in its own process, repetitions interleaved.

    python -m benchmarks.run                      # full run, 3 repetitions, ~10 minutes
    python -m benchmarks.run --quick              # seconds; what the test suite runs
    python -m benchmarks.run --repeat 5 --backends sqlite postgres --out /tmp/bench

Writes ``latest.md``, ``latest.png`` and ``latest.json`` into ``--out`` (default
``benchmarks/results``; ``benchmarks/results/quick`` for ``--quick``) and prints which
targets are met. It never fails because a saver is missing: that row says why.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import report, savers
from .machine import machine_facts, postgres_commit_ms
from .workloads import FULL, QUICK

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def code_version() -> str:
    """The commit measured, and whether the saver code differed from it (a shared tree)."""
    import os

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "langgraph_unified_store"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return f"{commit} (with uncommitted saver changes)" if dirty else commit
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("LUS_BENCH_COMMIT", "unknown (not a git checkout)")


def run_worker(key: str, run_id: str, quick: bool, timeout: float) -> dict[str, Any]:
    """One saver's workload in a fresh interpreter; any crash becomes a 'failed' result."""
    with tempfile.TemporaryDirectory(prefix="lusbench_") as folder:
        out = Path(folder) / "result.json"
        command = [
            sys.executable,
            "-m",
            "benchmarks.worker",
            "--saver",
            key,
            "--run-id",
            run_id,
            "--out",
            str(out),
        ]
        if quick:
            command.append("--quick")
        try:
            finished = subprocess.run(
                command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return {"saver": key, "status": "failed", "reason": f"timed out after {timeout:.0f} s"}
        if out.exists():
            result: dict[str, Any] = json.loads(out.read_text())
            if finished.stderr.strip() and result.get("errors"):
                result["stderr_tail"] = finished.stderr[-2000:]
            return result
        tail = (finished.stderr or finished.stdout).strip().splitlines()[-5:]
        return {
            "saver": key,
            "status": "failed",
            "reason": f"worker exited {finished.returncode}: {' | '.join(tail)}",
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and 1 repetition: checks the code, not the speed",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="repetitions per saver (default 3, or 1 with --quick)",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=savers.BACKENDS,
        default=list(savers.BACKENDS),
        help="backends to measure (ours + official)",
    )
    parser.add_argument(
        "--savers",
        nargs="+",
        choices=sorted(savers.SPECS),
        help="exact savers to measure instead of --backends",
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for the report")
    parser.add_argument(
        "--rerender",
        action="store_true",
        help="measure nothing: rebuild the report in --out from its latest.json",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds one saver's process may take (default 600, quick 120)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    out: Path = args.out or (HERE / "results" / "quick" if args.quick else HERE / "results")
    out.mkdir(parents=True, exist_ok=True)
    if args.rerender:
        write_report(json.loads((out / "latest.json").read_text()), out)
        return 0
    timeout = args.timeout or (120.0 if args.quick else 600.0)
    if args.savers:
        chosen = [savers.SPECS[k] for k in args.savers]
    else:
        chosen = savers.specs_for(args.backends)
    run_id = secrets.token_hex(4)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    print(
        f"benchmark run {run_id}: {', '.join(s.key for s in chosen)}; "
        f"{repeat} repetition(s){' (quick)' if args.quick else ''}",
        flush=True,
    )

    uses_postgres = any(spec.backend == "postgres" for spec in chosen)
    commit_before = postgres_commit_ms() if uses_postgres else None
    runs: dict[str, list[dict[str, Any]]] = {spec.key: [] for spec in chosen}
    try:
        for repetition in range(repeat):
            # Interleaved, so a slow spell of the machine hits every saver alike.
            for spec in chosen:
                if runs[spec.key] and runs[spec.key][0].get("status") == "unavailable":
                    continue
                outcome = run_worker(spec.key, run_id, args.quick, timeout)
                runs[spec.key].append(outcome)
                print(f"  [{repetition + 1}/{repeat}] {spec.key}: {_one_line(outcome)}", flush=True)
    finally:
        leftover = savers.sweep_run(run_id)
        if leftover:
            print(f"  swept {leftover} leftover schema(s)/key(s) of this run", flush=True)

    sizes = QUICK if args.quick else FULL
    result: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "started": started.strftime("%Y-%m-%d %H:%M"),
        "seconds": time.perf_counter() - clock,
        "command": "python -m benchmarks.run "
        + shlex.join(argv if argv is not None else sys.argv[1:]),
        "repeat": repeat,
        "run_id": run_id,
        "code": code_version(),
        "sizes": sizes.as_dict(),
        "machine": machine_facts(),
        # The commit floor moves with other work on the disk: taken before and after.
        "postgres_commit_ms": {
            "before": commit_before,
            "after": postgres_commit_ms() if uses_postgres else None,
        },
        "savers": [spec.key for spec in chosen],
        "runs": runs,
    }
    write_report(result, out)
    return 0


def write_report(result: dict[str, Any], out: Path) -> None:
    """Medians, targets, markdown, chart and JSON from the raw runs in ``result``."""
    runs: dict[str, list[dict[str, Any]]] = result["runs"]
    result["summaries"] = {key: report.summarize(results) for key, results in runs.items()}
    result["targets"] = [
        {
            "title": t.title,
            "saver": t.saver,
            "baseline": t.baseline,
            "metric": t.metric,
            "threshold": t.threshold,
            "ratio": t.ratio(result),
            "verdict": t.verdict(result),
        }
        for t in report.targets(result["sizes"]["threads"])
        if t.saver in runs and (t.baseline == "values" or t.baseline in runs)
    ]
    (out / "latest.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "latest.md").write_text(report.render_markdown(result))
    report.render_chart(result, out / "latest.png")

    quick = result["mode"] == "quick"
    print(f"\nTargets ({'quick sizes: not meaningful' if quick else 'full run'}):")
    for target in result["targets"]:
        ratio = "—" if target["ratio"] is None else f"{target['ratio']:.2f}"
        print(f"  {target['verdict']:>12}  {ratio:>7}  {target['title']}")
    print(
        f"\nreport: {out / 'latest.md'}  chart: {out / 'latest.png'}  ({result['seconds']:.0f} s)"
    )


def _one_line(result: dict[str, Any]) -> str:
    status = result.get("status")
    if status not in ("ok", "partial"):
        return f"{status}: {result.get('reason', '')[:160]}"
    m = result.get("metrics", {})
    figures = ", ".join(
        f"{k}={m[k]:.0f}/s" for k in ("ainvoke_1", "ainvoke_n", "invoke_1", "invoke_n") if k in m
    )
    if "storage_bytes" in m:
        figures += f", storage={m['storage_bytes'] / 1e6:.2f} MB"
    figures += (
        f", rss={result.get('rss_peak_bytes', 0) / 1e6:.0f} MB, {result.get('seconds', 0):.1f} s"
    )
    errors = result.get("errors") or {}
    return f"{status}: {figures}" + (f"; failed phases: {', '.join(errors)}" if errors else "")


if __name__ == "__main__":
    raise SystemExit(main())
