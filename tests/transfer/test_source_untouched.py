"""An export creates nothing in its source: a database only a saver used keeps its
tables, one never set up exports as empty and stays so, and one an older release wrote
(saver tables, no store tables) is refused rather than migrated. Told by the list of
tables before and after, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from langgraph_unified_store.errors import CheckpointNotFoundError
from langgraph_unified_store.transfer import ExportSourceError, aexport_to

from ..store.conftest import Place, new_place
from ..support import open_saver
from ..test_migrations import _v1_database
from ..test_postgres_migration import load_version_1
from .histories import build_history

BACKENDS = ("sqlite", "postgres")
STORE_TABLES = {"sqlite": "memory_items", "postgres": "lus_memory_items"}
PG_TABLES = "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1"
PG_SCHEMA = "SELECT count(*) FROM pg_namespace WHERE nspname = $1"
SQLITE_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1"


@pytest.fixture
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    made = new_place(str(request.param), tmp_path)
    yield made
    made.drop()


async def tables(place: Place, admin: Any) -> tuple[bool, list[str]]:
    """Whether the place exists (the file, the schema), and its tables' names."""
    if place.backend == "sqlite":
        path = Path(str(place.location))
        if not path.exists():
            return False, []
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            return True, [row[0] for row in db.execute(SQLITE_TABLES)]
        finally:
            db.close()
    exists = bool(await admin.fetchval(PG_SCHEMA, place.location))
    return exists, [row[0] for row in await admin.fetch(PG_TABLES, place.location)]


async def export_all(place: Place, **options: Any) -> bytes:
    """The saver and the store of ``place``, exported together."""
    saver = open_saver(place.backend, str(place.location))
    store = place.store()
    try:
        exported = io.BytesIO()
        await aexport_to(exported, saver, store, **options)
        return exported.getvalue()
    finally:
        await store.aclose()
        await saver.aclose()


def trailer(exported: bytes) -> Any:
    return orjson.loads(exported.splitlines()[-1])


@pytest.mark.parametrize("place", BACKENDS, indirect=True)
async def test_a_database_only_a_saver_used_keeps_its_tables(place: Place, admin: Any) -> None:
    async with open_saver(place.backend, str(place.location)) as saver:
        threads = await build_history(saver, turns=1)
    before = await tables(place, admin)
    assert before[0] and STORE_TABLES[place.backend] in before[1]  # the saver's setup made them
    exported = await export_all(place)
    assert trailer(exported)["threads"] == len(threads)
    assert await tables(place, admin) == before


@pytest.mark.parametrize("place", BACKENDS, indirect=True)
async def test_a_database_never_set_up_exports_empty_and_stays_empty(place: Place, admin: Any) -> None:
    if place.backend == "sqlite":
        Path(str(place.location)).touch()  # a file, with no table in it
    before = await tables(place, admin)
    exported = await export_all(place)
    assert trailer(exported) == {
        "kind": "trailer", "threads": 0, "checkpoints": 0, "blobs": 0, "writes": 0, "store_items": 0,
    }
    with pytest.raises(CheckpointNotFoundError, match="'t' has no checkpoint"):
        await export_all(place, threads=["t"])
    assert await tables(place, admin) == before
    assert before[1] == [] and before[0] == (place.backend == "sqlite")  # no schema was made


@pytest.mark.parametrize("place", BACKENDS, indirect=True)
async def test_a_saver_only_database_of_an_older_release_is_refused_not_migrated(
    place: Place, admin: Any
) -> None:
    if place.backend == "sqlite":
        _v1_database(Path(str(place.location)))
    else:
        await load_version_1(admin, str(place.location))
    before = await tables(place, admin)
    assert STORE_TABLES[place.backend] not in before[1]
    with pytest.raises(ExportSourceError, match=r"version 1, this code expects version \d+.*run setup\(\) there first"):
        await export_all(place)
    assert await tables(place, admin) == before
    assert STORE_TABLES[place.backend] not in (await tables(place, admin))[1]
