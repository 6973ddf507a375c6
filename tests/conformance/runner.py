"""Run LangGraph's conformance suite in full on a saver factory and demand every test.

The suite grows between releases (new capabilities, more tests per capability), so the
runner demands what we implement rather than what today's release happens to hold: every
capability in ``OUR_CAPABILITIES`` is detected and passes with none of its tests skipped,
no test of any capability fails, and at least ``MIN_TESTS`` passed (81 in release 0.0.2).
A capability the suite adds later fails nothing by being new: not detected, or detected
with tests skipped, it is reported and accepted; only a failing test fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import Capability
from langgraph.checkpoint.conformance.report import CapabilityReport

from ..syncwrap import SyncDriven

# The capabilities every saver of ours implements (their names in the suite's report).
OUR_CAPABILITIES = frozenset(
    {
        "put",
        "put_writes",
        "get_tuple",
        "list",
        "delete_thread",
        "delete_for_runs",
        "copy_thread",
        "prune",
    }
) | (
    # Our native get_delta_channel_history, once the installed suite tests it.
    {"delta_channel_history"} if "delta_channel_history" in {c.value for c in Capability} else set()
)
MIN_TESTS = 81

SaverContext = Callable[[], AbstractAsyncContextManager[BaseCheckpointSaver[str]]]


async def assert_full_conformance(name: str, open_saver: SaverContext, api: str) -> None:
    """Every test of every capability we implement passes, through the async API or
    (``api="sync"``) through the blocking API driven from worker threads."""

    @checkpointer_test(name=f"{name}-{api}")
    async def factory() -> AsyncIterator[BaseCheckpointSaver[str]]:
        async with open_saver() as saver:
            yield SyncDriven(saver) if api == "sync" else saver

    check_report(await validate(factory))


def check_report(report: CapabilityReport) -> None:
    """Fail unless the report shows full conformance for what we implement (module doc)."""
    failures = [f for result in report.results.values() for f in result.failures]
    assert not failures, "\n".join(failures)
    failed = {cap: r.tests_failed for cap, r in report.results.items() if r.tests_failed}
    assert not failed, f"tests failed: {failed}"
    detected = {cap for cap, result in report.results.items() if result.detected}
    assert detected >= OUR_CAPABILITIES, f"not detected: {sorted(OUR_CAPABILITIES - detected)}"
    for cap in OUR_CAPABILITIES:
        result = report.results[cap]
        assert result.passed is True and result.tests_passed > 0, f"{cap}: {result}"
        assert result.tests_failed == 0 and result.tests_skipped == 0, f"{cap}: {result}"
    passed = sum(report.results[cap].tests_passed for cap in detected)
    assert passed >= MIN_TESTS, f"only {passed} conformance tests passed (at least {MIN_TESTS})"
