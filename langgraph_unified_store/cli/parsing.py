"""What an operator types, parsed: durations, points in time, metadata filters, saver
options, store namespaces; and what the CLI prints about a URL, with its secrets out.

Pure functions, so that the rules can be property-tested without a server. Every bad
value is a ``UsageProblem`` naming the option and what was wrong (exit code 2).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

DURATION_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_DURATION: Final = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
_URL_SECRET: Final = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*):(?P<secret>[^/\s]*)@")
_KEYWORD_SECRET: Final = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'[^']*'|\S+)", re.I)
_QUERY_SECRET: Final = re.compile(r"(?P<head>[?&]password=)(?P<secret>[^&\s]*)", re.I)


class UsageProblem(ValueError):
    """Something the operator typed cannot be used; the CLI exits with code 2."""


def parse_duration(text: str, option: str) -> timedelta:
    """``30d``, ``12h``, ``1w2d``, ``90m``, ``1.5h`` as a positive timedelta."""
    cleaned = text.strip().lower()
    if not _DURATION.fullmatch(cleaned):
        raise UsageProblem(
            f"{option}: {text!r} is not a duration (use a number and a unit s, m, h, d or w, "
            "e.g. 30d, 12h, 1w2d)"
        )
    total = sum(float(number) * DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(cleaned))
    if not (0 < total < math.inf) or total > timedelta.max.total_seconds() / 2:
        raise UsageProblem(f"{option}: {text!r} must be a positive duration of reasonable size")
    return timedelta(seconds=total)


def looks_like_duration(text: str) -> bool:
    return _DURATION.fullmatch(text.strip().lower()) is not None


def parse_when(text: str, option: str, now: datetime) -> datetime:
    """A point in time: an ISO date or datetime (UTC unless it says otherwise), or a
    duration meaning that long before ``now``."""
    if looks_like_duration(text):
        return now - parse_duration(text, option)
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageProblem(
            f"{option}: {text!r} is neither an ISO date (2024-05-01, 2024-05-01T12:00:00+02:00) "
            "nor a duration (30d, 12h)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_filter(pairs: Iterable[str], option: str = "--filter") -> dict[str, Any]:
    """``key=value`` (the value is a string) or ``key:=json`` (a JSON number, boolean,
    string or null), as metadata filters are: type-exact."""
    result: dict[str, Any] = {}
    for pair in pairs:
        if ":=" in pair and ("=" not in pair or pair.index(":=") < pair.index("=")):
            key, _, raw = pair.partition(":=")
            try:
                value: Any = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise UsageProblem(f"{option}: {pair!r}: {raw!r} after ':=' is not JSON") from None
            if isinstance(value, (dict, list)):
                raise UsageProblem(f"{option}: {pair!r}: the value must be a JSON scalar")
        elif "=" in pair:
            key, _, value = pair.partition("=")
        else:
            raise UsageProblem(f"{option}: {pair!r} is not key=value (or key:=json for a number)")
        if not key:
            raise UsageProblem(f"{option}: {pair!r} has no key before '='")
        result[key] = value
    return result


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """Saver and store options (``-o schema=tenant_a``, ``-o max_size:=4``), as filters."""
    return parse_filter(pairs, "--option")


def parse_namespace(text: str | None) -> tuple[str, ...]:
    """A store namespace written ``a/b/c`` (or ``a.b.c``), as a tuple; empty for none."""
    if text is None or not text.strip("/"):
        return ()
    separator = "/" if "/" in text or "." not in text else "."
    return tuple(part for part in text.strip(separator).split(separator))


def redact(text: str) -> str:
    """``text`` with every password in a URL, DSN keyword or query string replaced by ***."""
    text = _URL_SECRET.sub(lambda m: f"{m['head']}:***@", text)
    text = _KEYWORD_SECRET.sub(lambda m: f"{m['head']}***", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['head']}***", text)
