"""Commands that delete: ``lus prune``, ``lus retain``, ``lus forget``.

Each first finds what it would touch (``list_threads``), shows it with ``--dry-run``,
asks before it deletes unless ``--yes``, then calls the saver's own method and reports
its receipt: what the storage actually removed, which may differ from what was listed
(threads written meanwhile are kept; expired ones, which no listing shows, also go).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from ..core.lifecycle import LIST_THREADS_MAX, ThreadInfo
from ..core.saver import UnifiedCheckpointSaver
from .common import (
    EXIT_FAILURE,
    DryRunFlag,
    FilterOption,
    JsonFlag,
    KeyEnvOption,
    SaverOptions,
    UrlOption,
    YesFlag,
    confirm_or_stop,
    handled,
)
from .parsing import UsageProblem, parse_filter, parse_when
from .reading import describe, saver_of_flags
from .render import Output, advance, literal, size, table, when


def _matching(
    saver: UnifiedCheckpointSaver,
    output: Output,
    *,
    filter: Mapping[str, Any],
    updated_before: datetime | None = None,
) -> list[ThreadInfo]:
    """Every thread reads would find that matches, a page at a time."""
    found: list[ThreadInfo] = []
    cursor: str | None = None
    with output.progress("finding threads") as bar:
        while True:
            page = saver.list_threads(
                filter=dict(filter), updated_before=updated_before, limit=LIST_THREADS_MAX, cursor=cursor
            )
            found.extend(page.threads)
            advance(bar, len(page.threads))
            cursor = page.next_cursor
            if cursor is None:
                return found


def _show_targets(output: Output, title: str, targets: list[ThreadInfo]) -> None:
    rows = table(title, "thread", "checkpoints", "last write", "bytes")
    for info in targets:
        rows.add_row(literal(info.thread_id), str(info.checkpoints), when(info.last_write), size(info.stored_bytes))
    (output.err if output.as_json else output.out).print(rows)


def _confirm(output: Output, question: str, yes: bool) -> None:
    confirm_or_stop(output, question, yes=yes, nothing_done="nothing deleted")


def prune(
    threads: Annotated[list[str] | None, typer.Argument(help="Thread ids; or use --filter / --all.")] = None,
    keep_last: Annotated[
        int, typer.Option(min=1, help="Checkpoints kept per namespace, newest first (1: keep_latest).")
    ] = 1,
    filter: FilterOption = None,
    every_thread: Annotated[bool, typer.Option("--all", help="Prune every thread.")] = False,
    url: UrlOption = None,
    option: SaverOptions = None,
    key_env: KeyEnvOption = None,
    dry_run: DryRunFlag = False,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Thin out threads' history, keeping the newest checkpoint(s) of each namespace
    (and the parents a delta channel still needs)."""
    output = Output(as_json)
    matching = parse_filter(filter or [])
    named = list(dict.fromkeys(threads or []))
    if not (named or matching or every_thread):
        raise UsageProblem("prune: name thread ids, or give --filter or --all")
    strategy = "keep_latest" if keep_last == 1 else "keep_last"
    with saver_of_flags(url, option, key_env) as saver:
        targets = _matching(saver, output, filter=matching)
        if named:
            wanted = set(named)
            targets = [t for t in targets if t.thread_id in wanted]
            missing = wanted - {t.thread_id for t in targets}
            if missing:
                raise UsageProblem(f"prune: no such thread(s): {', '.join(sorted(missing))}")
        before = {t.thread_id: t.checkpoints for t in targets}
        report: dict[str, Any] = {
            "strategy": strategy,
            "keep": keep_last,
            "dry_run": dry_run,
            "threads": [t.as_dict() for t in targets],
        }
        if not targets:
            if as_json:
                output.json({**report, "pruned": []})
            else:
                output.print(literal("no thread matches; nothing to do"))
            return
        if dry_run:
            _show_targets(output, f"would prune {len(targets)} thread(s), keeping {keep_last} per namespace", targets)
            if as_json:
                output.json(report)
            return
        _confirm(output, f"Prune {len(targets)} thread(s) in {describe(url)}, keeping the newest {keep_last} checkpoint(s) of each namespace?", yes)
        with output.progress("pruning", total=len(targets)) as bar:
            for info in targets:
                saver.prune([info.thread_id], strategy=strategy, keep=None if strategy == "keep_latest" else keep_last)
                advance(bar)
        after = {t.thread_id: t.checkpoints for t in _matching(saver, output, filter=matching) if t.thread_id in before}
    pruned: list[dict[str, Any]] = [
        {"thread_id": tid, "checkpoints_before": count, "checkpoints_after": after.get(tid, 0)}
        for tid, count in before.items()
    ]
    removed = sum(p["checkpoints_before"] - p["checkpoints_after"] for p in pruned)
    if as_json:
        output.json({**report, "pruned": pruned, "checkpoints_removed": removed})
        return
    rows = table(f"pruned {len(pruned)} thread(s): {removed} checkpoint(s) removed", "thread", "before", "after")
    for entry in pruned:
        rows.add_row(literal(entry["thread_id"]), str(entry["checkpoints_before"]), str(entry["checkpoints_after"]))
    output.print(rows)


def _show_removed(output: Output, what: str, removed: dict[str, Any]) -> None:
    output.print(literal(
        f"{what} {len(removed['thread_ids'])} thread(s): {removed['checkpoints']} checkpoint(s), "
        f"{removed['writes']} write(s), {removed['blobs']} blob(s), {removed['items']} item(s)"
    ))


def retain(
    older_than: Annotated[
        str, typer.Option(help="Delete threads last written before this: an age (30d, 12h) or an ISO date.")
    ],
    filter: FilterOption = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Delete at most this many threads.")] = None,
    url: UrlOption = None,
    option: SaverOptions = None,
    key_env: KeyEnvOption = None,
    dry_run: DryRunFlag = False,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete whole threads not written within --older-than (a retention policy)."""
    output = Output(as_json)
    cutoff = parse_when(older_than, "--older-than", datetime.now(UTC))
    matching = parse_filter(filter or [])
    with saver_of_flags(url, option, key_env) as saver:
        targets = _matching(saver, output, filter=matching, updated_before=cutoff)
        if limit is not None:
            targets = targets[:limit]
        title = f"threads last written before {cutoff.isoformat()}"
        if dry_run or not targets:
            _show_targets(output, f"would delete {len(targets)} {title}", targets)
            if as_json:
                output.json({"dry_run": dry_run, "older_than": cutoff.isoformat(), "threads": [t.as_dict() for t in targets]})
            return
        _confirm(output, f"Delete {len(targets)} {title} from {describe(url)}?", yes)
        with output.progress("deleting threads"):
            removed = saver.delete_threads(cutoff, filter=matching or None, limit=limit).as_dict()
    if as_json:
        output.json({"dry_run": False, "older_than": cutoff.isoformat(), "removed": removed})
    else:
        _show_removed(output, "deleted", removed)


def forget(
    filter: FilterOption = None,
    url: UrlOption = None,
    option: SaverOptions = None,
    key_env: KeyEnvOption = None,
    dry_run: DryRunFlag = False,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Erase every thread whose checkpoint metadata match --filter (a data-subject
    request), then check that nothing is left; exits 1 if something is."""
    output = Output(as_json)
    matching = parse_filter(filter or [])
    if not matching:
        raise UsageProblem("forget: give at least one --filter key=value")
    with saver_of_flags(url, option, key_env) as saver:
        targets = _matching(saver, output, filter=matching)
        if dry_run:
            _show_targets(output, f"would erase {len(targets)} thread(s)", targets)
            if as_json:
                output.json({"dry_run": True, "filter": matching, "threads": [t.as_dict() for t in targets]})
            return
        if targets:
            _confirm(output, f"Erase {len(targets)} thread(s) matching {matching} from {describe(url)}?", yes)
        with output.progress("erasing"):
            receipt = saver.forget(matching).as_dict()
    if as_json:
        output.json({"dry_run": False, "receipt": receipt})
    else:
        _show_removed(output, "erased", receipt)
        if receipt["verified"]:
            output.print(literal("verified: no matching thread and nothing of an erased thread is left", "green"))
        else:
            output.print(literal(f"NOT verified: still found {', '.join(receipt['remaining'])}", "red"))
    if not receipt["verified"]:
        raise typer.Exit(EXIT_FAILURE)


def register(app: typer.Typer) -> None:
    app.command("prune")(handled(prune))
    app.command("retain")(handled(retain))
    app.command("forget")(handled(forget))
