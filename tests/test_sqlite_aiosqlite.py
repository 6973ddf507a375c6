"""The SQLite backend with the installed aiosqlite (0.21 and 0.22 are supported): a
saver left unclosed never keeps the interpreter alive, and close ends its thread."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from langgraph_unified_store import SQLiteSaver
from langgraph_unified_store.errors import SaverClosedError

CHILD = """
import asyncio, sys
from langgraph.checkpoint.base import empty_checkpoint
from langgraph_unified_store import SQLiteSaver

saver = SQLiteSaver(sys.argv[1])
config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
saver.put(config, empty_checkpoint(), {}, {})
async def main():
    await saver.aget_tuple(config)
asyncio.run(main())
print("left open")
"""


def test_an_unclosed_saver_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(tmp_path / "db.sqlite")],
            capture_output=True, text=True, timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the process did not exit: aiosqlite's thread kept it alive")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "left open"


async def test_close_ends_the_connection_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    saver = SQLiteSaver(tmp_path / "db.sqlite")
    await saver.asetup()
    started = [t for t in threading.enumerate() if t not in before]
    await saver.aclose()
    for thread in started:
        thread.join(60)
        assert not thread.is_alive()
    with pytest.raises(SaverClosedError):
        await saver.aget_tuple({"configurable": {"thread_id": "t"}})


def test_blocking_close_ends_the_connection_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    with SQLiteSaver(tmp_path / "db.sqlite") as saver:
        saver.setup()
        assert saver.get_tuple({"configurable": {"thread_id": "t"}}) is None
        started = [t for t in threading.enumerate() if t not in before]
    for thread in started:
        thread.join(60)
        assert not thread.is_alive(), thread
