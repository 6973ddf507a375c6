"""The benchmark's quick mode, so its code cannot rot. No timing is ever asserted here."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from benchmarks import run, savers

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ALWAYS_RUNNABLE = ("memory", "sqlite", "official-memory", "official-sqlite", "official-postgres")


def _ours_importable(backend: str) -> bool:
    return importlib.util.find_spec(f"langgraph_unified_store.backends.{backend}") is not None


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bench")
    assert run.main(["--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "latest.json").read_text())


def test_quick_run_writes_a_well_formed_report(quick_report: tuple[Path, dict]) -> None:
    out, result = quick_report
    markdown = (out / "latest.md").read_text()
    for section in (
        "## Machine",
        "## Chat turns per second",
        "## Storage and memory",
        "## Single operations",
        "## Targets",
    ):
        assert section in markdown
    assert (out / "latest.png").read_bytes().startswith(b"\x89PNG")
    assert result["mode"] == "quick"
    assert set(result["summaries"]) == set(savers.SPECS)
    assert result["targets"] and all(
        t["verdict"] in ("met", "missed", "not measured") for t in result["targets"]
    )


def test_every_available_saver_completed_every_phase(quick_report: tuple[Path, dict]) -> None:
    _, result = quick_report
    must_run = list(ALWAYS_RUNNABLE) + [b for b in ("postgres", "redis") if _ours_importable(b)]
    for key in must_run:
        summary = result["summaries"][key]
        assert summary["status"] == "ok", (key, summary.get("reason"), summary.get("errors"))
        for figure in (
            "ainvoke_1",
            "ainvoke_n",
            "invoke_1",
            "invoke_n",
            "storage_bytes",
            "values_bytes",
            "rss_peak_bytes",
        ):
            assert summary[figure] and summary[figure] > 0, (key, figure)
        assert all(summary["ops"][op] is not None for op in ("get_tuple", "history")), key
    for key, summary in result["summaries"].items():
        if summary["status"] == "unavailable":
            assert summary["reason"], key


def test_quick_run_leaves_nothing_on_the_servers(quick_report: tuple[Path, dict]) -> None:
    _, result = quick_report
    assert savers.sweep_run(result["run_id"]) == 0


def test_history_quick_measures_ours_before_and_after(tmp_path: Path) -> None:
    from benchmarks import history

    out = tmp_path / "history.json"
    assert history.main(["--quick", "--backends", "memory", "sqlite", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in ("memory", "sqlite"):
        assert set(result[key]) == {"checkpoints", "before", "after"}
        assert set(result[key]["after"]) == set(history.MODES)
    assert "official" in result["official-sqlite"]


def test_lifecycle_quick_deletes_the_old_threads_and_keeps_memory_flat(tmp_path: Path) -> None:
    from benchmarks import lifecycle

    out = tmp_path / "lifecycle.json"
    assert lifecycle.main(["--quick", "--backends", "sqlite", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    row = result["delete_threads"]["sqlite"]
    assert row["threads"] == 2_000 and row["kept"] == 200 and row["checkpoints_removed"] == 2_000
    bounded = result["bounded_memory"]["max_threads=100"]
    assert bounded["threads_kept"] == 100
    heap = bounded["heap_mb"]
    assert max(heap) < 2 * min(heap) + 0.5, heap
    assert result["bounded_memory"]["unbounded"]["threads_kept"] == 2_000


def test_store_quick_measures_ours_and_the_official_store_on_every_phase(tmp_path: Path) -> None:
    from benchmarks import store

    out = tmp_path / "store.json"
    assert store.main(["--quick", "--backends", "memory", "sqlite", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "quick" and report["sizes"]["items"] == 300
    for backend in ("memory", "sqlite"):
        result = report["backends"][backend]
        assert set(result["stores"]["ours"]["ops_per_s"]) == set(store.PHASES)
        assert all(rate > 0 for rate in result["stores"]["ours"]["ops_per_s"].values())
        for phase in store.TARGET_PHASES:
            assert result["ratios"][phase] is not None and result["ratios"][phase] > 0, (backend, phase)
    assert report["backends"]["memory"]["ratios"]["vector"] is not None
    # The official SQLite store needs sqlite-vec; where it cannot load, the reason is shown.
    if report["backends"]["sqlite"]["ratios"]["vector"] is None:
        assert report["backends"]["sqlite"]["unavailable"]
    assert {t["verdict"] for t in report["targets"]} <= {"met", "missed"}
