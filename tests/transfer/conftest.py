"""Fixtures of the transfer tests: a source and a target saver on any two backends, and
stores (on ``tests.store``'s places) with a clock of whole seconds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..store.conftest import DIMS, FakeClock, Place, fake_embed, new_place
from ..support import saver_for

INDEX: dict[str, Any] = {"dims": DIMS, "embed": fake_embed, "fields": ["text"]}


@pytest.fixture
async def source(source_backend: str, tmp_path: Path) -> AsyncIterator[UnifiedCheckpointSaver]:
    (tmp_path / "source").mkdir()
    async with saver_for(source_backend, tmp_path / "source") as made:
        yield made


@pytest.fixture
async def target(target_backend: str, tmp_path: Path) -> AsyncIterator[UnifiedCheckpointSaver]:
    (tmp_path / "target").mkdir()
    async with saver_for(target_backend, tmp_path / "target") as made:
        yield made


@pytest.fixture
def places(tmp_path: Path) -> Iterator[list[Place]]:
    """Store places a test opens (``open_place``), dropped afterwards."""
    made: list[Place] = []
    yield made
    for place in made:
        place.drop()


def open_place(places: list[Place], backend: str, directory: Path) -> Place:
    directory.mkdir(parents=True, exist_ok=True)
    place = new_place(backend, directory)
    places.append(place)
    return place


def store_on(place: Place, clock: FakeClock) -> Any:
    return place.store(index=INDEX, clock=clock)
