"""Graphs that keep their own models: types that cannot be found by module and name.

A pydantic model or dataclass defined inside a function (a graph built by a factory,
or in a test), or renamed since it was stored, is read back as its fields (a dict,
which a pydantic state coerces back to the model), with one logged warning per type
naming it; nothing is imported or called. A type that is found but is not a data type
still raises. The graph test runs in fresh processes, on every backend, through the
async and the blocking API.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import ormsgpack
import pytest
from langgraph.checkpoint.serde.jsonplus import (
    EXT_CONSTRUCTOR_KW_ARGS,
    EXT_CONSTRUCTOR_POS_ARGS,
    EXT_PYDANTIC_V1,
    EXT_PYDANTIC_V2,
)

from langgraph_unified_store import UnsafeDeserializationError
from langgraph_unified_store.core import serde as serde_module
from langgraph_unified_store.core.serde import SafeSerializer

from ..support import ALL_BACKENDS, REDIS_URL, drop_saver, open_saver, unique
from . import user_types

ROOT = Path(__file__).parent.parent.parent


async def _child(*args: str) -> dict[str, Any]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.reliability.local_types_child", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        env=dict(os.environ),
    )
    out, err = await asyncio.wait_for(child.communicate(), 180)
    assert child.returncode == 0, err.decode()[-3000:]
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_graph_with_models_defined_in_a_function_resumes_in_a_fresh_process(
    backend: str, tmp_path: Path
) -> None:
    location = {"memory": "-", "sqlite": str(tmp_path / "local.sqlite"),
                "postgres": unique("lus_local"), "redis": unique("lus_local")}[backend]
    extra = [REDIS_URL] if backend == "redis" else []
    try:
        if backend == "memory":
            result = await _child("both", backend, location, *extra)
        else:
            written = await _child("write", backend, location, *extra)
            assert written["warnings"] == []
            result = await _child("read", backend, location, *extra)
        for api in ("sync", "async"):
            assert result[api] == {
                "profile": ["Profile", "ada", ["v1", "v2"]],
                "notes": [["Note", "note 1", 1], ["Note", "note 2", 2]],
                "visits": 2,
            }, result[api]
        assert min(result["history"]) >= 4
        # One warning per type that could not be found, naming it, however many values.
        warned = result["warnings"]
        assert len(warned) == 2, warned
        assert any(".Profile " in w for w in warned) and any(".Note " in w for w in warned), warned
    finally:
        if backend in ("postgres", "redis"):
            saver = open_saver(backend, location, **({"url": REDIS_URL} if backend == "redis" else {}))
            await drop_saver(saver)


def _ext(code: int, payload: Any) -> tuple[str, bytes]:
    return "msgpack", ormsgpack.packb(ormsgpack.Ext(code, ormsgpack.packb(payload)))


MODULE = user_types.__name__


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (EXT_PYDANTIC_V2, "RenamedProfile"),
        (EXT_PYDANTIC_V1, "RenamedV1Model"),
        (EXT_CONSTRUCTOR_KW_ARGS, "RenamedDataclass"),
    ],
)
def test_renamed_model_or_dataclass_is_read_as_its_fields_with_one_warning(
    code: int, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    serde_module._WARNED_AS_FIELDS.discard((MODULE, name))
    serde = SafeSerializer()
    payload = (MODULE, name, {"name": "ada", "tags": ["a"]}, "model_validate_json")
    with caplog.at_level(logging.WARNING, logger="langgraph_unified_store"):
        for _ in range(5):
            assert serde.loads_typed(_ext(code, payload[: 4 if code != EXT_CONSTRUCTOR_KW_ARGS else 3])) == {
                "name": "ada", "tags": ["a"]}
    warned = [r.getMessage() for r in caplog.records if "cannot be found" in r.getMessage()]
    assert warned == [warned[0]] and f"{MODULE}.{name}" in warned[0], warned


@pytest.mark.parametrize(
    ("code", "payload"),
    [
        (EXT_PYDANTIC_V2, (MODULE, "record_call", {"a": 1}, "x")),
        (EXT_CONSTRUCTOR_KW_ARGS, (MODULE, "Recorder", {"a": 1})),
        (EXT_PYDANTIC_V2, ("os", "system", {"command": "true"}, "x")),
        # Not a fields payload: a missing name is refused, never called or imported.
        (EXT_CONSTRUCTOR_POS_ARGS, (MODULE, "NoSuchThing", [1])),
    ],
)
def test_a_type_found_but_not_a_data_type_still_raises(code: int, payload: Any) -> None:
    user_types.CALLS.clear()
    with pytest.raises(UnsafeDeserializationError, match=payload[1]):
        SafeSerializer().loads_typed(_ext(code, payload))
    assert user_types.CALLS == []
