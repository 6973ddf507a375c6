"""The switching demo on every backend: LangGraph -> CrewAI -> AutoGen -> LlamaIndex ->
LangGraph on one thread, with nothing lost; then one long-term memory that AutoGen,
LlamaIndex, CrewAI and a LangGraph node (``get_store()``) all write and recall."""

from __future__ import annotations

import os

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from langgraph_unified_store import UnifiedWorkflowState

from .support import ALL_BACKENDS, saver_for, unique
from .test_framework_memory import store_for

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "framework_switch.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("framework_switch_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example() -> ModuleType:
    return load_example()


@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_switch_loses_nothing(backend: str, tmp_path: Path, example: ModuleType) -> None:
    workflow_id = unique("trip")
    async with saver_for(backend, tmp_path) as saver:
        report = await example.run_switch(saver, workflow_id)
        assert report.problems == []
        writers = [state.metadata.framework for state in report.history]
        # Each framework's checkpoints come in one run, in the order of the hops.
        hops = [w for i, w in enumerate(writers) if i == 0 or writers[i - 1] != w]
        assert hops == ["langgraph", "crewai", "autogen", "llamaindex", "langgraph"]

        final = report.final
        assert final.context["final_view"]["messages"] == len(final.messages) - 1
        assert set(final.framework_state) == {"crewai", "autogen", "llamaindex"}
        contents = [str(m.content) for m in final.messages]
        for marker in ("[langgraph] Noted", "[crewai] Plan", "[autogen] Budget", "[langgraph] Final"):
            assert any(marker in c for c in contents), marker
        # A fresh load through the public API agrees with the history's newest entry.
        loaded = await saver.aload_state(workflow_id)
        assert loaded is not None
        assert loaded.model_dump() == final.model_dump()
        assert workflow_id in await saver.alist_workflows()


@pytest.mark.parametrize("indexed", [True, False], ids=["indexed", "plain"])
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_memory_switch_recalls_across_frameworks(
    backend: str, indexed: bool, tmp_path: Path, example: ModuleType
) -> None:
    async with store_for(backend, tmp_path, indexed) as store:
        user = unique("traveller")
        report = await example.run_memory_switch(store, user)
        assert report.problems == []
        seen = {m["framework"]: m for m in report.langgraph_saw}
        assert set(seen) == {"autogen", "llamaindex", "crewai"}
        assert seen["autogen"]["metadata"] == example.AUTOGEN_METADATA
        assert seen["crewai"]["namespace"] == ["memories", user, "trip"]
        assert example.AUTOGEN_FACT in report.llamaindex_saw


def test_loss_detector_notices_a_dropped_message(example: ModuleType) -> None:
    before = UnifiedWorkflowState()
    before.add_message("user", "hello", id="m1")
    before.update_context(topic="x")
    after = before.model_copy(deep=True)
    after.messages = []
    after.context = {}
    after.metadata.framework = "crewai"
    problems = example.find_losses([before, after])
    assert any("messages lost" in p for p in problems)
    assert any("context 'topic' lost" in p for p in problems)

    renamed = before.model_copy(deep=True)
    renamed.messages[0].id = "other"
    assert any("lost its id" in p for p in example.find_losses([before, renamed]))


async def test_switch_notices_an_adapter_that_drops_ids(
    tmp_path: Path, example: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check is real: an AutoGen hop that stops matching stored messages is caught."""
    from langgraph_unified_store.adapters import autogen

    monkeypatch.setattr(autogen, "reuse_unchanged", lambda previous, incoming, key: list(incoming))
    async with saver_for("memory", tmp_path) as saver:
        report = await example.run_switch(saver, unique("trip"))
    assert any("lost its id" in problem for problem in report.problems)


async def test_script_runs_offline_with_no_arguments(tmp_path: Path) -> None:
    """The default run: a SQLite file under ./.langgraph_unified_store/, exit status 0."""
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE.parent.parent)}
    env.pop("LANGGRAPH_UNIFIED_STORE_URL", None)
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing lost" in result.stdout
    assert "every framework recalled what the others stored" in result.stdout
    for framework in ("langgraph", "crewai", "autogen", "llamaindex"):
        assert framework in result.stdout
    assert (tmp_path / ".langgraph_unified_store" / "checkpoints.sqlite").exists()
