"""Fixtures shared by the reliability suite, and the end-of-run figures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import figures
from .private_servers import PrivateRedis


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = figures.table()
    if not lines:
        return
    terminalreporter.section("reliability figures (per backend)")
    for line in lines:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def sandbox_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A private Redis for tests that garble stored data: if a garbled value ever made the
    server stall, only this server would stall, never the shared one."""
    server = PrivateRedis(tmp_path_factory.mktemp("sandbox-redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
