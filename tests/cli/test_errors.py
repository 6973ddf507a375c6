"""Failures: one line on stderr, no traceback, no password; exit 2 for usage, 1 otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from langgraph_unified_store.factory import ENV_URL

from .cli_support import Stored, as_json, invoke

UNREACHABLE = {
    "postgres": "postgresql://bob:s3cr3t-pw@127.0.0.1:1/test",
    "redis": "redis://:s3cr3t-pw@127.0.0.1:1/0",
}


def one_line(result: object, code: int) -> str:
    exit_code, stderr = result.exit_code, result.stderr  # type: ignore[attr-defined]
    assert exit_code == code, result.output  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lus: error: "), stderr
    return str(lines[0])


@pytest.mark.parametrize("server", ["postgres", "redis"])
@pytest.mark.parametrize("command", [["threads"], ["history", "t"], ["show", "t"], ["forget", "-f", "a=b", "-y"], ["store", "namespaces"]])
def test_an_unreachable_server_is_one_line_without_the_password(server: str, command: list[str], runner: CliRunner) -> None:
    line = one_line(invoke(runner, [*command, "--url", UNREACHABLE[server], "-o", "connect_timeout:=1" if server == "postgres" else "socket_timeout:=1"]), 1)
    assert "s3cr3t-pw" not in line and "127.0.0.1" in line


@pytest.mark.parametrize("server", ["postgres", "redis"])
def test_doctor_on_an_unreachable_server_reports_and_fails(server: str, runner: CliRunner) -> None:
    result = invoke(runner, ["doctor", UNREACHABLE[server], "--timeout", "1", "--json"])
    assert result.exit_code == 1 and "s3cr3t-pw" not in result.output
    import orjson

    report = orjson.loads(result.stdout)
    assert report["ok"] is False and report["saver"]["reachable"] is False
    table = invoke(runner, ["doctor", UNREACHABLE[server], "--timeout", "1"])
    assert table.exit_code == 1 and "NOT OK" in table.stdout and "s3cr3t-pw" not in table.output


def test_bad_urls_and_values_are_usage_errors(sqlite_stored: Stored, runner: CliRunner) -> None:
    assert "unknown saver URL scheme 'ftp'" in one_line(invoke(runner, ["threads", "--url", "ftp://u:pw@x/y"]), 2)
    assert "not a URL" in one_line(invoke(runner, ["threads", "--url", "just-a-name"]), 2)
    for bad in (["--filter", "novalue"], ["--filter", "n:={"], ["--updated-after", "yesterday"], ["--after", "not-a-cursor"]):
        one_line(invoke(runner, sqlite_stored.args("threads", *bad)), 2)
    one_line(invoke(runner, sqlite_stored.args("threads", "-o", "no_such_option=1")), 2)
    one_line(invoke(runner, sqlite_stored.args("retain", "--older-than", "3 days")), 2)
    # Typer's own usage errors keep their exit code 2.
    assert invoke(runner, sqlite_stored.args("threads", "--limit", "0")).exit_code == 2
    assert invoke(runner, ["nope"]).exit_code == 2


def test_missing_things_are_failures(sqlite_stored: Stored, runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"
    assert "no SQLite database" in one_line(invoke(runner, ["threads", "--url", f"sqlite:///{missing}"]), 1)
    assert not missing.exists()  # looking did not create it
    assert "has no checkpoint" in one_line(invoke(runner, sqlite_stored.args("show", "nobody")), 1)
    assert "has no checkpoint" in one_line(invoke(runner, sqlite_stored.args("history", "nobody")), 1)
    assert "no checkpoint 'x'" in one_line(invoke(runner, sqlite_stored.args("show", "support-1", "-c", "x")), 1)
    assert "no checkpoint 'x'" in one_line(invoke(runner, sqlite_stored.args("diff", "support-1", "x", "y")), 1)


def test_the_url_comes_from_the_environment(sqlite_stored: Stored, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listed = as_json(invoke(runner, ["threads", "--json"], **{ENV_URL: sqlite_stored.url}))
    assert len(listed["threads"]) == 3
    monkeypatch.chdir(tmp_path)  # no default SQLite file here
    assert "pass --url" in one_line(invoke(runner, ["threads"]), 2)
