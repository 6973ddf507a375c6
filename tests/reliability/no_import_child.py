"""Child process of ``test_no_import``: plants payloads that name modules this process
has not imported, reads them through the async and the blocking API, and reports which
modules each read imported.

Usage: python -m tests.reliability.no_import_child BACKEND LOCATION [REDIS_URL]

Prints one JSON line: {label: {"imported": [...], "outcomes": [...]}}.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import orjson
import ormsgpack
from langgraph.checkpoint.serde.jsonplus import (
    EXT_CONSTRUCTOR_KW_ARGS,
    EXT_CONSTRUCTOR_POS_ARGS,
    EXT_CONSTRUCTOR_SINGLE_ARG,
    EXT_NUMPY_ARRAY,
    EXT_PYDANTIC_V2,
)

from ..support import drop_saver, open_saver
from . import raw
from .hostile import put_state, reopen


def _ext(code: int, payload: Any) -> bytes:
    return ormsgpack.packb(ormsgpack.Ext(code, ormsgpack.packb(payload)))


# Modules that must still be absent from sys.modules when the child starts.
UNLOADED = ("langchain_core.documents", "numpy", "antigravity", "this", "xml.dom.minidom",
            "tests.reliability.concurrent_child")

PAYLOADS: dict[str, tuple[str, bytes]] = {
    "Document (LangGraph safe type)": ("msgpack", _ext(EXT_PYDANTIC_V2, (
        "langchain_core.documents.base", "Document",
        {"page_content": "a document", "metadata": {}, "type": "Document"}, "model_validate_json"))),
    "numpy array": ("msgpack", _ext(EXT_NUMPY_ARRAY, ("<f8", [2], "C", bytes(16)))),
    "antigravity": ("msgpack", _ext(EXT_CONSTRUCTOR_POS_ARGS, ("antigravity", "fly", []))),
    "this": ("msgpack", _ext(EXT_CONSTRUCTOR_SINGLE_ARG, ("this", "s", ""))),
    "stdlib module not imported": ("msgpack", _ext(EXT_PYDANTIC_V2, (
        "xml.dom.minidom", "Document", {"a": 1}, "x"))),
    "allowlisted, module not imported": ("msgpack", _ext(EXT_CONSTRUCTOR_KW_ARGS, (
        "xml.dom.minidom", "Node", {"a": 1}))),
    "user module not imported": ("msgpack", _ext(EXT_CONSTRUCTOR_KW_ARGS, (
        "tests.reliability.concurrent_child", "Anything", {"a": 1}))),
    "json constructor": ("json", orjson.dumps({
        "lc": 1, "type": "constructor", "id": ["langchain_core", "documents", "Document"],
        "kwargs": {"page_content": "x"}})),
}


async def _reads(reader: Any, thread_id: str) -> list[str]:
    config = {"configurable": {"thread_id": thread_id}}
    outcomes = []
    for read in (
        lambda: reader.aget_tuple(config),
        lambda: _alist(reader, config),
        lambda: asyncio.to_thread(reader.get_tuple, config),
        lambda: asyncio.to_thread(lambda: list(reader.list(config))),
    ):
        try:
            await read()
            outcomes.append("read")
        except Exception as exc:
            outcomes.append(type(exc).__name__)
    return outcomes


async def _alist(reader: Any, config: Any) -> list[Any]:
    return [t async for t in reader.alist(config)]


async def _victim(saver: Any, thread_id: str, location: str, type_: str, data: bytes) -> None:
    await put_state(saver, thread_id, {"messages": [{"content": "e " * 50} for _ in range(3)], "n": 1})
    if location:
        await raw.overwrite(saver, thread_id, location, data, type_)


async def main(backend: str, location: str, url: str | None) -> None:
    present = [m for m in UNLOADED if m in sys.modules]
    if present:
        raise SystemExit(f"already imported before the test: {present}")
    options = {"url": url} if url else {}
    saver = open_saver(backend, location, **options)
    await saver.asetup()
    try:
        await _victim(saver, "innocent", "", "", b"")
        await _victim(saver, "refused", "blob:n", "msgpack",
                      _ext(EXT_CONSTRUCTOR_POS_ARGS, ("os", "system", ["true"])))
        for label, (type_, data) in PAYLOADS.items():
            for target in ("blob:n", "item"):
                await _victim(saver, f"{label}/{target}", target, type_, data)
        reader = reopen(saver).with_allowlist([("xml.dom.minidom", "Node")])
        # Warm up: what a first read of any kind imports (drivers, error paths) is not
        # imported on stored data's say-so.
        await _reads(reader, "innocent")
        await _reads(reader, "refused")
        report: dict[str, Any] = {}
        for label in PAYLOADS:
            for target in ("blob:n", "item"):
                before = set(sys.modules)
                outcomes = await _reads(reader, f"{label}/{target}")
                report[f"{label}/{target}"] = {
                    "imported": sorted(set(sys.modules) - before),
                    "outcomes": outcomes,
                }
        if reader is not saver:
            await reader.aclose()
    finally:
        await drop_saver(saver)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
