"""How the CLI shows things: Rich on a terminal, one orjson document with ``--json``.

Stored values reach the screen only as plain text: control characters (a terminal's
escape sequences among them) are shown escaped, and no string is read as Rich markup,
so whatever a graph stored can neither restyle nor drive the operator's terminal.
Values become JSON types by ``plain``, which only reads attributes of objects the saver's
safe serde already built; it calls nothing stored.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any, Final
from uuid import UUID

import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_PLAIN_DEPTH: Final = 64
INT_RANGE: Final = (-(2**63), 2**64 - 1)
"""Integers orjson writes; others are shown as strings."""


def clean(text: str) -> str:
    """``text`` with every control character but newline and tab written as an escape."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def literal(text: str, style: str = "") -> Text:
    """Text shown as it is: no markup, control characters escaped."""
    return Text(clean(text), style=style)


def plain(value: Any, _depth: int = 0) -> Any:
    """``value`` as JSON types, for ``--json`` and for showing it: LangChain messages and
    pydantic models by their dump, dataclasses by their fields, bytes as base64, sets as
    sorted lists, anything else by its type name and repr."""
    if _depth > _PLAIN_DEPTH:
        return "..."
    if isinstance(value, int) and not isinstance(value, bool) and not INT_RANGE[0] <= value <= INT_RANGE[1]:
        return str(value)  # beyond what JSON tools read exactly
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(key): plain(item, _depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item, _depth + 1) for item in value]
    if isinstance(value, (set, frozenset)):
        items = [plain(item, _depth + 1) for item in value]
        return sorted(items, key=lambda item: orjson.dumps(item))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes_base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (date, UUID)):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return plain(value.value, _depth + 1)
    dump = getattr(value, "model_dump", None)
    if callable(dump) and hasattr(type(value), "model_fields"):
        return plain(dump(mode="json"), _depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value)}
    return {"type": f"{type(value).__module__}.{type(value).__qualname__}", "repr": repr(value)[:500]}


def to_json(document: Any) -> bytes:
    return orjson.dumps(plain(document), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def compact(value: Any, width: int = 80) -> str:
    """A value on one line, cut at ``width`` characters."""
    text = value if isinstance(value, str) else orjson.dumps(plain(value)).decode()
    text = clean(text.replace("\n", " "))
    return text if len(text) <= width else text[: width - 1] + "…"


# -- times and sizes -------------------------------------------------------------------------


def when(seconds: float | None, now: float | None = None, *, never: str = "never") -> str:
    """An epoch time as ``2025-01-31 12:00:05Z (3h ago)``."""
    if seconds is None:
        return never
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if now is None:
        return stamp
    delta = seconds - now
    return f"{stamp} ({span(abs(delta))} {'ago' if delta <= 0 else 'from now'})"


def span(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def size(count: int | None) -> str:
    if count is None:
        return "?"
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"


def iso_of(text: str | None) -> str:
    """A checkpoint's ISO ``ts`` as ``2025-01-31 12:00:05Z``."""
    if not text:
        return ""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return clean(text)
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# -- consoles ------------------------------------------------------------------------------


class Output:
    """Where a command writes: its result to stdout (a Rich console, or one JSON
    document), everything else (progress, errors, prompts) to stderr."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.out = Console(highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def json(self, document: Any) -> None:
        encoded = to_json(document)
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is not None:
            buffer.write(encoded)
        else:
            sys.stdout.write(encoded.decode())
        sys.stdout.flush()

    def print(self, *renderables: Any) -> None:
        self.out.print(*renderables)

    def note(self, message: str) -> None:
        """A line for the operator (stderr, so that stdout stays the result)."""
        self.err.print(literal(message, "dim"))

    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Progress]:
        """A progress bar on stderr, shown only when stderr is a terminal."""
        columns = [SpinnerColumn(), TextColumn("{task.description}")]
        if total is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        columns.append(TimeElapsedColumn())
        with Progress(
            *columns, console=self.err, transient=True, disable=not self.err.is_terminal
        ) as bar:
            bar.add_task(description, total=total)
            yield bar


def advance(bar: Progress, steps: int = 1, total: int | None = None) -> None:
    """Move the (single) task of ``bar`` on; ``total`` grows it when more work appears."""
    for task in bar.tasks:
        if total is not None:
            bar.update(task.id, total=total)
        bar.advance(task.id, steps)


def reporter(bar: Progress) -> Callable[[int, int | None], None]:
    """A ``progress(done, total)`` callback (the transfer's) that moves ``bar``."""

    def report(done: int, total: int | None) -> None:
        for task in bar.tasks:
            bar.update(task.id, completed=done, total=total)

    return report


def table(title: str | None, *columns: str, **kwargs: Any) -> Table:
    made = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        min_width=len(title) if title else None,
        **kwargs,
    )
    for column in columns:
        made.add_column(column, overflow="fold")
    return made
