"""The export format: versioned JSON Lines, one record per line, backend-neutral.

``docs/export-format.md`` describes it for readers of the files; this module is its one
definition in code. Each line is a JSON object with a ``kind``; ``parse_record`` turns
one into a typed record or raises ``ExportFormatError`` naming the line, and
``record_json`` is its inverse. Values a serde wrote travel as ``TypedValue`` (its
type tag and base64 bytes), sealed for their place in the file when the export is
encrypted; metadata and store items are JSON, as they are stored.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from ..errors import CorruptDataError, InvalidConfigError, UnifiedStoreError

FORMAT_NAME: Final = "langgraph-unified-store-export"
FORMAT_VERSION: Final = 1
"""The version this library writes and the newest it reads."""


class ExportFormatError(CorruptDataError):
    """A line of an export is not what the format says (damaged, truncated, of a newer
    version); ``line`` is its number, counted from 1 (0: the file as a whole)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


CONFLICT_CHOICES: Final = {"skip": "keeps it", "resume": "completes it", "replace": "deletes it first"}
"""The ``on_conflict`` values that let a thread the target holds through, and what each does."""


class ImportConflictError(UnifiedStoreError):
    """An import met a thread (or store item) the target already holds, and
    ``on_conflict`` did not allow it; nothing of that thread was written.

    ``fact`` is what was met; with ``choices``, the message goes on with the
    ``on_conflict`` values that would have let it through (``described`` spells them
    for another caller, such as a command line's flag)."""

    def __init__(self, message: str, *, thread_id: str | None = None, choices: bool = False) -> None:
        self.fact = message
        self.thread_id = thread_id
        self.choices = choices
        super().__init__(self.described())

    def described(self, option: str = "on_conflict=", spell: Callable[[str], str] = repr) -> str:
        """The message, the choices written as ``option`` followed by each value as
        ``spell`` writes it: ``on_conflict='skip'`` here, ``--on-conflict skip`` in the CLI."""
        if not self.choices:
            return self.fact
        first, *rest = (f"{spell(value)} {effect}" for value, effect in CONFLICT_CHOICES.items())
        return f"{self.fact} ({option}{first}, {', '.join(rest)})"


class ExportKeyError(InvalidConfigError):
    """The export's values are encrypted and the target saver has no key to open them;
    nothing was written. ``fact`` says what is encrypted, without the remedy, which the
    message adds as Python spells it."""

    def __init__(self, fact: str, line: int = 0) -> None:
        self.fact = fact
        self.line = line
        super().__init__(
            f"{fact}; import into a saver opened with the source's encryption key "
            "(or export with decrypt=True)"
        )


class ExportSourceError(UnifiedStoreError):
    """The export's source cannot be read as it is: its schema has migrations (or an
    upgrade) pending, which reading it would apply, and an export changes nothing in
    its source."""


class ExportDecryptError(ExportFormatError):
    """A sealed value of the export does not open with the target saver's key: it was
    sealed with another key, or the file was changed."""


@dataclass(slots=True, frozen=True)
class TypedValue:
    """What a serde's ``dumps_typed`` gave: its type tag and bytes (ciphertext when the
    tag starts with ``lus2:``)."""

    type: str
    data: bytes


@dataclass(slots=True)
class Header:
    created_at: str
    source: str | None
    encrypted: bool
    version: int = FORMAT_VERSION


@dataclass(slots=True)
class ThreadStart:
    thread_id: str


@dataclass(slots=True)
class Blob:
    """One channel's value at one version, written before the first checkpoint that
    names it. ``extends``: the version of this channel's previous blob in the thread
    whose list value this one continues with ``append`` (then ``value`` is None)."""

    checkpoint_ns: str
    channel: str
    version: str
    value: TypedValue | None = None
    extends: str | None = None
    append: list[TypedValue] = field(default_factory=list)


@dataclass(slots=True)
class Write:
    task_id: str
    task_path: str
    idx: int
    channel: str
    value: TypedValue


@dataclass(slots=True)
class CheckpointEntry:
    """A checkpoint without its values (``skeleton``: JSON; or ``skeleton_value``, a typed
    value, when encrypted or not exactly JSON), which of its channels hold None or
    nothing, its metadata and writes."""

    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    skeleton: dict[str, Any] | None
    skeleton_value: TypedValue | None
    none: list[str]
    empty: list[str]
    metadata: dict[str, Any]
    writes: list[Write]


@dataclass(slots=True)
class ThreadEnd:
    thread_id: str
    checkpoints: int
    blobs: int
    writes: int


@dataclass(slots=True)
class StoreItemEntry:
    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]
    created_at: float
    updated_at: float
    ttl: float | None = None
    expires_at: float | None = None
    vectors: dict[str, list[float]] | None = None


@dataclass(slots=True)
class Trailer:
    threads: int = 0
    checkpoints: int = 0
    blobs: int = 0
    writes: int = 0
    store_items: int = 0


Record = Header | ThreadStart | Blob | CheckpointEntry | ThreadEnd | StoreItemEntry | Trailer


# -- writing ---------------------------------------------------------------------------


def _typed(value: TypedValue) -> dict[str, str]:
    return {"type": value.type, "data": base64.b64encode(value.data).decode("ascii")}


def record_dict(record: Record) -> dict[str, Any]:
    """The JSON object of one line."""
    if isinstance(record, Header):
        return {
            "kind": "header", "format": FORMAT_NAME, "version": record.version,
            "created_at": record.created_at, "source": record.source,
            "encrypted": record.encrypted,
        }
    if isinstance(record, ThreadStart):
        return {"kind": "thread", "thread_id": record.thread_id}
    if isinstance(record, Blob):
        out: dict[str, Any] = {
            "kind": "blob", "checkpoint_ns": record.checkpoint_ns, "channel": record.channel,
            "version": record.version,
        }
        if record.value is not None:
            out["value"] = _typed(record.value)
        else:
            out["extends"] = record.extends
            out["append"] = [_typed(v) for v in record.append]
        return out
    if isinstance(record, CheckpointEntry):
        out = {
            "kind": "checkpoint", "checkpoint_ns": record.checkpoint_ns,
            "checkpoint_id": record.checkpoint_id,
            "parent_checkpoint_id": record.parent_checkpoint_id,
        }
        if record.skeleton_value is not None:
            out["checkpoint_value"] = _typed(record.skeleton_value)
        else:
            out["checkpoint"] = record.skeleton
        out["none"] = record.none
        out["empty"] = record.empty
        out["metadata"] = record.metadata
        out["writes"] = [
            {
                "task_id": w.task_id, "task_path": w.task_path, "idx": w.idx,
                "channel": w.channel, "value": _typed(w.value),
            }
            for w in record.writes
        ]
        return out
    if isinstance(record, ThreadEnd):
        return {
            "kind": "thread_end", "thread_id": record.thread_id,
            "checkpoints": record.checkpoints, "blobs": record.blobs, "writes": record.writes,
        }
    if isinstance(record, StoreItemEntry):
        return {
            "kind": "store_item", "namespace": list(record.namespace), "key": record.key,
            "value": record.value, "created_at": record.created_at,
            "updated_at": record.updated_at, "ttl": record.ttl,
            "expires_at": record.expires_at, "vectors": record.vectors,
        }
    return {
        "kind": "trailer", "threads": record.threads, "checkpoints": record.checkpoints,
        "blobs": record.blobs, "writes": record.writes, "store_items": record.store_items,
    }


def record_json(record: Record) -> bytes:
    """One line of the file, newline included."""
    return orjson.dumps(record_dict(record)) + b"\n"


# -- reading ---------------------------------------------------------------------------


class _Fields:
    """The fields of one line, each taken with its type checked."""

    def __init__(self, obj: Mapping[str, Any], line: int, kind: str) -> None:
        self.obj = obj
        self.line = line
        self.kind = kind

    def fail(self, message: str) -> ExportFormatError:
        return ExportFormatError(self.line, f"{self.kind} record: {message}")

    def get(self, name: str, kinds: type | tuple[type, ...], *, optional: bool = False) -> Any:
        if name not in self.obj:
            if optional:
                return None
            raise self.fail(f"field {name!r} is missing")
        value = self.obj[name]
        if value is None and optional:
            return None
        if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
            raise self.fail(f"field {name!r} must be {_names(kinds)}, not a boolean")
        if not isinstance(value, kinds):
            raise self.fail(f"field {name!r} must be {_names(kinds)}, not {type(value).__name__}")
        return value

    def text(self, name: str, *, optional: bool = False) -> Any:
        return self.get(name, str, optional=optional)

    def count(self, name: str) -> int:
        value: int = self.get(name, int)
        if value < 0:
            raise self.fail(f"field {name!r} must not be negative")
        return value

    def seconds(self, name: str, *, optional: bool = False) -> float | None:
        value = self.get(name, (int, float), optional=optional)
        if value is None:
            return None
        if not math.isfinite(value):
            raise self.fail(f"field {name!r} must be a finite number")
        return float(value)

    def texts(self, name: str) -> list[str]:
        value = self.get(name, list)
        if not all(isinstance(v, str) for v in value):
            raise self.fail(f"field {name!r} must be a list of strings")
        return list(value)

    def typed(self, value: Any, name: str) -> TypedValue:
        if (
            not isinstance(value, dict)
            or set(value) != {"type", "data"}
            or not isinstance(value["type"], str)
            or not isinstance(value["data"], str)
        ):
            raise self.fail(f"{name} must be an object of a 'type' and base64 'data'")
        try:
            data = base64.b64decode(value["data"], validate=True)
        except (binascii.Error, ValueError):
            raise self.fail(f"{name}: 'data' is not base64") from None
        return TypedValue(value["type"], data)


def _names(kinds: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
             list: "a list", dict: "an object"}
    seq = kinds if isinstance(kinds, tuple) else (kinds,)
    return " or ".join(names.get(k, k.__name__) for k in seq)


def parse_line(raw: bytes | str, line: int) -> Record:
    """One line of an export as its record, or ExportFormatError naming the line."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ExportFormatError(line, f"not a JSON object ({exc})") from None
    return parse_record(obj, line)


def parse_record(obj: Any, line: int) -> Record:
    """A line's JSON object as its record, every field's type checked."""
    if not isinstance(obj, dict):
        raise ExportFormatError(line, f"not a JSON object but {type(obj).__name__}")
    kind = obj.get("kind")
    if not isinstance(kind, str):
        raise ExportFormatError(line, "the record has no 'kind'")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise ExportFormatError(line, f"unknown record kind {kind[:40]!r}")
    return parser(_Fields(obj, line, kind))


def _header(f: _Fields) -> Header:
    if f.obj.get("format") != FORMAT_NAME:
        raise f.fail(f"this is not a {FORMAT_NAME} file (format {str(f.obj.get('format'))[:60]!r})")
    version = f.count("version")
    if version > FORMAT_VERSION or version < 1:
        raise f.fail(
            f"format version {version} is not one this library reads (1 to {FORMAT_VERSION}); "
            "upgrade langgraph-unified-store to import it"
        )
    return Header(
        f.text("created_at"), f.text("source", optional=True), f.get("encrypted", bool), version
    )


def _thread(f: _Fields) -> ThreadStart:
    return ThreadStart(f.text("thread_id"))


def _blob(f: _Fields) -> Blob:
    blob = Blob(f.text("checkpoint_ns"), f.text("channel"), f.text("version"))
    if "value" in f.obj:
        if "extends" in f.obj or "append" in f.obj:
            raise f.fail("a blob has either 'value' or 'extends' and 'append', not both")
        blob.value = f.typed(f.obj["value"], "'value'")
        return blob
    blob.extends = f.text("extends")
    appended = f.get("append", list)
    blob.append = [f.typed(v, f"'append'[{i}]") for i, v in enumerate(appended)]
    return blob


def _checkpoint(f: _Fields) -> CheckpointEntry:
    skeleton = typed = None
    if "checkpoint_value" in f.obj:
        if "checkpoint" in f.obj:
            raise f.fail("a checkpoint has 'checkpoint' or 'checkpoint_value', not both")
        typed = f.typed(f.obj["checkpoint_value"], "'checkpoint_value'")
    else:
        skeleton = f.get("checkpoint", dict)
    writes = []
    for i, raw in enumerate(f.get("writes", list)):
        if not isinstance(raw, dict):
            raise f.fail(f"writes[{i}] is not an object")
        w = _Fields(raw, f.line, f"{f.kind} record, writes[{i}]")
        idx = w.get("idx", int)
        writes.append(
            Write(w.text("task_id"), w.text("task_path"), idx, w.text("channel"),
                  w.typed(raw.get("value"), "'value'"))
        )
    return CheckpointEntry(
        f.text("checkpoint_ns"), f.text("checkpoint_id"),
        f.text("parent_checkpoint_id", optional=True), skeleton, typed,
        f.texts("none"), f.texts("empty"), f.get("metadata", dict), writes,
    )


def _thread_end(f: _Fields) -> ThreadEnd:
    return ThreadEnd(f.text("thread_id"), f.count("checkpoints"), f.count("blobs"), f.count("writes"))


def _store_item(f: _Fields) -> StoreItemEntry:
    namespace = tuple(f.texts("namespace"))
    vectors = f.get("vectors", dict, optional=True)
    if vectors is not None and not all(
        isinstance(path, str)
        and isinstance(vector, list)
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vector)
        for path, vector in vectors.items()
    ):
        raise f.fail("'vectors' must map paths to lists of numbers")
    created, updated = f.seconds("created_at"), f.seconds("updated_at")
    assert created is not None and updated is not None
    return StoreItemEntry(
        namespace, f.text("key"), f.get("value", dict), created, updated,
        f.seconds("ttl", optional=True), f.seconds("expires_at", optional=True),
        None if vectors is None else {p: [float(x) for x in v] for p, v in vectors.items()},
    )


def _trailer(f: _Fields) -> Trailer:
    return Trailer(
        f.count("threads"), f.count("checkpoints"), f.count("blobs"), f.count("writes"),
        f.count("store_items"),
    )


_PARSERS: Final[dict[str, Callable[[_Fields], Record]]] = {
    "header": _header,
    "thread": _thread,
    "blob": _blob,
    "checkpoint": _checkpoint,
    "thread_end": _thread_end,
    "store_item": _store_item,
    "trailer": _trailer,
}
