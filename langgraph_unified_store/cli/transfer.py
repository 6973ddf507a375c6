"""Moving data: ``lus export``, ``lus import``, ``lus copy`` (the ``transfer`` package).

An export file is the versioned JSON Lines of ``docs/export-format.md``; ``-`` is
stdout or stdin, so an export can be piped into an import. Each command prints what
moved (the export's counts, the import's ``ImportSummary``); a conflict, a damaged or
truncated file, or a copy that does not read back equal is one line and exit 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any, Final

import typer

from ..core.saver import UnifiedCheckpointSaver
from ..transfer import (
    ExportDecryptError,
    ExportKeyError,
    ImportConflictError,
    ImportSummary,
    Trailer,
    copy,
    export_to,
    import_from,
)
from .common import (
    CommandFailure,
    FilterOption,
    JsonFlag,
    KeyEnvOption,
    SaverOptions,
    UrlOption,
    YesFlag,
    confirm_or_stop,
    handled,
)
from .parsing import UsageProblem, parse_filter, parse_options, parse_when
from .reading import describe, key_from_env, new_sqlite_file, opened_saver, opened_store
from .render import Output, literal, reporter, table

STANDARD_STREAM: Final = "-"


class OnConflictChoice(StrEnum):
    ERROR = "error"
    SKIP = "skip"
    RESUME = "resume"
    REPLACE = "replace"


ThreadsOption = Annotated[
    list[str] | None,
    typer.Option("--thread", "-t", metavar="ID", help="Only this thread; repeatable (instead of filters)."),
]
UpdatedAfter = Annotated[
    str | None,
    typer.Option(help="Only threads written after this: an ISO date/time, or an age (30d, 12h)."),
]
UpdatedBefore = Annotated[
    str | None,
    typer.Option(help="Only threads last written before this: an ISO date/time, or an age."),
]
NoStoreFlag = Annotated[
    bool, typer.Option("--no-store", help="Leave the long-term memory store out (checkpoints only).")
]


def _selection(
    thread: list[str] | None,
    filter: list[str] | None,
    updated_after: str | None,
    updated_before: str | None,
) -> dict[str, Any]:
    """The threads to move, as the transfer functions take them: named, or filtered."""
    now = datetime.now(UTC)
    matching = parse_filter(filter or [])
    after = None if updated_after is None else parse_when(updated_after, "--updated-after", now)
    before = None if updated_before is None else parse_when(updated_before, "--updated-before", now)
    if thread and (matching or after or before):
        raise UsageProblem("give --thread, or --filter / --updated-after / --updated-before, not both")
    if thread:
        return {"threads": list(dict.fromkeys(thread))}
    return {"filter": matching or None, "updated_after": after, "updated_before": before}


def _counts(trailer: Trailer) -> dict[str, int]:
    return {
        "threads": trailer.threads, "checkpoints": trailer.checkpoints, "blobs": trailer.blobs,
        "writes": trailer.writes, "store_items": trailer.store_items,
    }


@contextmanager
def _opened(
    url: str | None, options: dict[str, Any], key: str | None, *, with_store: bool, create: bool
) -> Iterator[tuple[UnifiedCheckpointSaver, Any]]:
    """The saver at ``url`` and, unless left out, the store beside it."""
    with ExitStack() as stack:
        saver = stack.enter_context(opened_saver(url, options, key=key, create=create))
        store = stack.enter_context(opened_store(url, options, create=create)) if with_store else None
        yield saver, store


@contextmanager
def _removed_if_failed(url: str | None) -> Iterator[None]:
    """A SQLite file the block creates is removed again if it fails, so that a refused
    import or copy leaves no empty database behind."""
    created = new_sqlite_file(url)
    try:
        yield
    except BaseException:
        if created is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{created}{suffix}").unlink(missing_ok=True)
        raise


@contextmanager
def _import_failures_in_cli_terms() -> Iterator[None]:
    """The import's errors that name a Python argument (``on_conflict``, the saver's
    key), said with the flags of ``lus import``; a missing or wrong key is a failure
    (exit 1), not a usage error."""
    try:
        yield
    except ImportConflictError as exc:
        raise CommandFailure(exc.described("--on-conflict ", str)) from exc
    except ExportKeyError as exc:
        raise CommandFailure(
            f"{exc.fact}: pass the source's encryption key with --key-env NAME "
            "(or export with --decrypt)"
        ) from exc
    except ExportDecryptError as exc:
        raise CommandFailure(f"{exc}: pass the source's encryption key with --key-env NAME") from exc


def _export_to_path(path: str, saver: UnifiedCheckpointSaver, store: Any, **options: Any) -> Trailer:
    """``export_to`` a path, leaving no ``.partial`` file behind when it fails."""
    try:
        return export_to(path, saver, store, **options)
    except BaseException:
        Path(f"{path}.partial").unlink(missing_ok=True)
        raise


def export(
    destination: Annotated[
        str, typer.Option("--output", "-O", metavar="FILE", help="The export file to write; - for stdout.")
    ],
    target: Annotated[
        str | None, typer.Argument(metavar="URL", show_default=False, help="The storage to export (or --url).")
    ] = None,
    thread: ThreadsOption = None,
    filter: FilterOption = None,
    updated_after: UpdatedAfter = None,
    updated_before: UpdatedBefore = None,
    decrypt: Annotated[
        bool, typer.Option("--decrypt", help="Write values in plaintext (needs the key: --key-env).")
    ] = False,
    no_store: NoStoreFlag = False,
    url: UrlOption = None,
    option: SaverOptions = None,
    key_env: KeyEnvOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Write threads (all, or those named or filtered) and the store's items to an
    export file; an encrypting saver's values stay sealed unless --decrypt."""
    output = Output(as_json)
    to_stdout = destination == STANDARD_STREAM
    if to_stdout and as_json:
        raise UsageProblem("--json with --output -: stdout carries the export; write it to a file for the JSON summary")
    url = target or url
    key = key_from_env(key_env)
    if decrypt and key is None:
        raise UsageProblem("--decrypt: give the saver's key with --key-env NAME")
    chosen = _selection(thread, filter, updated_after, updated_before)
    with _opened(url, parse_options(option or []), key, with_store=not no_store, create=False) as (saver, store):
        named = chosen.get("threads")
        total = len(named) if named is not None and store is None else None
        with output.progress("exporting", total=total) as bar:
            options = {**chosen, "decrypt": decrypt, "progress": reporter(bar)}
            if to_stdout:
                stream: IO[bytes] = sys.stdout.buffer
                trailer = export_to(stream, saver, store, **options)
                stream.flush()
            else:
                trailer = _export_to_path(destination, saver, store, **options)
    counts = _counts(trailer)
    encrypted = key is not None and not decrypt
    if as_json:
        output.json({"source": describe(url), "output": destination, "encrypted": encrypted, "counts": counts})
        return
    line = (
        f"exported {counts['threads']} thread(s): {counts['checkpoints']} checkpoint(s), "
        f"{counts['writes']} write(s), {counts['blobs']} blob(s), {counts['store_items']} store item(s)"
        f"{' (values encrypted)' if encrypted else ''} to {'stdout' if to_stdout else destination}"
    )
    if to_stdout:
        output.note(line)  # stdout is the export itself
    else:
        output.print(literal(line))


def _show_summary(output: Output, title: str, summary: ImportSummary) -> None:
    rows = table(title, "", "", show_header=False)
    fields = [
        ("threads", summary.threads),
        ("threads skipped", ", ".join(summary.threads_skipped) or 0),
        ("checkpoints written", summary.checkpoints_written),
        ("checkpoints already there", summary.checkpoints_present),
        ("writes written", summary.writes_written),
        ("store items written", summary.store_items_written),
        ("store items skipped", summary.store_items_skipped),
        ("verified", "yes (read back equal)" if summary.verified else "no (--verify reads back)"),
    ]
    for name, value in fields:
        rows.add_row(name, literal(str(value)))
    output.print(rows)


def import_(
    first: Annotated[
        str | None,
        typer.Argument(metavar="URL", show_default=False, help="The storage to import into (may be left out for --url)."),
    ] = None,
    second: Annotated[
        str | None, typer.Argument(metavar="FILE", show_default=False, help="The export file; - for stdin.")
    ] = None,
    on_conflict: Annotated[
        OnConflictChoice,
        typer.Option(
            help="A thread (or store item) the target has: error (refuse, the default), skip it, "
            "resume (complete it; what it has must equal the file's), replace (delete it first)."
        ),
    ] = OnConflictChoice.ERROR,
    verify: Annotated[bool, typer.Option("--verify", help="Read every checkpoint and item back and compare.")] = False,
    no_store: NoStoreFlag = False,
    url: UrlOption = None,
    option: SaverOptions = None,
    key_env: KeyEnvOption = None,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Import an export file; a file is checked whole first, so a damaged or truncated
    one writes nothing (from stdin, a damaged thread is deleted again)."""
    output = Output(as_json)
    if first is None:
        raise UsageProblem("import: give the export file (lus import URL FILE, or --url URL FILE)")
    source, url = (first, url) if second is None else (second, first)
    from_stdin = source == STANDARD_STREAM
    if not from_stdin and not os.path.isfile(source):
        raise FileNotFoundError(f"no export file at {source}")
    if on_conflict is OnConflictChoice.REPLACE and not yes:
        if from_stdin:
            raise UsageProblem("--on-conflict replace with FILE -: stdin carries the export, so confirm with --yes")
        question = f"Replace every thread of {source} that {describe(url)} already has (each is deleted first)?"
        confirm_or_stop(output, question, yes=yes, nothing_done="nothing imported")
    key = key_from_env(key_env)
    with (
        _import_failures_in_cli_terms(),
        _removed_if_failed(url),
        _opened(url, parse_options(option or []), key, with_store=not no_store, create=True) as (saver, store),
        output.progress("importing") as bar,
    ):
        summary = import_from(
            sys.stdin.buffer if from_stdin else source, saver, store,
            on_conflict=on_conflict.value, verify=verify, progress=reporter(bar),
        )
    if as_json:
        output.json({
            "target": describe(url), "file": source, "on_conflict": on_conflict.value,
            "summary": summary.as_dict(),
        })
        return
    _show_summary(output, f"imported {'stdin' if from_stdin else source} into {describe(url)}", summary)


def copy_command(
    source_url: Annotated[str, typer.Argument(metavar="SRC_URL", help="The storage to copy from.")],
    target_url: Annotated[str, typer.Argument(metavar="DST_URL", help="The storage to copy to.")],
    thread: ThreadsOption = None,
    filter: FilterOption = None,
    updated_after: UpdatedAfter = None,
    updated_before: UpdatedBefore = None,
    no_store: NoStoreFlag = False,
    source_option: Annotated[
        list[str] | None,
        typer.Option("--source-option", metavar="KEY=VALUE", help="A source saver/store option, e.g. schema=old."),
    ] = None,
    target_option: Annotated[
        list[str] | None,
        typer.Option("--target-option", metavar="KEY=VALUE", help="A target saver/store option, e.g. prefix=new."),
    ] = None,
    source_key_env: Annotated[
        str | None, typer.Option("--source-key-env", metavar="NAME", help="The variable holding the source's encryption key.")
    ] = None,
    target_key_env: Annotated[
        str | None, typer.Option("--target-key-env", metavar="NAME", help="The variable holding the target's encryption key.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Copy threads and store items from one storage to another, without a file:
    verified by reading back, and safe to run again (what is there and equal is left,
    what an interrupted copy left part-way is completed, what differs is refused)."""
    output = Output(as_json)
    chosen = _selection(thread, filter, updated_after, updated_before)
    source_options = parse_options(source_option or [])
    target_options = parse_options(target_option or [])
    if source_url == target_url and source_options == target_options:
        raise UsageProblem("copy: the source and the target are the same storage (a schema or prefix option tells them apart)")
    source_key = key_from_env(source_key_env, "--source-key-env")
    target_key = key_from_env(target_key_env, "--target-key-env")
    with (
        _removed_if_failed(target_url),
        _opened(source_url, source_options, source_key, with_store=not no_store, create=False) as (source, source_store),
        _opened(target_url, target_options, target_key, with_store=not no_store, create=True) as (target, target_store),
        output.progress("copying") as bar,
    ):
        summary = copy(
            source, target, source_store=source_store, target_store=target_store,
            progress=reporter(bar), **chosen,
        )
    if as_json:
        output.json({"source": describe(source_url), "target": describe(target_url), "summary": summary.as_dict()})
        return
    _show_summary(output, f"copied {describe(source_url)} to {describe(target_url)}", summary)


def register(app: typer.Typer) -> None:
    app.command("export")(handled(export))
    app.command("import")(handled(import_))
    app.command("copy")(handled(copy_command))
