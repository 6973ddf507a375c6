"""Reading commands: ``lus threads``, ``lus history``, ``lus show``, ``lus diff``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.json import JSON
from rich.panel import Panel
from rich.text import Text

from ..core.lifecycle import LIST_THREADS_MAX, ThreadInfo
from ..errors import CheckpointNotFoundError
from .common import (
    FilterOption,
    JsonFlag,
    KeyEnvOption,
    NamespaceOption,
    SaverOptions,
    UrlOption,
    handled,
)
from .parsing import parse_filter, parse_when
from .reading import (
    checkpoint,
    describe,
    diff,
    history_row,
    saver_of_flags,
    stored_view,
    thread_config,
    unified_view,
)
from .render import Output, advance, compact, iso_of, literal, plain, size, table, when


class ThreadSort(StrEnum):
    id = "id"
    last_write = "last-write"
    first_write = "first-write"
    checkpoints = "checkpoints"
    bytes = "bytes"
    expiry = "expiry"


class View(StrEnum):
    unified = "unified"
    json = "json"


def _sort_key(sort: ThreadSort) -> Any:
    keys: dict[ThreadSort, Any] = {
        ThreadSort.id: lambda t: t.thread_id,
        ThreadSort.last_write: lambda t: t.last_write,
        ThreadSort.first_write: lambda t: t.first_write,
        ThreadSort.checkpoints: lambda t: t.checkpoints,
        ThreadSort.bytes: lambda t: -1 if t.stored_bytes is None else t.stored_bytes,
        ThreadSort.expiry: lambda t: float("inf") if t.expires_at is None else t.expires_at,
    }
    return keys[sort]


def threads(
    url: UrlOption = None,
    option: SaverOptions = None,
    key_env: KeyEnvOption = None,
    filter: FilterOption = None,
    updated_after: Annotated[
        str | None,
        typer.Option(help="Only threads written after this: an ISO date/time, or an age (30d, 12h)."),
    ] = None,
    updated_before: Annotated[
        str | None,
        typer.Option(help="Only threads last written before this: an ISO date/time, or an age."),
    ] = None,
    sort: Annotated[ThreadSort, typer.Option(help="Order of the rows shown (pages go by id).")] = ThreadSort.id,
    reverse: Annotated[bool, typer.Option("--reverse", help="Largest / newest first.")] = False,
    limit: Annotated[
        int, typer.Option(min=1, max=LIST_THREADS_MAX, help="Threads per page.")
    ] = 50,
    after: Annotated[
        str | None, typer.Option("--after", help="The cursor a previous page printed.")
    ] = None,
    every_page: Annotated[bool, typer.Option("--all", help="Follow the cursor to the last page.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List threads: checkpoints, last write, bytes stored and expiry."""
    output = Output(as_json)
    now = datetime.now(UTC)
    query: dict[str, Any] = {
        "filter": parse_filter(filter or []),
        "updated_after": None if updated_after is None else parse_when(updated_after, "--updated-after", now),
        "updated_before": None if updated_before is None else parse_when(updated_before, "--updated-before", now),
        "limit": limit,
    }
    found: list[ThreadInfo] = []
    cursor = after
    with saver_of_flags(url, option, key_env) as saver, output.progress("listing threads") as bar:
        while True:
            page = saver.list_threads(cursor=cursor, **query)
            found.extend(page.threads)
            advance(bar, len(page.threads))
            cursor = page.next_cursor
            if cursor is None or not every_page:
                break
    found.sort(key=_sort_key(sort), reverse=reverse)
    if as_json:
        output.json({"threads": [t.as_dict() for t in found], "next_cursor": cursor})
        return
    rows = table(f"{len(found)} thread(s) in {describe(url)}", "thread", "checkpoints", "last write", "bytes", "expires")
    clock = time.time()
    for info in found:
        rows.add_row(
            literal(info.thread_id),
            str(info.checkpoints),
            when(info.last_write, clock),
            size(info.stored_bytes),
            when(info.expires_at, clock),
        )
    output.print(rows)
    if cursor is not None:
        output.print(literal(f"next page: --after {cursor}"))


def history(
    thread: Annotated[str, typer.Argument(help="The thread id.")],
    url: UrlOption = None,
    option: SaverOptions = None,
    key_env: KeyEnvOption = None,
    namespace: NamespaceOption = "",
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many, newest first.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """A thread's checkpoints, newest first: id, step, source, pending writes, time, parent."""
    output = Output(as_json)
    rows_found: list[dict[str, Any]] = []
    with saver_of_flags(url, option, key_env) as saver, output.progress(f"reading {thread}") as bar:
        for tup in saver.list(thread_config(thread, namespace), limit=limit):
            rows_found.append(history_row(tup))
            advance(bar)
    if not rows_found:
        where = f" in namespace {namespace!r}" if namespace else ""
        raise CheckpointNotFoundError(f"thread {thread!r} has no checkpoint{where}")
    if as_json:
        output.json({"thread_id": thread, "checkpoints": rows_found})
        return
    rows = table(f"thread {thread}: {len(rows_found)} checkpoint(s), newest first", "checkpoint", "step", "source", "writes", "time", "parent")
    for column in rows.columns[1:3]:
        column.no_wrap = True
    rows.columns[3].max_width = 20  # the written channels fold, the checkpoint id need not
    for row in rows_found:
        written = f"{row['writes']}" + (f" ({', '.join(row['written_channels'])})" if row["written_channels"] else "")
        rows.add_row(
            literal(row["checkpoint_id"]),
            literal(str(row["step"])),
            literal(str(row["source"] or "")),
            literal(written),
            iso_of(row["ts"]),
            literal(_short(row["parent_checkpoint_id"])),
        )
    output.print(rows)


def _short(checkpoint_id: str | None) -> str:
    """A parent's id by its distinctive tail (ids of one thread share their time prefix)."""
    if checkpoint_id is None:
        return "-"
    return checkpoint_id if len(checkpoint_id) <= 14 else "…" + checkpoint_id[-12:]


def _content_text(content: Any) -> str:
    """A message's content as a chat shows it: text parts joined, other parts named."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content or []:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
        elif isinstance(part, dict):
            parts.append(f"[{part.get('type', 'part')}]")
        else:
            parts.append(compact(part))
    return "\n".join(parts)


ROLE_STYLES = {"user": "cyan", "assistant": "green", "system": "magenta", "tool": "yellow"}


def _message_panel(index: int, message: dict[str, Any]) -> Panel:
    role = message["role"]
    title = f"{index} {role}" + (f" ({message['name']})" if message.get("name") else "")
    if message.get("tool_call_id"):
        title += f" ← call {message['tool_call_id']}"
    body = Text()
    body.append_text(literal(_content_text(message.get("content"))))
    for call in message.get("tool_calls") or []:
        if body:
            body.append("\n")
        body.append_text(literal(f"→ {call['name']}({compact(call.get('arguments') or {}, 200)})", "bold"))
        if call.get("id"):
            body.append_text(literal(f"  [call {call['id']}]", "dim"))
    return Panel(body, title=literal(title), title_align="left", border_style=ROLE_STYLES.get(role, "white"), expand=False)


def _show_unified(output: Output, view: dict[str, Any]) -> None:
    state = view["state"]
    meta = state["metadata"]
    output.print(literal(
        f"thread {view['thread_id']}  checkpoint {view['checkpoint_id']}  step {meta['step']}  "
        f"{meta['framework']}  {iso_of(meta['updated_at'])}  parent {meta['parent_checkpoint_id'] or '-'}",
        "bold",
    ))
    messages = state["messages"]
    output.print(literal(f"messages ({len(messages)})", "bold underline"))
    for index, message in enumerate(messages):
        output.print(_message_panel(index, message))
    context = table("context", "key", "value")
    for key, value in state["context"].items():
        context.add_row(literal(key), literal(compact(value, 400)))
    output.print(context if state["context"] else literal("context: (empty)"))
    if state["framework_state"]:
        output.print(Panel(JSON.from_data(state["framework_state"]), title="framework_state", title_align="left"))
    else:
        output.print(literal("framework_state: (empty)"))
    _show_writes(output, view["pending_writes"])


def _show_writes(output: Output, writes: list[dict[str, Any]]) -> None:
    if not writes:
        output.print(literal("pending writes: none"))
        return
    rows = table(f"pending writes ({len(writes)})", "task", "channel", "value")
    for write in writes:
        rows.add_row(literal(str(write["task_id"])), literal(str(write["channel"])), literal(compact(write["value"], 200)))
    output.print(rows)


def show(
    thread: Annotated[str, typer.Argument(help="The thread id.")],
    checkpoint_id: Annotated[
        str | None, typer.Option("--checkpoint", "-c", help="A checkpoint id; the latest by default.")
    ] = None,
    view: Annotated[
        View,
        typer.Option("--as", help="unified: messages, context, framework state; json: the checkpoint as stored."),
    ] = View.unified,
    url: UrlOption = None,
    option: SaverOptions = None,
    key_env: KeyEnvOption = None,
    namespace: NamespaceOption = "",
    as_json: JsonFlag = False,
) -> None:
    """One checkpoint: the chat as it reads, context, framework state and pending writes."""
    output = Output(as_json)
    with saver_of_flags(url, option, key_env) as saver:
        tup = checkpoint(saver, thread, checkpoint_id, namespace)
        document = unified_view(tup) if view is View.unified else stored_view(tup)
    if as_json:
        output.json(document)
    elif view is View.unified:
        _show_unified(output, document)
    else:
        output.print(JSON.from_data(plain(document)))


CHANGE_STYLES = {"added": "green", "removed": "red", "changed": "yellow"}
CHANGE_SIGNS = {"added": "+", "removed": "-", "changed": "~"}


def _message_line(message: dict[str, Any] | None) -> str:
    if message is None:
        return ""
    calls = "".join(f" → {c['name']}(…)" for c in message.get("tool_calls") or [])
    return f"{message['role']}: {compact(_content_text(message.get('content')), 120)}{calls}"


def diff_command(
    thread: Annotated[str, typer.Argument(help="The thread id.")],
    older: Annotated[str, typer.Argument(metavar="A", help="The checkpoint to compare from.")],
    newer: Annotated[str, typer.Argument(metavar="B", help="The checkpoint to compare to.")],
    url: UrlOption = None,
    option: SaverOptions = None,
    key_env: KeyEnvOption = None,
    namespace: NamespaceOption = "",
    as_json: JsonFlag = False,
) -> None:
    """What changed from checkpoint A to B: channel by channel, message by message."""
    output = Output(as_json)
    with saver_of_flags(url, option, key_env) as saver:
        document = diff(checkpoint(saver, thread, older, namespace), checkpoint(saver, thread, newer, namespace))
    if as_json:
        output.json(document)
        return
    output.print(literal(f"thread {thread}: {older} → {newer}", "bold"))
    if not document["channels"] and not document["messages"]:
        output.print(literal("no change"))
        return
    if not document["channels"]:
        output.print(literal("channels: no change"))
    channels = table(f"channels ({len(document['channels'])} changed)", "", "channel", "before", "after")
    for change in document["channels"]:
        style = CHANGE_STYLES[change["change"]]
        channels.add_row(
            literal(CHANGE_SIGNS[change["change"]], style),
            literal(change["channel"], style),
            literal(compact(change["before"], 60) if "before" in change else ""),
            literal(compact(change["after"], 60) if "after" in change else ""),
        )
    if document["channels"]:
        output.print(channels)
    if not document["messages"]:
        output.print(literal("messages: no change"))
        return
    messages = table(f"messages ({len(document['messages'])} changed)", "", "message", "before", "after")
    for change in document["messages"]:
        style = CHANGE_STYLES[change["change"]]
        messages.add_row(
            literal(CHANGE_SIGNS[change["change"]], style),
            literal(change["key"]),
            literal(_message_line(change.get("before"))),
            literal(_message_line(change.get("after")), style),
        )
    output.print(messages)


def register(app: typer.Typer) -> None:
    app.command("threads")(handled(threads))
    app.command("history")(handled(history))
    app.command("show")(handled(show))
    app.command("diff")(handled(diff_command))
