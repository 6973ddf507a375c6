"""The backend contract suite: every backend, held to the storage rules of
``core.backend`` and ``core.rules``, through the saver's API and raw inspection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import ALL_BACKENDS, saver_for

BACKENDS = [
    pytest.param(name, marks=[getattr(pytest.mark, name)] if name in ("postgres", "redis") else [])
    for name in ALL_BACKENDS
]


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def saver(backend_name: str, tmp_path: Path) -> AsyncIterator[UnifiedCheckpointSaver]:
    async with saver_for(backend_name, tmp_path) as made:
        yield made
