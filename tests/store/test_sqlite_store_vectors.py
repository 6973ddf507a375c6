"""SQLite's vector search ranks in SQL with sqlite-vec (``backends.sqlite.vectors``) and
still answers exactly as ``InMemoryStore`` does: SQL picks candidates by float32 cosine,
the core re-ranks them in float64. Also: files from before migration 5 (float64 vectors
only) upgrade and search alike, and stored vectors that are not whole give
``CorruptDataError`` naming the item, never a raw sqlite3 error.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.memory import InMemoryStore

from langgraph_unified_store.backends.sqlite import SCHEMA_VERSION
from langgraph_unified_store.backends.sqlite.store import SQLiteStore
from langgraph_unified_store.backends.sqlite.vectors import (
    connect,
    cosine_error_bound,
    unit_float32,
)
from langgraph_unified_store.core.store_rules import cosine_scores
from langgraph_unified_store.errors import BackendUnavailableError, CorruptDataError

from .conftest import FakeClock
from .test_store_semantic import _same

sqlite_vec = pytest.importorskip("sqlite_vec")

DIMS = 8


def _vector(text: str) -> list[float]:
    """Deterministic, with ties and zeros on purpose: texts "same ..." share a vector,
    "zero ..." embed to the zero vector, the rest hash to small integers in [-3, 3]."""
    if text.startswith("same"):
        return [1.0, 2.0, 0.0, -1.0, 0.5, 0.0, 3.0, 1.0]
    if text.startswith("zero"):
        return [0.0] * DIMS
    digest = hashlib.sha256(text.encode()).digest()
    return [float(b % 7 - 3) for b in digest[:DIMS]]


def _embed(texts: list[str]) -> list[list[float]]:
    return [_vector(t) for t in texts]


INDEX: dict[str, Any] = {"dims": DIMS, "embed": _embed, "fields": ["text", "title"]}


def _items(count: int) -> list[tuple[tuple[str, ...], str, dict[str, Any], Any]]:
    """``count`` items in sorted (namespace, key) order, so that with a standing clock our
    unranked order is InMemoryStore's insertion order (ties and the scoreless fill agree)."""
    made = []
    for n in range(count):
        value: dict[str, Any] = {"text": f"note {n}", "title": f"title {n % 37}", "kind": "ab"[n % 2]}
        if n % 11 == 0:
            value["text"] = f"same {n}"
        if n % 13 == 0:
            value["title"] = f"zero {n}"
        index: Any = False if n % 17 == 0 else None  # some scoreless
        made.append((("docs", "g" + str(n % 3)), f"k{n:04d}", value, index))
    return sorted(made, key=lambda item: (".".join(item[0]), item[1]))


def _fill(store: Any, items: list[tuple[tuple[str, ...], str, dict[str, Any], Any]]) -> None:
    for namespace, key, value, index in items:
        if index is None:
            store.put(namespace, key, value)
        else:
            store.put(namespace, key, value, index=index)


def _counting(store: SQLiteStore) -> list[int]:
    """Counts the searches sqlite-vec answered (rank_candidates gave candidates)."""
    answered = [0]
    rank = store.backend.rank_candidates

    async def counted(*args: Any) -> Any:
        found = await rank(*args)
        answered[0] += found is not None
        return found

    store.backend.rank_candidates = counted  # type: ignore[method-assign]
    return answered


SEARCHES: list[dict[str, Any]] = [
    {"query": "note 3"},
    {"query": "same"},  # 28 tied best items: SQL's candidates widen past the ties
    {"query": "note 40", "limit": 5, "offset": 30},
    {"query": "title 5", "limit": 400},  # every item: then the scoreless fill
    {"query": "note 7", "limit": 30, "offset": 280},  # past the scored ones
    {"query": "note 9", "filter": {"kind": "a"}, "limit": 15},
    {"query": "note 9", "filter": {"kind": {"$eq": "b"}}, "limit": 15, "offset": 4},
    {"query": "note 2", "prefix": ("docs", "g1"), "limit": 12},
    {"query": "note 2", "limit": 0},
]


def test_the_store_connection_runs_sqlite_vec(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.sqlite", index=INDEX) as store:  # type: ignore[arg-type]
        store.setup()
        version = store.backend._connection.run_blocking(lambda db: db.execute("SELECT vec_version()").fetchone()[0])
        assert version.startswith("v") and store.backend.ranks_in_sql


def test_the_store_and_plain_sqlite3_share_one_sqlite_and_its_locks(tmp_path: Path) -> None:
    """sqlite-vec runs inside the SQLite of the ``sqlite3`` module: a plain sqlite3
    connection's write lock holds the store off (two copies of SQLite in one process
    would both take it, and lose writes)."""
    path = tmp_path / "s.sqlite"
    with SQLiteStore(path, index=INDEX, busy_timeout=0) as store:  # type: ignore[arg-type]
        store.put(("n",), "old", {"text": "note 1"})
        assert store.backend.ranks_in_sql
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(BackendUnavailableError):
                store.put(("n",), "new", {"text": "note 2"})
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert [i.key for i in store.search(("n",), query="note 1")] == ["old"]


def test_ranking_over_hundreds_of_items_matches_in_memory_store(tmp_path: Path) -> None:
    items = _items(300)
    reference = InMemoryStore(index=INDEX)  # type: ignore[arg-type]
    _fill(reference, items)
    with SQLiteStore(tmp_path / "s.sqlite", index=INDEX, clock=FakeClock()) as store:  # type: ignore[arg-type]
        _fill(store, items)
        answered = _counting(store)
        for search in SEARCHES:
            options = dict(search)
            prefix = options.pop("prefix", ("docs",))
            want = reference.search(prefix, **options)
            assert want or not options.get("limit", 10), search
            _same(store.search(prefix, **options), want)
        assert answered[0] == len(SEARCHES)
        # A zero query scores 0 everywhere in the core (InMemoryStore gives NaN): the
        # unranked order decides, as when the core ranks every match.
        in_sql = [store.search(("docs",), query="zero", limit=n) for n in (5, 60)]
        store.backend.ranks_in_sql = False
        _same(in_sql[0], store.search(("docs",), query="zero", limit=5))
        _same(in_sql[1], store.search(("docs",), query="zero", limit=60))
        store.backend.ranks_in_sql = True
        assert answered[0] == len(SEARCHES) + 2
        # A filter beyond string equality ranks every match in the core, alike.
        options = {"query": "note 5", "filter": {"kind": "a", "title": {"$ne": "title 3"}}, "limit": 9}
        _same(store.search(("docs",), **options), reference.search(("docs",), **options))
        assert answered[0] == len(SEARCHES) + 2


def test_ties_past_the_candidates_widen_them(tmp_path: Path) -> None:
    """150 items of one vector: no float32 margin separates them, so SQL's candidates
    grow (32, 128, 512) until they hold every item; ties keep InMemoryStore's order."""
    items = [(("t",), f"k{n:03d}", {"text": f"same {n}"}, None) for n in range(150)]
    reference = InMemoryStore(index=INDEX)  # type: ignore[arg-type]
    _fill(reference, items)
    with SQLiteStore(tmp_path / "s.sqlite", index=INDEX, clock=FakeClock()) as store:  # type: ignore[arg-type]
        _fill(store, items)
        answered = _counting(store)
        for options in ({"limit": 3}, {"limit": 5, "offset": 140}, {"limit": 20, "offset": 60}):
            _same(store.search(("t",), query="same", **options), reference.search(("t",), query="same", **options))
        assert answered[0] == 3


async def test_async_ranking_uses_sqlite_vec_too(tmp_path: Path) -> None:
    items = _items(120)
    reference = InMemoryStore(index=INDEX)  # type: ignore[arg-type]
    _fill(reference, items)
    async with SQLiteStore(tmp_path / "s.sqlite", index=INDEX, clock=FakeClock()) as store:  # type: ignore[arg-type]
        for namespace, key, value, index in items:
            await store.aput(namespace, key, value, index=index)
        answered = _counting(store)
        for search in SEARCHES:
            options = dict(search)
            prefix = options.pop("prefix", ("docs",))
            _same(await store.asearch(prefix, **options), reference.search(prefix, **options))
        assert answered[0] == len(SEARCHES)


def _as_version_4(path: Path) -> None:
    """What the release before migration 5 left: memory_vectors without the copies."""
    db = sqlite3.connect(path)
    db.execute("DROP TABLE memory_vector_copies")
    db.execute("DELETE FROM lus_schema_migrations WHERE version = 5")
    db.commit()
    db.close()


def test_a_version_4_file_is_upgraded_and_searchable(tmp_path: Path) -> None:
    path = tmp_path / "v4.sqlite"
    items = _items(90)
    with SQLiteStore(path, index=INDEX, clock=FakeClock()) as store:  # type: ignore[arg-type]
        _fill(store, items)
    _as_version_4(path)
    reference = InMemoryStore(index=INDEX)  # type: ignore[arg-type]
    _fill(reference, items)
    with SQLiteStore(path, index=INDEX, clock=FakeClock()) as store:  # type: ignore[arg-type]
        answered = _counting(store)
        for search in SEARCHES:
            options = dict(search)
            prefix = options.pop("prefix", ("docs",))
            _same(store.search(prefix, **options), reference.search(prefix, **options))
        assert answered[0] == len(SEARCHES)
    db = sqlite3.connect(path)
    assert db.execute("SELECT max(version) FROM lus_schema_migrations").fetchone()[0] == SCHEMA_VERSION == 5
    rows = db.execute(
        "SELECT v.vector, c.vector FROM memory_vectors AS v JOIN memory_vector_copies AS c USING (namespace, key, path)"
    ).fetchall()
    assert db.execute("SELECT count(*) FROM memory_vector_copies").fetchone()[0] == len(rows) > 0
    db.close()
    assert all(copy == unit_float32(struct.unpack(f"<{DIMS}d", v)) for v, copy in rows)


def _plant(path: Path, statement: str, params: tuple[Any, ...]) -> None:
    db = sqlite3.connect(path)
    db.execute(statement, params)
    db.commit()
    db.close()


@pytest.mark.parametrize(
    ("table", "data"),
    [
        ("memory_vector_copies", b"\x01\x02\x03"),
        ("memory_vector_copies", struct.pack("<3f", 1, 2, 3)),
        ("memory_vector_copies", b""),
        ("memory_vectors", b"\x00" * 12),
    ],
    ids=["float32-ragged", "float32-other-dims", "float32-empty", "float64-ragged"],
)
def test_bad_stored_vector_bytes_are_corrupt_data(tmp_path: Path, table: str, data: bytes) -> None:
    path = tmp_path / "s.sqlite"
    with SQLiteStore(path, index=INDEX, clock=FakeClock()) as store:  # type: ignore[arg-type]
        _fill(store, _items(20))
    _plant(path, f"UPDATE {table} SET vector = ? WHERE key = 'k0004' AND path = 'text'", (data,))
    with SQLiteStore(path, index=INDEX, clock=FakeClock()) as store:  # type: ignore[arg-type]
        with pytest.raises(CorruptDataError, match="k0004"):
            store.search(("docs",), query="note 4", limit=40)
        # Searches that do not reach the item still answer.
        assert store.search(("docs", "g0"), query="note 4", limit=3)


def test_a_ragged_float64_vector_from_version_4_is_corrupt_data_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "v4.sqlite"
    with SQLiteStore(path, index=INDEX, clock=FakeClock()) as store:  # type: ignore[arg-type]
        _fill(store, _items(20))
    _as_version_4(path)
    _plant(path, "UPDATE memory_vectors SET vector = ? WHERE key = 'k0004' AND path = 'text'", (b"\x00" * 13,))
    with (
        SQLiteStore(path, index=INDEX, clock=FakeClock()) as store,  # type: ignore[arg-type]
        pytest.raises(CorruptDataError, match="k0004"),
    ):
        store.search(("docs",), query="note 4", limit=40)


# -- the error bound the candidates' margin rests on ------------------------------------------

_unit = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)
# Component magnitudes where float64 cosine itself is sound (no product of norms
# overflows or underflows): there the core's scores are the true ones.
_scales = st.sampled_from([1.0, 1e-60, 1e-20, 1e20, 1e60])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), dims=st.integers(min_value=1, max_value=64))
def test_float32_cosine_stays_within_the_bound(data: st.DataObject, dims: int) -> None:
    """sqlite-vec's distance of the float32 copies is within ``cosine_error_bound`` of the
    float64 cosine distance the core computes (a zero vector: 1)."""
    a = [x * data.draw(_scales) for x in data.draw(st.lists(_unit, min_size=dims, max_size=dims))]
    b = [x * data.draw(_scales) for x in data.draw(st.lists(_unit, min_size=dims, max_size=dims))]
    if data.draw(st.booleans()):  # near-parallel vectors
        b = [x * (1.0 + y * 1e-7) for x, y in zip(a, b, strict=True)]
    db = connect(":memory:")
    try:
        got = db.execute(
            "SELECT coalesce(vec_distance_cosine(?, ?), 1.0)", (unit_float32(a), unit_float32(b))
        ).fetchone()[0]
    finally:
        db.close()
    exact = 1.0 - cosine_scores(a, [b])[0]
    assert math.isfinite(got)
    assert abs(got - exact) <= cosine_error_bound(dims)


def test_migration_5_copies_every_vector_in_batches(tmp_path: Path) -> None:
    """More vectors than one batch (COPY_BATCH): each gets its copy, a ragged one an
    empty copy (reported by the search that reaches it)."""
    from langgraph_unified_store.backends.sqlite.migrations import COPY_BATCH, migrate

    db = sqlite3.connect(tmp_path / "v4.sqlite", isolation_level=None)
    try:
        assert migrate(db, target=4) == 4
        rows = [("n", f"k{i:05d}", "text", struct.pack("<4d", i, 1.0, -2.5, 1e-3 * i)) for i in range(2 * COPY_BATCH + 7)]
        rows.append(("n", "ragged", "text", b"\x00" * 9))
        db.executemany("INSERT INTO memory_vectors (namespace, key, path, vector) VALUES (?, ?, ?, ?)", rows)
        assert migrate(db) == SCHEMA_VERSION
        copies = dict(db.execute("SELECT key, vector FROM memory_vector_copies").fetchall())
    finally:
        db.close()
    assert len(copies) == len(rows)
    assert copies.pop("ragged") == b""
    assert all(copies[key] == unit_float32(struct.unpack("<4d", data)) for _, key, _, data in rows[:-1])
