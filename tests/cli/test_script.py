"""The CLI as an operator runs it: a separate process (``python -m
langgraph_unified_store.cli``), the ``lus`` console script ``pip install`` made from
pyproject's ``[project.scripts]``, and a real terminal (tmux)."""

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

from langgraph_unified_store.factory import ENV_URL

from .cli_support import THREADS, Stored, drop, run_graph, stored_for

ROOT = Path(__file__).resolve().parents[2]
INSTALLED_LUS = Path(sys.executable).parent / "lus"
"""The script ``pip install -e .`` puts beside the interpreter (CI installs it so)."""


def lus(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    environment.pop("LANGGRAPH_UNIFIED_STORE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "langgraph_unified_store.cli", *args],
        capture_output=True, text=True, env=environment, timeout=120, check=False,
    )


def entry_point() -> tuple[str, str]:
    """``[project.scripts] lus``: the module and the function the script runs."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["lus"].partition(":")
    return module, name


@pytest.fixture
def installed_lus() -> Path:
    """The installed ``lus``; under CI a missing one fails (the install step is broken)."""
    if not INSTALLED_LUS.is_file():
        message = f"no console script at {INSTALLED_LUS}: pip install -e . makes it from [project.scripts]"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    module, name = entry_point()
    assert f"from {module} import {name}" in INSTALLED_LUS.read_text(), "the script runs another entry point"
    return INSTALLED_LUS


def run_installed(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``lus args`` through the installed script, reading this checkout's code
    (``PYTHONPATH``; an editable install of another checkout is only a fallback)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    environment.pop(ENV_URL, None)
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, env=environment, timeout=120,
        check=False, cwd=ROOT,
    )


def test_installed_lus_doctor_on_a_sqlite_file_a_saver_set_up(installed_lus: Path, sqlite_stored: Stored) -> None:
    checked = run_installed(installed_lus, "doctor", "--url", sqlite_stored.url, "--json")
    assert checked.returncode == 0, checked.stderr
    report = orjson.loads(checked.stdout)
    assert report["ok"] is True and report["saver"]["backend"] == "sqlite"
    saver = report["saver"]
    assert saver["reachable"] and saver["schema_version"] == saver["expected_schema_version"]
    shown = run_installed(installed_lus, "doctor", "--url", sqlite_stored.url)
    assert shown.returncode == 0 and "ok" in shown.stdout and "Traceback" not in shown.stderr


def test_installed_lus_threads_json_on_postgres(installed_lus: Path, tmp_path: Path) -> None:
    stored = stored_for("postgres", tmp_path)  # a schema of its own
    try:
        run_graph(stored)
        listed = run_installed(installed_lus, "threads", "--json", "--url", stored.url, *stored.options)
        assert listed.returncode == 0, listed.stderr
        assert sorted(t["thread_id"] for t in orjson.loads(listed.stdout)["threads"]) == sorted(THREADS)
    finally:
        drop(stored)


@pytest.mark.parametrize(
    ("url", "code"), [("ftp://nowhere/x", 2), ("not a url", 2), ("sqlite:///no/such/dir/x.sqlite", 1)]
)
def test_installed_lus_bad_url_is_one_line(installed_lus: Path, url: str, code: int) -> None:
    failed = run_installed(installed_lus, "threads", "--url", url)
    assert failed.returncode == code, failed.stderr
    assert "Traceback" not in failed.stderr and failed.stdout == ""
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lus: error: "), failed.stderr


def test_the_console_script_points_at_a_callable() -> None:
    module, name = entry_point()
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


def test_the_cli_needs_no_click_of_its_own() -> None:
    """Typer 0.29 carries its own Click, so a fresh install of our dependencies may have no
    ``click``: the CLI must not import it (it did, and `lus` failed on a fresh machine)."""
    code = (
        "import sys; sys.modules['click'] = None\n"
        "from typer.testing import CliRunner\n"
        "from langgraph_unified_store.cli.app import app\n"
        "result = CliRunner().invoke(app, ['threads', '--url', 'ftp://nowhere'])\n"
        "print(result.exit_code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"
