"""``list(filter=...)`` on every backend agrees with ``core.rules.metadata_matches`` on
generated metadata and filters: JSON-typed equality (true is not 1, "1" is not 1, 1 is
1.0), None matching a missing key or null, lists and objects whole."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.base import empty_checkpoint

from langgraph_unified_store.core.rules import metadata_matches
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import drop_saver, make_saver
from .conftest import BACKENDS

KEYS = st.sampled_from(["k0", "k1", "k2"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2**53, 2**53 + 1, 2**63 - 1, -(2**63)]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0.0, 1.0, -1.5, 2.0**53, 1e16]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "1", "true", "a", "é"]),
    st.text(alphabet="ab1 é", max_size=4),
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=2),
    max_leaves=4,
)
METADATA = st.dictionaries(KEYS, VALUES, max_size=3)
FILTERS = st.dictionaries(KEYS, VALUES, min_size=1, max_size=2)

_numbers = itertools.count(1)


@pytest.fixture(params=BACKENDS)
def sync_saver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UnifiedCheckpointSaver]:
    """One saver for every example (each uses its own thread), through the blocking API."""
    saver = make_saver(str(request.param), tmp_path)
    saver.setup()
    try:
        yield saver
    finally:
        asyncio.run(drop_saver(saver))


def _put(saver: UnifiedCheckpointSaver, thread_id: str, metadata: dict[str, Any]) -> str:
    checkpoint = empty_checkpoint()
    checkpoint["id"] = f"1ef00000-0000-6000-8000-{next(_numbers):012d}"
    config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    saver.put(config, checkpoint, metadata, {})  # type: ignore[arg-type]
    return checkpoint["id"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metadatas=st.lists(METADATA, min_size=1, max_size=4), flt=FILTERS)
# Found by this test: past 2**53, PostgreSQL compared the float as a decimal equal to the
# int, where the rule (Python) compares them exactly; both directions.
@example(metadatas=[{"k2": 56395614830920090}], flt={"k2": 5.639561483092009e16})
@example(metadatas=[{"k2": 2.0**60}], flt={"k2": 2**60 + 1})
@example(metadatas=[{"k2": 2**60}], flt={"k2": 2.0**60})
def test_list_filters_as_the_rule_says(
    sync_saver: UnifiedCheckpointSaver, metadatas: list[dict[str, Any]], flt: dict[str, Any]
) -> None:
    thread_id = f"t{next(_numbers)}"
    for metadata in metadatas:
        _put(sync_saver, thread_id, metadata)
    config: Any = {"configurable": {"thread_id": thread_id}}
    stored = {t.checkpoint["id"]: t.metadata for t in sync_saver.list(config)}
    expected = {cid for cid, metadata in stored.items() if metadata_matches(metadata, flt)}
    listed = {t.checkpoint["id"] for t in sync_saver.list(config, filter=flt)}
    assert listed == expected, (flt, stored)
