"""No module is imported because stored data asked for it, on every backend.

A fresh process (``no_import_child``) plants payloads naming modules it has not
imported: a LangChain ``Document`` (one of LangGraph's safe types), a numpy array,
``antigravity`` and ``this`` (whose import has a visible effect), a stdlib module, an
allow-listed type whose module is not loaded, a module of the application, and a JSON
constructor. It reads each, in a blob and in a list item, through the async and the
blocking API, and compares ``sys.modules`` before and after: nothing new may appear.
A model or dataclass whose module is not loaded is read as its fields; anything else is
refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from ..support import ALL_BACKENDS, unique
from .private_servers import PrivateRedis

EXPECTED = {
    # Data types whose module is not loaded: read as their fields.
    "Document (LangGraph safe type)": "read",
    "stdlib module not imported": "read",
    "allowlisted, module not imported": "read",
    "user module not imported": "read",
    "json constructor": "UnsafeDeserializationError",
    "numpy array": "UnsafeDeserializationError",
    "antigravity": "UnsafeDeserializationError",
    "this": "UnsafeDeserializationError",
}


@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_reading_planted_payloads_imports_no_module(
    backend: str, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    location = {
        "memory": "-",
        "sqlite": str(tmp_path / "no-import.sqlite"),
        "postgres": unique("lus_noimport"),
        "redis": unique("lus_noimport"),
    }[backend]
    args = [backend, location] + ([sandbox_redis.url] if backend == "redis" else [])
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.reliability.no_import_child", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parent.parent.parent, env=dict(os.environ),
    )
    out, err = await asyncio.wait_for(child.communicate(), 180)
    assert child.returncode == 0, err.decode()[-3000:]
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert len(report) == 2 * len(EXPECTED)
    for key, seen in report.items():
        label = key.rsplit("/", 1)[0]
        assert seen["imported"] == [], f"{backend}: reading {key} imported {seen['imported']}"
        assert seen["outcomes"] == [EXPECTED[label]] * 4, f"{backend}: {key}: {seen['outcomes']}"
