"""The native get_delta_channel_history gives the base class's answer (one get_tuple
per ancestor) on random forked histories, on every backend, through both APIs."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage
from langgraph.checkpoint.base import BaseCheckpointSaver

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from .support import ALL_BACKENDS, checkpoint_and_versions, config_for, drop_saver, make_saver

CHANNELS = ("a", "b", "c")
_values = st.one_of(
    st.integers(-5, 5),
    st.text(max_size=8),
    st.lists(st.sampled_from(["x" * 80, "y" * 90, "short"]), max_size=3),
    st.builds(lambda n: [AIMessage(content="m" * 70 + str(n), id=str(n))], st.integers(0, 3)),
)
_step = st.fixed_dictionaries(
    {
        "parent": st.integers(0, 1000),  # which earlier checkpoint it forks from
        "values": st.dictionaries(st.sampled_from(CHANNELS), _values, max_size=2),
        "writes": st.lists(
            st.tuples(st.sampled_from(["t1", "t2"]), st.sampled_from(CHANNELS), _values),
            max_size=3,
        ),
    }
)
_history = st.lists(_step, min_size=1, max_size=7)
_query = st.tuples(st.integers(0, 1000), st.lists(st.sampled_from([*CHANNELS, "d"]), max_size=4))
_threads = itertools.count()


def _build(saver: UnifiedCheckpointSaver, thread: str, steps: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    for number, step in enumerate(steps):
        parent = ids[step["parent"] % len(ids)] if ids else None
        checkpoint, versions = checkpoint_and_versions(step["values"], number)
        config = saver.put(
            config_for(thread, parent), checkpoint, {"source": "loop", "step": number}, versions
        )
        ids.append(config["configurable"]["checkpoint_id"])
        for task, channel, value in step["writes"]:
            saver.put_writes(config, [(channel, value)], task, task_path=f"~{task}")
    return ids


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_delta_history_matches_the_base_walk(backend: str, tmp_path: Path) -> None:
    saver = make_saver(backend, tmp_path)
    saver.setup()
    try:

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(_history, st.lists(_query, min_size=1, max_size=3))
        def check(steps: list[dict[str, Any]], queries: list[tuple[int, list[str]]]) -> None:
            thread = f"t{next(_threads)}"
            ids = _build(saver, thread, steps)
            for pick, channels in queries:
                for config in (config_for(thread, ids[pick % len(ids)]), config_for(thread)):
                    expected = BaseCheckpointSaver.get_delta_channel_history(
                        saver, config=config, channels=channels
                    )
                    assert saver.get_delta_channel_history(config=config, channels=channels) == expected
                    ours = asyncio.run(
                        saver.aget_delta_channel_history(config=config, channels=channels)
                    )
                    assert ours == expected

        check()
        # A checkpoint that does not exist has no history, as in the base walk.
        missing = config_for("t-none", "1f0-none")
        assert saver.get_delta_channel_history(config=missing, channels=["a"]) == {"a": {"writes": []}}
    finally:
        asyncio.run(drop_saver(saver))
