"""The CLI as an operator runs it: a separate process (``python -m
langgraph_unified_store.cli``, what the ``lus`` script runs), and a real terminal (tmux)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from importlib import import_module
from pathlib import Path

import orjson
import pytest

from .cli_support import THREADS, Stored

ROOT = Path(__file__).resolve().parents[2]


def lus(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    environment.pop("LANGGRAPH_UNIFIED_STORE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "langgraph_unified_store.cli", *args],
        capture_output=True, text=True, env=environment, timeout=120, check=False,
    )


def test_the_console_script_points_at_a_callable() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["lus"].partition(":")
    assert callable(getattr(import_module(module), name))


def test_threads_in_another_process(stored: Stored) -> None:
    listed = lus(*stored.args("threads", "--json"))
    assert listed.returncode == 0, listed.stderr
    assert sorted(t["thread_id"] for t in orjson.loads(listed.stdout)["threads"]) == sorted(THREADS)
    assert listed.stderr == ""  # no progress bar: stderr is not a terminal


def test_failures_in_another_process() -> None:
    usage = lus("threads", "--url", "ftp://x")
    assert usage.returncode == 2 and usage.stderr.startswith("lus: error: ") and "Traceback" not in usage.stderr
    down = lus("threads", "--url", "redis://:pw-123@127.0.0.1:1/0", "-o", "socket_timeout:=1")
    assert down.returncode == 1 and "pw-123" not in down.stderr and len(down.stderr.strip().splitlines()) == 1
    helped = lus("--help")
    assert helped.returncode == 0 and "threads" in helped.stdout


def test_threads_table_in_a_real_terminal(sqlite_stored: Stored) -> None:
    tmux = shutil.which("tmux")
    if tmux is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tmux is not installed (CI installs it: apt-get install -y tmux)")
        pytest.skip("tmux is not installed")
    socket = f"lus-test-{uuid.uuid4().hex[:8]}"
    command = (
        f"cd {ROOT} && PYTHONPATH={ROOT} {sys.executable} -m langgraph_unified_store.cli "
        f"threads --url {sqlite_stored.url}; echo LUS-EXIT-$?"
    )
    base = [tmux, "-L", socket]
    subprocess.run([*base, "new-session", "-d", "-x", "160", "-y", "40", "-s", "lus"], check=True, env={**os.environ, "TERM": "xterm-256color"})
    try:
        subprocess.run([*base, "send-keys", "-t", "lus", command, "Enter"], check=True)
        screen = ""
        for _ in range(120):  # bounded: at most about a minute
            screen = subprocess.run([*base, "capture-pane", "-p", "-t", "lus"], check=True, capture_output=True, text=True).stdout
            if re.search(r"LUS-EXIT-\d", screen):  # the typed line shows "$?", not a digit
                break
            time.sleep(0.5)
        assert "LUS-EXIT-0" in screen, screen
        for text in ("┏", "┃ thread", "checkpoints", "last write", "bytes", "expires", "└", *THREADS):
            assert text in screen, screen
    finally:
        subprocess.run([*base, "kill-server"], check=False)
