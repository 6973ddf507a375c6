"""What the core refuses before anything reaches a backend, and what it refuses to read back.

Every user-supplied string that a backend stores as text or as part of a key (thread
ids, namespaces, checkpoint ids, channel names, versions, task ids and paths, run ids,
filter keys and values) is checked here, once, so that all four backends behave the
same: a NUL character (PostgreSQL text cannot hold it, SQLite drops what follows it on
some paths) or a lone surrogate (not Unicode, so not UTF-8 for any driver) is an
``InvalidConfigError`` naming the argument, before anything is written.

Reading, a stored checkpoint that is well-formed bytes but not a checkpoint (a plain
object, a skeleton without ``v``/``ts``/``versions_seen``, versions of the wrong types)
is a ``CorruptDataError`` naming the thread and checkpoint, instead of a ``KeyError``
deep inside LangGraph.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final

from ..errors import CorruptDataError, InvalidConfigError

# Filter and metadata integers are JSON numbers that every backend keeps as 64-bit ints.
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
# Longest repr of a refused value shown in a message.
SHOWN_CHARS: Final = 60


def show(value: object) -> str:
    """A value's repr, cut short: a 10,000-character id must not make a 10 KB message."""
    if isinstance(value, (str, bytes)) and len(value) > SHOWN_CHARS:
        # repr of the ends only: a 100 MB id costs no 100 MB repr.
        text = repr(value[: SHOWN_CHARS - 10]) + repr(value[-7:])
    else:
        text = repr(value)
    if len(text) <= SHOWN_CHARS:
        return text
    size = f"{len(value)} chars" if isinstance(value, str) else type(value).__name__
    return f"{text[: SHOWN_CHARS - 10]}...{text[-7:]} ({size})"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text by every backend, or None when it can."""
    if "\x00" in value:
        return "holds a NUL character ('\\x00'): refused on every backend (PostgreSQL text cannot store one)"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone surrogate (not valid Unicode, so not storable as UTF-8)"
    return None


def check_text(value: Any, what: str, operation: str) -> str:
    """``value`` when it is a string every backend can store; else InvalidConfigError."""
    if not isinstance(value, str):
        raise InvalidConfigError(
            f"{operation}: {what} must be a string, not {type(value).__name__} {show(value)}"
        )
    problem = text_problem(value)
    if problem is not None:
        raise InvalidConfigError(f"{operation}: {what} {show(value)} {problem}")
    return value


def check_thread_id(value: Any, operation: str, what: str = "thread_id") -> str:
    """A thread id as text: a string, or an int or UUID (as LangGraph's savers take them)."""
    if isinstance(value, (int, uuid.UUID)) and not isinstance(value, bool):
        value = str(value)
    if value is None or value == "":
        raise InvalidConfigError(
            f"{operation}: config['configurable'] needs a 'thread_id' "
            "(e.g. {'configurable': {'thread_id': 'my-thread'}})"
            if what == "thread_id"
            else f"{operation}: {what} must be a non-empty string"
        )
    return check_text(value, what, operation)


def check_id_list(values: Any, what: str, operation: str) -> list[str]:
    """A list of ids (thread ids, run ids): a string is refused, not read as characters."""
    if isinstance(values, (str, bytes, bytearray)) or not isinstance(values, Iterable):
        raise InvalidConfigError(
            f"{operation}: {what}s must be a list of ids, not {type(values).__name__} {show(values)}"
        )
    return [check_thread_id(v, operation, what) for v in values]


def _joined(texts: Iterable[Any]) -> str | None:
    """All of ``texts`` as one string, or None when one is not a str (join checks, in C)."""
    try:
        return "".join(texts)
    except TypeError:
        return None


def check_channels(names: Iterable[Any], operation: str) -> None:
    names = list(names)
    joined = _joined(names)
    if joined is None or text_problem(joined) is not None:
        for name in names:
            check_text(name, "channel name", operation)


def check_versions(versions: Any, what: str, operation: str) -> Mapping[str, Any]:
    """Channel versions (channel -> str, int or float) as sent to ``put``.

    The common case (string names and versions, all storable) is checked in one pass
    over joined strings; only a failure looks at each entry, to name it."""
    if type(versions) is not dict and not isinstance(versions, Mapping):
        raise InvalidConfigError(f"{operation}: {what} must be a mapping, not {type(versions).__name__}")
    names, values = _joined(versions), _joined(versions.values())
    if names is not None and values is not None and text_problem(names + values) is None:
        return versions
    for channel, version in versions.items():
        check_text(channel, f"channel name in {what}", operation)
        if isinstance(version, str):
            check_text(version, f"version of channel {show(channel)}", operation)
        elif isinstance(version, bool) or not isinstance(version, (int, float)) or (
            isinstance(version, float) and not math.isfinite(version)
        ):
            raise InvalidConfigError(
                f"{operation}: version of channel {show(channel)} must be a string or a number, "
                f"not {show(version)}"
            )
    return versions


def check_filter_value(key: str, value: Any) -> None:
    """A filter value a backend compares: text it can store, an int64, a finite float."""
    if isinstance(value, str):
        check_text(value, f"filter value for {show(key)}", "list")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidConfigError(
                f"list: filter value for {show(key)} ({show(value)}) is beyond the 64-bit "
                "integers that metadata can hold"
            )
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidConfigError(
            f"list: filter value for {show(key)} is {value!r}, which JSON metadata cannot hold"
        )


# -- reading -------------------------------------------------------------------------------


_VERSION_TYPES: Final = (str, int, float)


def _versions_ok(value: Any) -> bool:
    """A mapping of channel -> version (str, int or float; a bool is no version)."""
    return type(value) is dict and all(
        type(k) is str and type(v) in _VERSION_TYPES for k, v in value.items()
    )


def check_checkpoint_shape(
    checkpoint: dict[str, Any], where: str, *, check_versions: bool = True
) -> None:
    """Refuse a decoded checkpoint LangGraph could not use: the fields it reads must be
    there, with the types it reads them as. ``check_versions=False`` when the channel
    versions come from the record, which its backend already checked."""
    version = checkpoint.get("v")
    if type(version) is not int:
        raise CorruptDataError(f"{where}: stored checkpoint has no format version 'v' ({show(version)})")
    if type(checkpoint.get("ts")) is not str:
        raise CorruptDataError(f"{where}: stored checkpoint has no timestamp 'ts'")
    # Node -> (channel -> version); the versions inside are compared by LangGraph only
    # when it runs the graph on, so the two levels of mappings are what is checked here.
    seen = checkpoint.get("versions_seen")
    if type(seen) is not dict or not all(
        type(k) is str and type(v) is dict for k, v in seen.items()
    ):
        raise CorruptDataError(f"{where}: stored 'versions_seen' is not a mapping of channel versions")
    if check_versions and not _versions_ok(checkpoint.get("channel_versions")):
        raise CorruptDataError(f"{where}: stored 'channel_versions' is not a mapping of versions")
    updated = checkpoint.get("updated_channels")
    if updated is not None and (type(updated) is not list or _joined(updated) is None):
        raise CorruptDataError(f"{where}: stored 'updated_channels' is not a list of channel names")
    sends = checkpoint.get("pending_sends")
    if sends is not None and not isinstance(sends, list):
        raise CorruptDataError(f"{where}: stored 'pending_sends' is not a list")


def metadata_shape_problem(metadata: Mapping[str, Any]) -> str | None:
    """What LangGraph could not use in checkpoint metadata: it adds to ``step`` and reads
    ``parents`` as a mapping of namespace -> checkpoint id. None when both are fine."""
    step = metadata.get("step")
    if step is not None and type(step) is not int:
        return f"metadata 'step' is {show(step)}, not an integer"
    parents = metadata.get("parents")
    if parents is not None and not (
        type(parents) is dict and _joined(parents) is not None and _joined(parents.values()) is not None
    ):
        return f"metadata 'parents' is {show(parents)}, not a mapping of namespace to checkpoint id"
    return None


def check_metadata_shape(metadata: Mapping[str, Any], where: str) -> None:
    problem = metadata_shape_problem(metadata)
    if problem is not None:
        raise CorruptDataError(f"{where}: stored {problem}")
