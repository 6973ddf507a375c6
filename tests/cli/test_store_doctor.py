"""``lus store namespaces``/``search`` over ``create_store(url)``, and ``lus doctor``."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from langgraph_unified_store import create_store
from langgraph_unified_store.cli.parsing import parse_options

from .cli_support import Stored, as_json, invoke


def fill_store(stored: Stored) -> None:
    with create_store(stored.url, **parse_options(stored.options[1::2])) as store:
        store.put(("users", "u1", "prefs"), "theme", {"color": "dark", "size": 3})
        store.put(("users", "u2", "prefs"), "theme", {"color": "light"})
        store.put(("docs",), "readme", {"text": "hello [red]x[/]"})


def test_store_namespaces_and_search(stored: Stored, runner: CliRunner) -> None:
    fill_store(stored)
    every = as_json(invoke(runner, stored.args("store", "namespaces", "--json")))
    assert sorted(every["namespaces"]) == [["docs"], ["users", "u1", "prefs"], ["users", "u2", "prefs"]]
    cut = as_json(invoke(runner, stored.args("store", "namespaces", "--prefix", "users", "--max-depth", "2", "--json")))
    assert sorted(cut["namespaces"]) == [["users", "u1"], ["users", "u2"]]
    table = invoke(runner, stored.args("store", "namespaces"))
    assert "users/u1/prefs" in table.stdout

    def keys(*extra: str) -> list[Any]:
        found = as_json(invoke(runner, stored.args("store", "search", *extra, "--json")))["items"]
        return sorted((tuple(i["namespace"]), i["key"]) for i in found)

    assert keys("users") == [(("users", "u1", "prefs"), "theme"), (("users", "u2", "prefs"), "theme")]
    assert keys("users", "--filter", "color=dark") == [(("users", "u1", "prefs"), "theme")]
    assert keys("users", "--filter", "size:=3") == [(("users", "u1", "prefs"), "theme")]
    assert keys("", "--limit", "1") != []
    assert len(keys("", "--limit", "2")) == 2
    shown = invoke(runner, stored.args("store", "search", "docs"))
    assert shown.exit_code == 0 and "hello [red]x[/]" in shown.stdout


def test_doctor_reports_both_and_exits_zero_when_ok(stored: Stored, runner: CliRunner) -> None:
    report = as_json(invoke(runner, stored.args("doctor", "--json")))
    assert report["ok"] is True
    assert report["saver"]["backend"] == report["store"]["backend"] == stored.backend
    assert report["saver"]["reachable"] and report["saver"]["problems"] == []
    table = invoke(runner, stored.args("doctor"))
    assert table.exit_code == 0 and "ok" in table.stdout and stored.backend in table.stdout
    positional = invoke(runner, ["doctor", stored.url, *stored.options, "--json"])
    assert positional.exit_code == 0, positional.output
