"""Fixtures of the CLI tests: stored history on each backend (``cli_support``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from .cli_support import CLI_BACKENDS, Stored, drop, run_graph, stored_for


@pytest.fixture(params=CLI_BACKENDS)
def cli_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stored(cli_backend: str, tmp_path: Path) -> Iterator[Stored]:
    made = stored_for(cli_backend, tmp_path)
    run_graph(made)
    try:
        yield made
    finally:
        drop(made)


@pytest.fixture
def sqlite_stored(tmp_path: Path) -> Iterator[Stored]:
    made = stored_for("sqlite", tmp_path)
    run_graph(made)
    yield made


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
