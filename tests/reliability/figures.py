"""Figures the reliability suite reports at the end of a run, per backend.

Tests add to these counters as they verify things; ``conftest.py`` prints them in
the terminal summary so a CI log shows what was actually exercised, not just "passed".
"""

from __future__ import annotations

from collections import Counter, defaultdict

KILLS_SURVIVED = "kills survived"
CHECKPOINTS_VERIFIED = "checkpoints verified"
WRITES_VERIFIED = "writes verified"
CONCURRENT_WRITERS = "concurrent writers"
FAULTS_SURVIVED = "faults survived"
HOSTILE_INPUTS = "hostile inputs tried"
PAYLOADS_REFUSED = "unsafe payloads refused"
GC_ROUNDS = "collections raced"
PUTS_RESENT = "puts re-sent after a collection"

ORDER = (
    KILLS_SURVIVED,
    CHECKPOINTS_VERIFIED,
    WRITES_VERIFIED,
    CONCURRENT_WRITERS,
    FAULTS_SURVIVED,
    HOSTILE_INPUTS,
    PAYLOADS_REFUSED,
    GC_ROUNDS,
    PUTS_RESENT,
)

_counts: defaultdict[str, Counter[str]] = defaultdict(Counter)


def count(backend: str, what: str, n: int = 1) -> None:
    _counts[backend][what] += n


def table() -> list[str]:
    """The figures as aligned text lines; empty when nothing was counted."""
    if not _counts:
        return []
    backends = sorted(_counts, key=lambda b: ("memory", "sqlite", "postgres", "redis").index(b)
                      if b in ("memory", "sqlite", "postgres", "redis") else 9)
    width = max(len(w) for w in ORDER)
    lines = [f"{'':<{width}}  " + "  ".join(f"{b:>9}" for b in backends)]
    for what in ORDER:
        if not any(_counts[b][what] for b in backends):
            continue
        lines.append(
            f"{what:<{width}}  " + "  ".join(f"{_counts[b][what] or '-':>9}" for b in backends)
        )
    if "memory" in backends:
        lines.append("(memory lives in the test process: no crash or server fault applies to it)")
    return lines
