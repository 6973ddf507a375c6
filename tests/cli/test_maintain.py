"""``lus prune``, ``retain`` and ``forget``: dry runs change nothing, a refused prompt
deletes nothing, and what is reported is what the saver's receipt says went."""

from __future__ import annotations

from typer.testing import CliRunner

from .cli_support import THREADS, Stored, as_json, invoke

CHECKPOINTS_PER_TURN = 4


def counts(runner: CliRunner, stored: Stored) -> dict[str, int]:
    listed = as_json(invoke(runner, stored.args("threads", "--json")))
    return {t["thread_id"]: t["checkpoints"] for t in listed["threads"]}


def test_prune_dry_run_prompt_and_keep_last(stored: Stored, runner: CliRunner) -> None:
    before = counts(runner, stored)
    dry = as_json(invoke(runner, stored.args("prune", "support-1", "--keep-last", "2", "--dry-run", "--json")))
    assert dry["dry_run"] and [t["thread_id"] for t in dry["threads"]] == ["support-1"]
    refused = invoke(runner, stored.args("prune", "support-1", "--keep-last", "2"), input="n\n")
    assert refused.exit_code == 1 and "nothing deleted" in refused.stderr
    assert counts(runner, stored) == before

    done = as_json(invoke(runner, stored.args("prune", "support-1", "--keep-last", "2", "--yes", "--json")))
    assert done["pruned"] == [{"thread_id": "support-1", "checkpoints_before": 8, "checkpoints_after": 2}]
    assert done["checkpoints_removed"] == 6
    assert counts(runner, stored) == {**before, "support-1": 2}
    # What is left still reads.
    assert len(as_json(invoke(runner, stored.args("show", "support-1", "--json")))["state"]["messages"]) == 6


def test_prune_by_filter_or_all_keeps_the_latest(stored: Stored, runner: CliRunner) -> None:
    accepted = invoke(runner, stored.args("prune", "--filter", "user_id=u1"), input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "pruned 2 thread(s)" in accepted.stdout
    assert counts(runner, stored) == {"support-1": 1, "sales-9": 1, "support-2": 4}
    as_json(invoke(runner, stored.args("prune", "--all", "-y", "--json")))
    assert counts(runner, stored) == dict.fromkeys(THREADS, 1)


def test_prune_refuses_without_a_target_or_an_unknown_thread(stored: Stored, runner: CliRunner) -> None:
    assert invoke(runner, stored.args("prune")).exit_code == 2
    unknown = invoke(runner, stored.args("prune", "nope", "-y"))
    assert unknown.exit_code == 2 and "nope" in unknown.stderr


def test_retain_deletes_threads_not_written_within(stored: Stored, runner: CliRunner) -> None:
    kept = as_json(invoke(runner, stored.args("retain", "--older-than", "30d", "-y", "--json")))
    assert kept["threads"] == [] and len(counts(runner, stored)) == 3
    dry = as_json(invoke(runner, stored.args("retain", "--older-than", "0.001s", "--filter", "user_id=u2", "--dry-run", "--json")))
    assert [t["thread_id"] for t in dry["threads"]] == ["support-2"]
    assert len(counts(runner, stored)) == 3
    done = as_json(invoke(runner, stored.args("retain", "--older-than", "0.001s", "--filter", "user_id=u2", "--yes", "--json")))
    assert done["removed"]["thread_ids"] == ["support-2"]
    assert done["removed"]["checkpoints"] == CHECKPOINTS_PER_TURN
    assert sorted(counts(runner, stored)) == ["sales-9", "support-1"]
    table = invoke(runner, stored.args("retain", "--older-than", "0.001s"), input="y\n")
    assert table.exit_code == 0 and "deleted 2 thread(s)" in table.stdout
    assert counts(runner, stored) == {}


def test_forget_erases_by_metadata_and_verifies(stored: Stored, runner: CliRunner) -> None:
    dry = invoke(runner, stored.args("forget", "--filter", "user_id=u1", "--dry-run"))
    assert dry.exit_code == 0 and "would erase 2 thread(s)" in dry.stdout
    assert len(counts(runner, stored)) == 3
    receipt = as_json(invoke(runner, stored.args("forget", "--filter", "user_id=u1", "--yes", "--json")))["receipt"]
    assert sorted(receipt["thread_ids"]) == ["sales-9", "support-1"]
    assert receipt["verified"] is True and receipt["remaining"] == []
    assert receipt["checkpoints"] == CHECKPOINTS_PER_TURN * 5
    assert sorted(counts(runner, stored)) == ["support-2"]
    table = invoke(runner, stored.args("forget", "-f", "user_id=u2"), input="y\n")
    assert table.exit_code == 0 and "verified" in table.stdout
    assert invoke(runner, stored.args("forget")).exit_code == 2  # no filter: refused
