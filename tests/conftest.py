from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from .support import ALL_BACKENDS, POSTGRES_DSN, saver_for


@pytest.fixture(params=ALL_BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def saver(backend_name: str, tmp_path: Path) -> AsyncIterator[UnifiedCheckpointSaver]:
    async with saver_for(backend_name, tmp_path) as made:
        yield made


@pytest.fixture
async def admin() -> AsyncIterator[Any]:
    """A plain asyncpg connection to the test database, for looking behind a saver."""
    connection = await asyncpg.connect(POSTGRES_DSN)
    try:
        yield connection
    finally:
        await connection.close()
