"""LangGraph's own conformance suite, in full, on every backend, through both APIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..support import ALL_BACKENDS, saver_for
from .runner import assert_full_conformance


@pytest.mark.parametrize("api", ["async", "sync"])
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_conformance(backend: str, api: str, tmp_path: Path) -> None:
    await assert_full_conformance(backend, lambda: saver_for(backend, tmp_path), api)
