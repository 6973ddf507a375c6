"""``lus threads``, ``history``, ``show`` and ``diff`` on history a real graph wrote, on
SQLite, PostgreSQL and Redis, driven in-process with Typer's CliRunner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from typer.testing import CliRunner

from langgraph_unified_store import UnifiedWorkflowState
from langgraph_unified_store.state import ToolCall, UnifiedMessage

from .cli_support import MARKUP_TURN, THREADS, Stored, as_json, invoke

CHECKPOINTS_PER_TURN = 4  # input, the loop's start, reply, review


def test_threads_lists_every_thread_with_its_counts(stored: Stored, runner: CliRunner) -> None:
    listed = as_json(invoke(runner, stored.args("threads", "--json")))
    by_id = {t["thread_id"]: t for t in listed["threads"]}
    assert sorted(by_id) == sorted(THREADS)
    for thread_id, (_, turns) in THREADS.items():
        assert by_id[thread_id]["checkpoints"] == CHECKPOINTS_PER_TURN * turns
        assert by_id[thread_id]["expires_at"] is None
    assert listed["next_cursor"] is None

    table = invoke(runner, stored.args("threads"))
    assert table.exit_code == 0, table.output
    for header in ("thread", "checkpoints", "last write", "bytes", "expires"):
        assert header in table.stdout
    assert all(thread_id in table.stdout for thread_id in THREADS)
    assert "┏" in table.stdout


def test_threads_filters_by_metadata_and_time(stored: Stored, runner: CliRunner) -> None:
    def ids(*extra: str) -> list[str]:
        return sorted(t["thread_id"] for t in as_json(invoke(runner, stored.args("threads", "--json", *extra)))["threads"])

    assert ids("--filter", "user_id=u1") == ["sales-9", "support-1"]
    assert ids("-f", "user_id=u1", "-f", "source=loop") == ["sales-9", "support-1"]
    assert ids("--filter", "user_id=nobody") == []
    assert ids("--filter", "step:=9") == ["sales-9"]  # only sales-9 ran three turns
    assert ids("--filter", "step=9") == []  # the string "9": filters are type-exact
    assert ids("--updated-after", "1d") == sorted(THREADS)
    assert ids("--updated-before", "1d") == []
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert ids("--updated-before", tomorrow) == sorted(THREADS)
    assert ids("--updated-after", tomorrow) == []


def test_threads_pages_with_a_cursor_and_sorts(stored: Stored, runner: CliRunner) -> None:
    first = as_json(invoke(runner, stored.args("threads", "--json", "--limit", "2")))
    assert len(first["threads"]) == 2 and first["next_cursor"]
    second = as_json(invoke(runner, stored.args("threads", "--json", "--limit", "2", "--after", first["next_cursor"])))
    assert second["next_cursor"] is None
    assert sorted(t["thread_id"] for t in first["threads"] + second["threads"]) == sorted(THREADS)
    every = as_json(invoke(runner, stored.args("threads", "--json", "--limit", "1", "--all")))
    assert len(every["threads"]) == 3 and every["next_cursor"] is None

    table = invoke(runner, stored.args("threads", "--limit", "2"))
    assert f"--after {first['next_cursor']}" in table.stdout

    by_size = as_json(invoke(runner, stored.args("threads", "--json", "--sort", "checkpoints", "--reverse")))
    assert [t["thread_id"] for t in by_size["threads"]] == ["sales-9", "support-1", "support-2"]


def _history(runner: CliRunner, stored: Stored, thread_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = as_json(invoke(runner, stored.args("history", thread_id, "--json")))["checkpoints"]
    return rows


def test_history_is_newest_first_and_chained_by_parents(stored: Stored, runner: CliRunner) -> None:
    rows = _history(runner, stored, "sales-9")
    assert len(rows) == CHECKPOINTS_PER_TURN * 3
    steps = [row["step"] for row in rows]
    assert steps == sorted(steps, reverse=True)
    for newer, older in pairwise(rows):
        assert newer["parent_checkpoint_id"] == older["checkpoint_id"]
    assert rows[-1]["parent_checkpoint_id"] is None
    assert {row["source"] for row in rows} == {"input", "loop"}
    assert any(row["writes"] for row in rows)

    table = invoke(runner, stored.args("history", "sales-9", "--limit", "3"))
    assert table.exit_code == 0, table.output
    for header in ("checkpoint", "step", "source", "writes", "time", "parent"):
        assert header in table.stdout
    assert rows[0]["checkpoint_id"] in table.stdout and rows[3]["checkpoint_id"] not in table.stdout


def test_show_reads_like_the_chat(stored: Stored, runner: CliRunner) -> None:
    view = as_json(invoke(runner, stored.args("show", "support-1", "--json")))
    messages = view["state"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "assistant"] * 2
    assert messages[3]["content"] == MARKUP_TURN
    assert view["state"]["context"] == {"topic": "billing"}

    shown = invoke(runner, stored.args("show", "support-1"))
    assert shown.exit_code == 0, shown.output
    assert "hello 0" in shown.stdout and "reply to 1 messages" in shown.stdout
    assert "topic" in shown.stdout and "billing" in shown.stdout
    # Stored text is shown as it is: markup not interpreted, escapes not sent to the terminal.
    assert "[bold red]markup[/]" in shown.stdout
    assert "\x1b" not in shown.stdout and "\\x1b[31m" in shown.stdout


def test_show_an_older_checkpoint_its_pending_writes_and_as_stored(stored: Stored, runner: CliRunner) -> None:
    rows = _history(runner, stored, "support-2")
    with_writes = next(row for row in rows if "messages" in row["written_channels"])
    view = as_json(invoke(runner, stored.args("show", "support-2", "-c", with_writes["checkpoint_id"], "--json")))
    assert view["checkpoint_id"] == with_writes["checkpoint_id"]
    assert {w["channel"] for w in view["pending_writes"]} == set(with_writes["written_channels"])
    shown = invoke(runner, stored.args("show", "support-2", "--checkpoint", with_writes["checkpoint_id"]))
    assert "pending writes" in shown.stdout and "messages" in shown.stdout

    raw = as_json(invoke(runner, stored.args("show", "support-2", "--as", "json", "--json")))
    assert raw["channel_values"]["topic"] == "billing"
    assert [m["type"] for m in raw["channel_values"]["messages"]] == ["human", "ai", "ai"]
    assert raw["metadata"]["user_id"] == "u2"
    pretty = invoke(runner, stored.args("show", "support-2", "--as", "json"))
    assert pretty.exit_code == 0 and '"channel_values"' in pretty.stdout


def test_diff_shows_added_messages_and_channels(stored: Stored, runner: CliRunner) -> None:
    rows = _history(runner, stored, "support-1")
    first_turn_end = rows[CHECKPOINTS_PER_TURN]["checkpoint_id"]  # the first turn's last
    latest, oldest = rows[0]["checkpoint_id"], rows[-1]["checkpoint_id"]
    changes = as_json(invoke(runner, stored.args("diff", "support-1", first_turn_end, latest, "--json")))
    assert [(m["change"], m["after"]["role"]) for m in changes["messages"]] == [
        ("added", "user"),
        ("added", "assistant"),
        ("added", "assistant"),
    ]
    assert changes["messages"][0]["after"]["content"] == MARKUP_TURN
    from_start = as_json(invoke(runner, stored.args("diff", "support-1", oldest, latest, "--json")))
    assert {"channel": "topic", "change": "added", "after": "billing"} in from_start["channels"]
    back = as_json(invoke(runner, stored.args("diff", "support-1", latest, first_turn_end, "--json")))
    assert {m["change"] for m in back["messages"]} == {"removed"}

    table = invoke(runner, stored.args("diff", "support-1", oldest, latest))
    assert table.exit_code == 0, table.output
    assert "+" in table.stdout and "topic" in table.stdout and "reply to 1 messages" in table.stdout
    same = invoke(runner, stored.args("diff", "support-1", latest, latest))
    assert "no change" in same.stdout


def test_show_and_diff_tool_calls_and_a_changed_message(sqlite_stored: Stored, runner: CliRunner) -> None:
    state = UnifiedWorkflowState(
        messages=[
            UnifiedMessage(role="user", content="weather in Oslo?", id="m1"),
            UnifiedMessage(
                role="assistant",
                content="",
                id="m2",
                tool_calls=[ToolCall(id="call-1", name="weather", arguments={"city": "Oslo"})],
            ),
            UnifiedMessage(role="tool", content="-3 C", id="m3", tool_call_id="call-1", name="weather"),
        ],
        context={"city": "Oslo"},
        framework_state={"crewai": {"crew": "forecasters"}},
    )
    with sqlite_stored.saver() as saver:
        saver.save_state("tools-1", state)
        state.messages[0].content = "weather in Bergen?"
        state.context["city"] = "Bergen"
        saver.save_state("tools-1", state)
    shown = invoke(runner, sqlite_stored.args("show", "tools-1"))
    assert shown.exit_code == 0, shown.output
    assert 'weather({"city":"Oslo"})' in shown.stdout and "call-1" in shown.stdout
    assert "framework_state" in shown.stdout and "forecasters" in shown.stdout

    rows = _history(runner, sqlite_stored, "tools-1")
    changes = as_json(invoke(runner, sqlite_stored.args("diff", "tools-1", rows[1]["checkpoint_id"], rows[0]["checkpoint_id"], "--json")))
    assert [(m["key"], m["change"]) for m in changes["messages"]] == [("id:m1", "changed")]
    assert changes["messages"][0]["after"]["content"] == "weather in Bergen?"
    assert {"channel": "city", "change": "changed", "before": "Oslo", "after": "Bergen"} in changes["channels"]
