"""``lus export``, ``lus import`` and ``lus copy`` on real backends: what moves reads
back equal through the saver API, a copy run twice writes nothing the second time, and
conflicts, truncated files and usage mistakes are one line with the right exit code."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from langchain_core.messages import HumanMessage
from typer.testing import CliRunner

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..graphs import chat_graph
from ..store.conftest import Place
from ..support import open_saver
from ..test_migrations import _v1_database
from ..transfer.histories import thread_view
from .cli_support import THREADS, Stored, as_json, invoke, run_graph, stored_for
from .test_errors import one_line
from .test_script import ROOT

ITEMS = {(("users", "u1"), "prefs"): {"lang": "fr"}, (("users", "u2"), "prefs"): {"lang": "de", "n": 2}}
KEY_ENV = "LUS_TEST_TRANSFER_KEY"


def _place(stored: Stored) -> Place:
    return Place(stored.backend, stored.location)


@pytest.fixture
def places() -> Iterator[list[Stored]]:
    """Storage a test creates on a server (or a file), removed afterwards."""
    made: list[Stored] = []
    yield made
    for stored in made:
        _place(stored).drop()


def fresh(places: list[Stored], backend: str, directory: Path, name: str = "target") -> Stored:
    """An empty place on ``backend`` (a SQLite file not yet created)."""
    directory = directory / name
    directory.mkdir()
    made = stored_for(backend, directory)
    places.append(made)
    return made


def with_history(places: list[Stored], backend: str, directory: Path, **saver_options: Any) -> Stored:
    """A place holding the chat graph's three threads and two store items."""
    made = fresh(places, backend, directory, "source")
    if saver_options:
        _run_encrypted(made, saver_options)
    else:
        run_graph(made)
    place = _place(made)
    store = place.store()
    try:
        for (namespace, key), value in ITEMS.items():
            store.put(namespace, key, value)
    finally:
        store.close()
    return made


def _run_encrypted(stored: Stored, options: dict[str, Any]) -> None:
    """The chat graph, one turn per thread, on a saver opened with ``options`` (a key)."""
    with open_saver(stored.backend, stored.location, **options) as saver:
        graph = chat_graph(saver)
        for thread_id in THREADS:
            graph.invoke({"messages": [HumanMessage(f"hi {thread_id}")]}, {"configurable": {"thread_id": thread_id}})


def views(stored: Stored, **saver_options: Any) -> dict[str, Any]:
    """Every thread as a reader sees it (``thread_view``), through the saver API."""

    async def read() -> dict[str, Any]:
        saver: UnifiedCheckpointSaver = open_saver(stored.backend, stored.location, **saver_options)
        try:
            return {thread_id: await thread_view(saver, thread_id) for thread_id in THREADS}
        finally:
            await saver.aclose()

    return asyncio.run(read())


def items(stored: Stored) -> dict[tuple[tuple[str, ...], str], Any]:
    store = _place(stored).store()
    try:
        return {(tuple(item.namespace), item.key): item.value for item in store.search((), limit=100)}
    finally:
        store.close()


def thread_ids(stored: Stored) -> list[str]:
    with stored.saver() as saver:
        return sorted(t.thread_id for t in saver.list_threads(limit=100).threads)


def value_tags(path: Path) -> list[str]:
    """The serde tag of every blob value in an export file (sealed ones read lus2:...)."""
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    tags = [r["value"]["type"] for r in records if r["kind"] == "blob" and "value" in r]
    assert tags
    return tags


def export_file(runner: CliRunner, stored: Stored, path: Path, *extra: str) -> dict[str, Any]:
    done = as_json(invoke(runner, ["export", stored.url, *stored.options, "-O", str(path), "--json", *extra]))
    assert path.is_file() and not Path(f"{path}.partial").exists()
    return dict(done)


# -- round trips ------------------------------------------------------------------------------


def test_sqlite_to_postgres_through_a_file(places: list[Stored], runner: CliRunner, tmp_path: Path) -> None:
    source = with_history(places, "sqlite", tmp_path)
    target = fresh(places, "postgres", tmp_path)
    path = tmp_path / "export.jsonl"
    exported = export_file(runner, source, path)
    assert exported["counts"]["threads"] == 3 and exported["counts"]["store_items"] == 2
    assert exported["encrypted"] is False
    imported = as_json(invoke(runner, ["import", target.url, str(path), *target.options, "--verify", "--json"]))
    summary = imported["summary"]
    assert summary["threads"] == 3 and summary["verified"] is True
    assert summary["checkpoints_written"] == exported["counts"]["checkpoints"]
    assert summary["store_items_written"] == 2
    assert views(target) == views(source)
    assert items(target) == ITEMS


def test_redis_to_sqlite_piped_through_stdout(places: list[Stored], runner: CliRunner, tmp_path: Path) -> None:
    source = with_history(places, "redis", tmp_path)
    target = fresh(places, "sqlite", tmp_path)
    assert not Path(target.location).exists()
    exported = invoke(runner, ["export", source.url, *source.options, "-O", "-"])
    assert exported.exit_code == 0, exported.output
    lines = exported.stdout_bytes.splitlines()
    assert orjson.loads(lines[0])["kind"] == "header" and orjson.loads(lines[-1])["kind"] == "trailer"
    assert "exported 3 thread(s)" in exported.stderr  # the summary stays off stdout
    path = tmp_path / "piped.jsonl"
    path.write_bytes(exported.stdout_bytes)
    table = invoke(runner, ["import", target.url, str(path)])
    assert table.exit_code == 0, table.output
    assert "checkpoints written" in table.stdout
    assert views(target) == views(source)
    assert items(target) == ITEMS
    # The same export from stdin, into another place: streamed as it comes.
    second = fresh(places, "sqlite", tmp_path, "second")
    streamed = invoke(runner, ["import", second.url, "-", "--json"], input=exported.stdout_bytes)  # type: ignore[arg-type]
    assert as_json(streamed)["summary"]["threads"] == 3
    assert views(second) == views(source)


def test_selection_and_no_store(places: list[Stored], runner: CliRunner, tmp_path: Path) -> None:
    source = with_history(places, "sqlite", tmp_path)
    path = tmp_path / "some.jsonl"
    named = export_file(runner, source, path, "--thread", "support-1", "-t", "sales-9", "--no-store")
    assert named["counts"]["threads"] == 2 and named["counts"]["store_items"] == 0
    filtered = export_file(runner, source, path, "--filter", "user_id=u2", "--updated-after", "1d")
    assert filtered["counts"]["threads"] == 1 and filtered["counts"]["store_items"] == 2
    target = fresh(places, "sqlite", tmp_path)
    as_json(invoke(runner, ["import", target.url, str(path), "--no-store", "--json"]))
    assert thread_ids(target) == ["support-2"]
    assert items(target) == {}


# -- copy -------------------------------------------------------------------------------------


def test_copy_twice_writes_nothing_the_second_time(places: list[Stored], runner: CliRunner, tmp_path: Path) -> None:
    source = with_history(places, "sqlite", tmp_path)
    target = fresh(places, "redis", tmp_path)
    args = ["copy", source.url, target.url, "--target-option", f"prefix={target.location}", "--json"]
    first = as_json(invoke(runner, args))["summary"]
    assert first["threads"] == 3 and first["checkpoints_written"] > 0 and first["verified"] is True
    assert first["store_items_written"] == 2
    second = as_json(invoke(runner, args))["summary"]
    assert second["checkpoints_written"] == 0 and second["writes_written"] == 0
    assert second["store_items_written"] == 0 and second["store_items_skipped"] == 2
    assert second["checkpoints_present"] == first["checkpoints_written"]
    assert views(target) == views(source)
    assert items(target) == ITEMS
    shown = invoke(runner, args[:-1])
    assert shown.exit_code == 0 and "verified" in shown.stdout and "read back equal" in shown.stdout


def test_copy_between_two_schemas_of_one_server(places: list[Stored], runner: CliRunner, tmp_path: Path) -> None:
    source = with_history(places, "postgres", tmp_path)
    target = fresh(places, "postgres", tmp_path)
    copied = as_json(invoke(runner, [
        "copy", source.url, target.url, "--source-option", f"schema={source.location}",
        "--target-option", f"schema={target.location}", "-t", "support-1", "--no-store", "--json",
    ]))
    assert copied["summary"]["threads"] == 1
    assert thread_ids(target) == ["support-1"] and items(target) == {}
    same = invoke(runner, ["copy", source.url, source.url, "--source-option", "schema=x", "--target-option", "schema=x"])
    assert "same storage" in one_line(same, 2)


# -- refusals ---------------------------------------------------------------------------------


def test_a_conflict_is_refused_naming_the_thread(places: list[Stored], runner: CliRunner, tmp_path: Path) -> None:
    source = with_history(places, "sqlite", tmp_path)
    target = fresh(places, "sqlite", tmp_path)
    path = tmp_path / "export.jsonl"
    export_file(runner, source, path)
    as_json(invoke(runner, ["import", target.url, str(path), "--json"]))
    line = one_line(invoke(runner, ["import", target.url, str(path)]), 1)
    assert "thread 'sales-9' exists in the target" in line  # the file's first thread
    # The choices are named as this command takes them, not as the Python argument.
    assert "(--on-conflict skip keeps it, resume completes it, replace deletes it first)" in line
    assert "on_conflict" not in line
    skipped = as_json(invoke(runner, ["import", target.url, str(path), "--on-conflict", "skip", "--json"]))
    assert sorted(skipped["summary"]["threads_skipped"]) == sorted(THREADS)
    resumed = as_json(invoke(runner, ["import", target.url, str(path), "--on-conflict", "resume", "--verify", "--json"]))
    assert resumed["summary"]["checkpoints_written"] == 0
    refused = invoke(runner, ["import", target.url, str(path), "--on-conflict", "replace"], input="n\n")
    assert refused.exit_code == 1 and "nothing imported" in refused.stderr
    replaced = as_json(invoke(runner, ["import", target.url, str(path), "--on-conflict", "replace", "--yes", "--json"]))
    assert replaced["summary"]["threads"] == 3 and replaced["summary"]["checkpoints_present"] == 0
    assert views(target) == views(source)


def test_export_changes_nothing_in_its_source(places: list[Stored], runner: CliRunner, tmp_path: Path) -> None:
    empty = fresh(places, "sqlite", tmp_path, "empty")
    Path(empty.location).touch()  # a file with no table: nothing was ever set up there
    assert export_file(runner, empty, tmp_path / "empty.jsonl")["counts"]["threads"] == 0
    assert Path(empty.location).stat().st_size == 0  # no tables were created
    old = fresh(places, "sqlite", tmp_path, "old")
    _v1_database(Path(old.location))  # saver tables of an older release, no store tables
    before = Path(old.location).read_bytes()
    line = one_line(invoke(runner, ["export", old.url, "-O", str(tmp_path / "old.jsonl")]), 1)
    assert "an export changes nothing in its source, so run setup() there first" in line
    assert Path(old.location).read_bytes() == before and not (tmp_path / "old.jsonl").exists()


def test_a_truncated_file_is_refused_naming_the_line(places: list[Stored], runner: CliRunner, tmp_path: Path) -> None:
    source = with_history(places, "sqlite", tmp_path)
    path = tmp_path / "export.jsonl"
    export_file(runner, source, path)
    lines = path.read_bytes().splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(lines[:-1]))  # no trailer
    target = fresh(places, "sqlite", tmp_path)
    line = one_line(invoke(runner, ["import", target.url, str(cut)]), 1)
    assert f"line {len(lines) - 1}" in line and "truncated" in line
    assert not Path(target.location).exists()  # nothing written, not even an empty database
    assert "no export file" in one_line(invoke(runner, ["import", target.url, str(tmp_path / "none.jsonl")]), 1)
    server = fresh(places, "postgres", tmp_path, "server")
    one_line(invoke(runner, ["import", server.url, str(cut), *server.options]), 1)
    assert thread_ids(server) == [] and items(server) == {}


def test_usage_mistakes_exit_2(places: list[Stored], runner: CliRunner, tmp_path: Path) -> None:
    source = with_history(places, "sqlite", tmp_path)
    export = ["export", source.url]
    assert "stdout carries the export" in one_line(invoke(runner, [*export, "-O", "-", "--json"]), 2)
    assert "not both" in one_line(invoke(runner, [*export, "-O", "x", "-t", "a", "-f", "k=v"]), 2)
    assert "--key-env" in one_line(invoke(runner, [*export, "-O", "x", "--decrypt"]), 2)
    assert "is not set" in one_line(invoke(runner, [*export, "-O", "x", "--key-env", "LUS_NO_SUCH_VARIABLE"]), 2)
    assert "--key-env" in one_line(invoke(runner, [*export, "-O", "x", "-o", "encryption_key=s3cret"]), 2)
    assert invoke(runner, ["export", source.url]).exit_code == 2  # no --output
    assert "give the export file" in one_line(invoke(runner, ["import"]), 2)
    assert invoke(runner, ["import", source.url, "x", "--on-conflict", "maybe"]).exit_code == 2
    assert "--yes" in one_line(invoke(runner, ["import", source.url, "-", "--on-conflict", "replace"]), 2)
    assert not (tmp_path / "x").exists()


# -- encryption -------------------------------------------------------------------------------


def test_an_encrypted_saver_exports_sealed_and_imports_with_the_key(
    places: list[Stored], runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "a passphrase for the transfer test"
    monkeypatch.setenv(KEY_ENV, key)
    source = with_history(places, "sqlite", tmp_path, encryption_key=key)
    shown = as_json(invoke(runner, ["show", "support-1", "--url", source.url, "--key-env", KEY_ENV, "--json"]))
    assert shown["state"]["messages"][0]["content"] == "hi support-1"  # the other commands take the key too
    one_line(invoke(runner, ["show", "support-1", "--url", source.url]), 1)  # sealed values do not open without it
    sealed = tmp_path / "sealed.jsonl"
    assert export_file(runner, source, sealed, "--key-env", KEY_ENV)["encrypted"] is True
    assert all(tag.startswith("lus2:") for tag in value_tags(sealed))
    plain = tmp_path / "plain.jsonl"
    assert export_file(runner, source, plain, "--key-env", KEY_ENV, "--decrypt")["encrypted"] is False
    assert not any(tag.startswith("lus2:") for tag in value_tags(plain))
    target = fresh(places, "sqlite", tmp_path)
    # No key, or the wrong one, is a failure (exit 1) saying which flag gives it.
    missing = one_line(invoke(runner, ["import", target.url, str(sealed)]), 1)
    assert "the export is encrypted: pass the source's encryption key with --key-env NAME" in missing
    assert "decrypt=True" not in missing and "--decrypt" in missing
    monkeypatch.setenv("LUS_TEST_WRONG_KEY", "not the passphrase")
    wrong = one_line(invoke(runner, ["import", target.url, str(sealed), "--key-env", "LUS_TEST_WRONG_KEY"]), 1)
    assert "cannot be decrypted" in wrong and "--key-env NAME" in wrong
    assert not Path(target.location).exists()  # neither left a database behind
    as_json(invoke(runner, ["import", target.url, str(sealed), "--key-env", KEY_ENV, "--json"]))
    assert views(target, encryption_key=key) == views(source, encryption_key=key)
    clear = fresh(places, "sqlite", tmp_path, "clear")
    as_json(invoke(runner, ["import", clear.url, str(plain), "--json"]))
    assert views(clear) == views(source, encryption_key=key)
    # A copy moves values decrypted in memory, sealed by the target's own key.
    monkeypatch.setenv("LUS_TEST_OTHER_KEY", "another passphrase")
    rekeyed = fresh(places, "sqlite", tmp_path, "rekeyed")
    as_json(invoke(runner, [
        "copy", source.url, rekeyed.url, "--source-key-env", KEY_ENV,
        "--target-key-env", "LUS_TEST_OTHER_KEY", "--json",
    ]))
    assert views(rekeyed, encryption_key="another passphrase") == views(source, encryption_key=key)


# -- another process --------------------------------------------------------------------------


def test_export_piped_into_import_between_processes(places: list[Stored], tmp_path: Path) -> None:
    source = with_history(places, "sqlite", tmp_path)
    target = fresh(places, "postgres", tmp_path)
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    environment.pop("LANGGRAPH_UNIFIED_STORE_URL", None)
    command = [sys.executable, "-m", "langgraph_unified_store.cli"]
    exporting = subprocess.Popen(
        [*command, "export", source.url, "-O", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment
    )
    importing = subprocess.run(
        [*command, "import", target.url, "-", *target.options, "--verify", "--json"],
        stdin=exporting.stdout, capture_output=True, env=environment, timeout=120, check=False,
    )
    assert exporting.stdout is not None
    exporting.stdout.close()
    _, export_errors = exporting.communicate(timeout=120)
    assert exporting.returncode == 0, export_errors
    assert b"exported 3 thread(s)" in export_errors
    assert importing.returncode == 0, importing.stderr
    assert orjson.loads(importing.stdout)["summary"]["verified"] is True
    assert importing.stderr == b""  # no progress bar: stderr is not a terminal
    assert views(target) == views(source)
    empty = subprocess.run(
        [*command, "import", target.url, "-", *target.options], stdin=subprocess.DEVNULL,
        capture_output=True, env=environment, timeout=120, check=False, text=True,
    )
    assert empty.returncode == 1 and empty.stderr.startswith("lus: error: ")  # an empty stream
