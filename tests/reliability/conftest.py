"""Fixtures shared by the reliability suite, and the end-of-run figures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

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


class StartedOnFirstUse:
    """A private Redis that starts when a test first asks for its ``url`` or ``cli``:
    tests of other backends take the fixture too, and must not need redis-server."""

    def __init__(self, server: PrivateRedis) -> None:
        self.server = server
        self.started = False

    def _start(self) -> PrivateRedis:
        if not self.started:
            self.server.start()
            self.started = True
        return self.server

    @property
    def url(self) -> str:
        return self._start().url

    def cli(self, *args: str) -> str:
        return self._start().cli(*args)


@pytest.fixture(scope="session")
def sandbox_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A private Redis for tests that garble stored data: if a garbled value ever made the
    server stall, only this server would stall, never the shared one."""
    server = StartedOnFirstUse(PrivateRedis(tmp_path_factory.mktemp("sandbox-redis")))
    try:
        yield cast(PrivateRedis, server)
    finally:
        if server.started:
            server.server.stop()
