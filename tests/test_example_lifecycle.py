"""examples/data_lifecycle.py runs offline on every backend and does what it prints."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from langgraph_unified_store.registry import backend_named

from .support import ALL_BACKENDS, SERVER_URLS, unique

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "data_lifecycle.py"
BACKENDS = [
    pytest.param(name, marks=[getattr(pytest.mark, name)] if name in SERVER_URLS else [])
    for name in ALL_BACKENDS
]


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("data_lifecycle_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # LangGraph resolves the state's annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_lifecycle_demo(backend: str, tmp_path: Path) -> None:
    example = _example()
    if backend == "memory":
        result = example.main(["--url", "memory://"])
    elif backend == "sqlite":
        result = example.main([])  # the default: a temporary SQLite file
    else:
        isolate = backend_named(backend).namespace_option
        assert isolate is not None
        result = example.run(SERVER_URLS[backend], **{isolate: unique("lus_demo")})
    assert result == {
        "visible_after_25h": ["ada-trip", "linus-kernel"],
        "swept": ["grace-notes"],
        "deleted": ["linus-kernel"],
        "forgotten": ["ada-trip"],
        "verified": True,
        "left": [],
    }
