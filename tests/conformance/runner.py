"""Run LangGraph's conformance suite in full on a saver factory and demand every test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from ..syncwrap import SyncDriven

EXPECTED_TESTS = 81

SaverContext = Callable[[], AbstractAsyncContextManager[BaseCheckpointSaver[str]]]


async def assert_full_conformance(name: str, open_saver: SaverContext, api: str) -> None:
    """All 81 tests in all 8 capabilities pass, through the async API or (``api="sync"``)
    through the blocking API driven from worker threads."""

    @checkpointer_test(name=f"{name}-{api}")
    async def factory() -> AsyncIterator[BaseCheckpointSaver[str]]:
        async with open_saver() as saver:
            yield SyncDriven(saver) if api == "sync" else saver

    report = await validate(factory)
    failures = [f for result in report.results.values() for f in result.failures]
    assert not failures, "\n".join(failures)
    assert {cap.value for cap in ALL_CAPABILITIES} == {
        name for name, result in report.results.items() if result.detected
    }
    passed = sum(result.tests_passed for result in report.results.values())
    assert passed == EXPECTED_TESTS, f"{passed} of {EXPECTED_TESTS} conformance tests passed"
