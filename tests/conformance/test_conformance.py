"""LangGraph's own conformance suite, in full, on every backend, through both APIs."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.checkpoint.conformance.report import CapabilityReport, CapabilityResult

from ..support import ALL_BACKENDS, saver_for
from .runner import OUR_CAPABILITIES, assert_full_conformance, check_report


@pytest.mark.parametrize("api", ["async", "sync"])
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_conformance(backend: str, api: str, tmp_path: Path) -> None:
    await assert_full_conformance(backend, lambda: saver_for(backend, tmp_path), api)


def _report(**results: CapabilityResult) -> CapabilityReport:
    return CapabilityReport(checkpointer_name="fake", results=dict(results))


def _full(tests: int = 10) -> CapabilityResult:
    return CapabilityResult(detected=True, passed=True, tests_passed=tests)


def test_runner_accepts_a_capability_the_suite_adds_later() -> None:
    """A newer suite (e.g. delta_channel_history) reports a capability we do not override
    yet as not detected: that must not fail our CI, and a grown test count is fine."""
    ours = {cap: _full(11) for cap in OUR_CAPABILITIES}
    check_report(_report(**ours, delta_channel_history=CapabilityResult(detected=False)))


def test_runner_accepts_a_grown_suite() -> None:
    """A newer suite's capability we do not know, detected, counts; skipped tests in it
    fail nothing; a failing test in it does."""
    ours = {cap: _full(11) for cap in OUR_CAPABILITIES}
    grown = CapabilityResult(detected=True, passed=True, tests_passed=5, tests_skipped=2)
    check_report(_report(**ours, some_new_capability=grown))
    broken = CapabilityResult(
        detected=True, passed=False, tests_passed=4, tests_failed=1, failures=["new: boom"]
    )
    with pytest.raises(AssertionError):
        check_report(_report(**ours, some_new_capability=broken))


def test_we_claim_delta_history_when_the_suite_knows_it() -> None:
    from langgraph.checkpoint.conformance.capabilities import Capability

    known = {c.value for c in Capability}
    assert ("delta_channel_history" in OUR_CAPABILITIES) == ("delta_channel_history" in known)


@pytest.mark.parametrize(
    "damage",
    ["missing capability", "failed test", "skipped test", "too few tests"],
)
def test_runner_fails_when_ours_is_not_fully_conformant(damage: str) -> None:
    ours = {cap: _full(11) for cap in OUR_CAPABILITIES}
    if damage == "missing capability":
        ours["prune"] = CapabilityResult(detected=False)
    elif damage == "failed test":
        ours["list"] = CapabilityResult(
            detected=True, passed=False, tests_passed=3, tests_failed=1, failures=["list: boom"]
        )
    elif damage == "skipped test":
        ours["put"] = CapabilityResult(detected=True, passed=True, tests_passed=3, tests_skipped=1)
    else:
        ours = {cap: _full(1) for cap in OUR_CAPABILITIES}
    with pytest.raises(AssertionError):
        check_report(_report(**ours))
