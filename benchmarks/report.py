"""Medians over repetitions, the targets, the markdown report and the chart."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .savers import SPECS
from .workloads import CHAT_WORKLOADS, OPERATIONS, Sizes

CHAT_TITLES = {
    "ainvoke_1": "ainvoke, 1 thread",
    "ainvoke_n": "ainvoke, {threads} threads",
    "invoke_1": "invoke, 1 thread",
    "invoke_n": "invoke, {threads} threads",
}
OP_TITLES = {
    "put_with_writes": "put + put_writes",
    "get_tuple": "get_tuple (latest)",
    "list_10": "list(limit=10)",
    "list_filter": "list(filter) across threads",
    "history": "whole history",
}


# -- medians ------------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One saver's repetitions reduced to medians, with its status and reasons."""
    usable = [r for r in runs if r.get("status") in ("ok", "partial")]
    summary: dict[str, Any] = {"repetitions": len(usable)}
    if not usable:
        first = runs[0] if runs else {}
        summary["status"] = first.get("status", "failed")
        summary["reason"] = (
            first.get("reason")
            or "; ".join(
                f"{k}: {v.strip().splitlines()[-1]}" for k, v in (first.get("errors") or {}).items()
            )
            or "no result"
        )
        return summary
    summary["status"] = "ok" if all(r["status"] == "ok" for r in usable) else "partial"
    metrics = [r["metrics"] for r in usable]
    cpu_keys = tuple(f"{w}_cpu_ms" for w in CHAT_WORKLOADS)
    for key in (
        *CHAT_WORKLOADS,
        *cpu_keys,
        "storage_bytes",
        "values_bytes",
        "history_checkpoints_built",
    ):
        summary[key] = _median([m[key] for m in metrics if key in m])
    ops = [m["ops"] for m in metrics if "ops" in m]
    summary["ops"] = {
        key: _median([o[key] for o in ops if key in o])
        for key in (*OPERATIONS, "history_checkpoints", "filter_matches")
    }
    summary["rss_peak_bytes"] = _median([r["rss_peak_bytes"] for r in usable])
    summary["rss_baseline_bytes"] = _median([r["rss_baseline_bytes"] for r in usable])
    errors: dict[str, str] = {}
    for run in usable:
        for phase, text in (run.get("errors") or {}).items():
            errors.setdefault(phase, text.strip().splitlines()[-1])
    summary["errors"] = errors
    summary["storage_detail"] = next(
        (m["storage_detail"] for m in metrics if m.get("storage_detail")), {}
    )
    summary["load_averages"] = [
        r["load_average_at_start"] for r in usable if "load_average_at_start" in r
    ]
    summary["storage_method"] = next(
        (r["notes"]["storage"] for r in usable if r.get("notes", {}).get("storage")), None
    )
    return summary


# -- targets ------------------------------------------------------------------------------------


def _figure(run: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = run
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, (int, float)) else None


def _metric_path(metric: str) -> tuple[str, ...]:
    if metric.startswith("rss_"):
        return (metric,)
    if metric in OPERATIONS:
        return ("metrics", "ops", metric)
    return ("metrics", metric)


def paired_ratio(result: dict[str, Any], saver: str, baseline: str, metric: str) -> float | None:
    """``saver`` / ``baseline`` on ``metric``: the median of the ratios of the two savers'
    runs in the same repetition (they ran back to back, so a busy spell of the machine
    mostly cancels out)."""
    ratios = paired_ratios(result, saver, baseline, metric)
    return statistics.median(ratios) if ratios else None


def paired_ratios(result: dict[str, Any], saver: str, baseline: str, metric: str) -> list[float]:
    """The per-repetition ratios behind ``paired_ratio``."""
    runs = result.get("runs", {})
    path = _metric_path(metric)
    if baseline == "values":
        pairs = [
            (_figure(r, path), _figure(r, ("metrics", "values_bytes"))) for r in runs.get(saver, [])
        ]
    else:
        pairs = list(
            zip(
                (_figure(r, path) for r in runs.get(saver, [])),
                (_figure(r, path) for r in runs.get(baseline, [])),
                strict=False,
            )
        )
    return [a / b for a, b in pairs if a is not None and b]


@dataclass(frozen=True)
class Target:
    """A ratio of ``saver`` to ``baseline`` on ``metric`` that must reach ``threshold``."""

    title: str
    saver: str
    baseline: str  # a saver key, or "values" for the final channel values' size
    metric: str
    threshold: float
    at_least: bool  # True: ratio >= threshold is met; False: ratio <= threshold

    def ratio(self, result: dict[str, Any]) -> float | None:
        return paired_ratio(result, self.saver, self.baseline, self.metric)

    def verdict(self, result: dict[str, Any]) -> str:
        ratio = self.ratio(result)
        if ratio is None:
            return "not measured"
        met = ratio >= self.threshold if self.at_least else ratio <= self.threshold
        return "met" if met else "missed"


def targets(threads: int) -> list[Target]:
    found: list[Target] = []

    def speed(
        title: str, saver: str, baseline: str, threshold: float, workloads: tuple[str, ...]
    ) -> None:
        for workload in workloads:
            label = CHAT_TITLES[workload].format(threads=threads)
            found.append(Target(f"{title} ({label})", saver, baseline, workload, threshold, True))

    speed("SQLiteSaver >= 2x official", "sqlite", "official-sqlite", 2, ("ainvoke_1", "invoke_1"))
    speed(
        "PostgresSaver >= 2x official",
        "postgres",
        "official-postgres",
        2,
        ("ainvoke_1", "invoke_1"),
    )
    speed(
        "PostgresSaver >= 3x official",
        "postgres",
        "official-postgres",
        3,
        ("ainvoke_n", "invoke_n"),
    )
    speed("MemorySaver >= 1x InMemorySaver", "memory", "official-memory", 1, CHAT_WORKLOADS)
    speed("RedisSaver >= 1x our PostgresSaver", "redis", "postgres", 1, CHAT_WORKLOADS)
    for saver, official in (("sqlite", "official-sqlite"), ("postgres", "official-postgres")):
        name = SPECS[saver].label
        found.append(
            Target(
                f"{name} storage <= 1/10 of official", saver, official, "storage_bytes", 0.1, False
            )
        )
    for saver in ("memory", "sqlite", "postgres", "redis"):
        found.append(
            Target(
                f"{SPECS[saver].label} storage <= 3x final values",
                saver,
                "values",
                "storage_bytes",
                3,
                False,
            )
        )
    return found


# -- formatting ---------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _mb(value: float | None) -> str:
    return "—" if value is None else f"{value / 1e6:.2f}"


def _times(ratio: float | None, invert: bool = False) -> str:
    if ratio is None or (invert and not ratio):
        return "—"
    return f"{1 / ratio if invert else ratio:.2f}x"


def render_markdown(result: dict[str, Any]) -> str:
    summaries: dict[str, dict[str, Any]] = result["summaries"]
    sizes = Sizes(**result["sizes"])
    machine = result["machine"]
    order = [k for k in result["savers"] if k in summaries]
    ran = [k for k in order if summaries[k]["status"] in ("ok", "partial")]
    lines: list[str] = []
    add = lines.append

    add(f"# Benchmark: langgraph-unified-store vs the official LangGraph savers ({result['mode']})")
    add("")
    add(
        f"Run {result['started']} UTC, {result['repeat']} repetition(s), medians shown; "
        f"took {result['seconds']:.0f} s. Command: `{result['command']}`. "
        f"Code: {result.get('code', 'unknown')}."
    )
    add("")
    add(
        "Each of ours is compared with the official saver of the same backend "
        "(RedisSaver: with our PostgresSaver). Throughput ratios are ours / official (higher is "
        "better); storage and RSS ratios are ours / official (lower is better); operation "
        "speed-ups are official time / our time (higher is better). Figures are medians over "
        "the repetitions; each ratio is the median of the per-repetition ratios of two savers "
        "that ran back to back."
    )
    loads = [x for k in ran for x in summaries[k].get("load_averages", [])]
    if loads:
        add("")
        add(
            f"1-minute load average when each saver's process started: {min(loads):.2f} to "
            f"{max(loads):.2f} on {machine['cores']} cores (other processes on the machine skew "
            "timings; medians of the repetitions damp it)."
        )
    add("")
    add("## Machine")
    add("")
    add(
        f"- CPU: {machine['cpu']}, {machine['cores']} cores; RAM {machine['ram_gib']} GiB; {machine['os']}"
    )
    add(
        f"- Python {machine['python']}, SQLite {machine['sqlite']}, PostgreSQL {machine['postgresql']}, "
        f"Redis {machine['redis']}"
    )
    commit = result.get("postgres_commit_ms") or {}
    if "postgres_commit_ms" in machine:  # reports written before it moved out of machine
        commit = {"after": machine["postgres_commit_ms"]}
    if any(v is not None for v in commit.values()):
        when = ", ".join(f"{v} ms {k} the run" for k, v in commit.items() if v is not None)
        add(
            f"- PostgreSQL durable commit of a one-row INSERT (median of 100): {when}. Each put "
            "and put_writes is at least one such commit; on this shared disk it varies "
            "several-fold, and the Postgres figures with it."
        )
    add("- " + ", ".join(f"{k} {v}" for k, v in machine["packages"].items()))
    add("")
    add("## Workload")
    add("")
    add(
        f"- Chat graph: 2 nodes, `add_messages`, every message {500} characters, 3 messages and "
        f"4 checkpoints per turn. {sizes.turns} turns on one thread; {sizes.turns_per_thread} "
        f"turns on each of {sizes.threads} concurrent threads (asyncio.gather for ainvoke, a "
        "ThreadPoolExecutor for invoke). Official async savers run ainvoke, the sync ones invoke."
    )
    add(
        f"- Single operations on a {sizes.history_turns}-turn thread "
        f"(~{4 * sizes.history_turns} checkpoints) plus {sizes.filler_threads} small threads "
        f"of {sizes.filler_checkpoints} checkpoints whose metadata has a user id: median of "
        f"{sizes.op_repeats} calls (filter: {max(1, sizes.op_repeats // 3)}, history: "
        f"{sizes.history_repeats}), through the async API."
    )
    add(
        f"- Storage: bytes held after the {sizes.turns}-turn thread, next to the final "
        "checkpoint's channel values serialized by the official JsonPlusSerializer."
    )
    add("- Peak RSS: ru_maxrss of a process that ran only that saver's whole workload.")
    add(
        "- Official PostgreSQL savers use a psycopg pool of up to 8 connections (autocommit, "
        "prepare_threshold=0), each in a schema of its own."
    )
    add("")

    def ratio_of(key: str, metric: str, invert: bool = False) -> str:
        spec = SPECS[key]
        if not spec.ours:
            return ""
        return _times(paired_ratio(result, key, spec.baseline_key, metric), invert)

    threads = sizes.threads
    add("## Chat turns per second")
    add("")
    header = "| saver |"
    rule = "|---|"
    for workload in CHAT_WORKLOADS:
        header += f" {CHAT_TITLES[workload].format(threads=threads)} | ratio |"
        rule += "---:|---:|"
    add(header)
    add(rule)
    for key in ran:
        s, spec = summaries[key], SPECS[key]
        row = f"| {spec.label} |"
        for workload in CHAT_WORKLOADS:
            row += f" {_num(s.get(workload))} | {ratio_of(key, workload)} |"
        add(row)
    add("")

    add(
        "## Client CPU per turn, milliseconds\n\n"
        "CPU time of the saver's process (all threads: graph, saver, aiosqlite, I/O loop) per "
        "turn; the database server's CPU is not in it. It moves much less than turns per second "
        "when the machine is busy. Ratio: official CPU / ours (higher is better)."
    )
    add("")
    add(header)
    add(rule)
    for key in ran:
        s, spec = summaries[key], SPECS[key]
        row = f"| {spec.label} |"
        for workload in CHAT_WORKLOADS:
            metric = f"{workload}_cpu_ms"
            row += f" {_ms(s.get(metric))} | {ratio_of(key, metric, invert=True)} |"
        add(row)
    add("")

    add("## Storage and memory")
    add("")
    add(
        f"| saver | bytes after {sizes.turns} turns | ratio | x final values | peak RSS MB | ratio | measured as |"
    )
    add("|---|---:|---:|---:|---:|---:|---|")
    for key in ran:
        s, spec = summaries[key], SPECS[key]
        per_values = _times(paired_ratio(result, key, "values", "storage_bytes"))
        add(
            f"| {spec.label} | {_num(s.get('storage_bytes'))} | "
            f"{ratio_of(key, 'storage_bytes')} | {per_values} | "
            f"{_mb(s.get('rss_peak_bytes'))} | {ratio_of(key, 'rss_peak_bytes')} | "
            f"{s.get('storage_method') or '—'} |"
        )
    values_bytes = next(
        (summaries[k].get("values_bytes") for k in ran if summaries[k].get("values_bytes")), None
    )
    add("")
    add(
        f"Final channel values, serialized (JsonPlusSerializer.dumps_typed): {_num(values_bytes)} bytes."
    )
    add("")
    detailed = [k for k in ran if summaries[k].get("storage_detail")]
    if detailed:
        add(
            "Where the bytes are, MB (Postgres: tables with their indexes and TOAST; SQLite: "
            "tables and indexes apart, by dbstat; Redis: keys grouped by kind):"
        )
        add("")
        for key in detailed:
            parts = list(summaries[key]["storage_detail"].items())
            shown = ", ".join(f"{name} {size / 1e6:.3f}" for name, size in parts[:6])
            more = f", and {len(parts) - 6} more" if len(parts) > 6 else ""
            add(f"- {SPECS[key].label}: {shown}{more}")
        add("")

    add("## Single operations, milliseconds (median)")
    add("")
    header, rule = "| saver |", "|---|"
    for op in OPERATIONS:
        header += f" {OP_TITLES[op]} | speed-up |"
        rule += "---:|---:|"
    add(header)
    add(rule)
    for key in ran:
        s, spec = summaries[key], SPECS[key]
        ops = s.get("ops", {})
        row = f"| {spec.label} |"
        for op in OPERATIONS:
            row += f" {_ms(ops.get(op))} | {ratio_of(key, op, invert=True)} |"
        add(row)
    if ran:
        ops0 = summaries[ran[0]].get("ops", {})
        add("")
        add(
            f"History: {_num(ops0.get('history_checkpoints'))} checkpoints; the filter "
            f"matched {_num(ops0.get('filter_matches'))} checkpoints."
        )
    add("")

    add("## Targets (issues 6 and 7)")
    add("")
    add(
        "The verdict reads the median ratio. The range shows how far single repetitions "
        "strayed on this busy machine; the CPU column is the same comparison in client CPU "
        "per turn (baseline CPU / ours), which a busy machine disturbs less."
    )
    add("")
    add("| target | ratio (median) | per-repetition range | CPU ratio | verdict |")
    add("|---|---:|---:|---:|---|")
    for target in result["targets"]:
        ratio = target["ratio"]
        saver, baseline, metric = target["saver"], target["baseline"], target["metric"]
        spread = paired_ratios(result, saver, baseline, metric)
        shown = f"{min(spread):.2f} to {max(spread):.2f}" if len(spread) > 1 else ""
        cpu = (
            paired_ratio(result, baseline, saver, f"{metric}_cpu_ms")
            if metric in CHAT_WORKLOADS
            else None
        )
        add(
            f"| {target['title']} | {'—' if ratio is None else f'{ratio:.2f}'} | {shown} | "
            f"{'' if cpu is None else f'{cpu:.2f}'} | {target['verdict']} |"
        )
    add("")

    missing = [k for k in order if summaries[k]["status"] not in ("ok", "partial")]
    partial = [k for k in ran if summaries[k].get("errors")]
    if missing or partial:
        add("## Not run or incomplete")
        add("")
        for key in missing:
            add(f"- **{SPECS[key].label}**: {summaries[key]['status']}: {summaries[key]['reason']}")
        for key in partial:
            for phase, error in summaries[key]["errors"].items():
                add(f"- **{SPECS[key].label}**, {phase}: {error}")
        add("")
    add("Chart: `latest.png` beside this file; raw figures: `latest.json`.")
    return "\n".join(lines) + "\n"


def render_chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries: dict[str, dict[str, Any]] = result["summaries"]
    keys = [k for k in result["savers"] if summaries.get(k, {}).get("status") in ("ok", "partial")]
    threads = result["sizes"]["threads"]
    labels = [
        SPECS[k].label.replace(" (official)", "\n(official)").replace(" / ", "/\n") for k in keys
    ]
    colors = ["tab:blue" if SPECS[k].ours else "tab:gray" for k in keys]

    fig, axes = plt.subplots(2, 3, figsize=(22, 11))
    def chat_bars(ax: Any, names: list[str], value: Callable[[str, str], float | None]) -> None:
        """One bar per chat workload for each saver in ``names``, grouped by saver."""
        width = 0.8 / len(CHAT_WORKLOADS)
        for index, workload in enumerate(CHAT_WORKLOADS):
            xs = [i + (index - 1.5) * width for i in range(len(names))]
            ax.bar(
                xs,
                [value(k, workload) or 0 for k in names],
                width,
                label=CHAT_TITLES[workload].format(threads=threads),
            )

    ax = axes[0][0]
    chat_bars(ax, keys, lambda k, workload: summaries[k].get(workload))
    ax.set_title("Chat graph: turns per second (higher is better)")
    ax.set_xticks(range(len(keys)), labels, fontsize=7)
    ax.legend(fontsize=8)

    ax = axes[0][1]
    chat_bars(ax, keys, lambda k, workload: summaries[k].get(f"{workload}_cpu_ms"))
    ax.set_title("Client CPU per turn, ms (lower is better)")
    ax.set_xticks(range(len(keys)), labels, fontsize=7)
    ax.legend(fontsize=8)

    ax = axes[1][0]
    ours = [k for k in keys if SPECS[k].ours]
    chat_bars(
        ax, ours, lambda k, workload: paired_ratio(result, k, SPECS[k].baseline_key, workload)
    )
    for level, style in ((1, "-"), (2, "--"), (3, ":")):
        ax.axhline(level, color="black", linestyle=style, linewidth=0.8)
    ax.set_title("Turns/s ratio to the official saver (RedisSaver: to our PostgresSaver)")
    ax.set_xticks(
        range(len(ours)),
        [f"{SPECS[k].label}\nvs {SPECS[SPECS[k].baseline_key].async_label}" for k in ours],
        fontsize=7,
    )
    ax.legend(fontsize=8)

    ax = axes[0][2]
    stored = [(summaries[k].get("storage_bytes") or 0) / 1e6 for k in keys]
    ax.bar(range(len(keys)), stored, color=colors)
    values = next(
        (summaries[k].get("values_bytes") for k in keys if summaries[k].get("values_bytes")), None
    )
    if values:
        ax.axhline(values / 1e6, color="tab:green", linestyle="--", label="final values (1x)")
        ax.axhline(3 * values / 1e6, color="tab:red", linestyle=":", label="3x final values")
        ax.legend(fontsize=8)
    ax.set_yscale("log")
    ax.set_title(f"Storage after {result['sizes']['turns']} turns, MB (log; lower is better)")
    ax.set_xticks(range(len(keys)), labels, fontsize=7)

    ax = axes[1][1]
    width = 0.8 / len(OPERATIONS)
    for index, op in enumerate(OPERATIONS):
        xs = [i + (index - 2) * width for i in range(len(keys))]
        ax.bar(
            xs, [summaries[k].get("ops", {}).get(op) or 0 for k in keys], width, label=OP_TITLES[op]
        )
    ax.set_yscale("log")
    ax.set_title("Single operations, ms (log; lower is better)")
    ax.set_xticks(range(len(keys)), labels, fontsize=7)
    ax.legend(fontsize=8)

    ax = axes[1][2]
    ax.bar(
        range(len(keys)),
        [(summaries[k].get("rss_peak_bytes") or 0) / 1e6 for k in keys],
        color=colors,
    )
    ax.set_title("Peak RSS of the saver's process, MB (lower is better; blue = ours)")
    ax.set_xticks(range(len(keys)), labels, fontsize=7)

    fig.suptitle(
        f"langgraph-unified-store vs official savers — {result['started']} UTC, "
        f"{result['machine']['cpu']}, {result['machine']['cores']} cores"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
