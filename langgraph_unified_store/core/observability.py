"""Structured events and optional OpenTelemetry spans: one record per operation, written once.

Logs. Every event is one record on the ``langgraph_unified_store.events`` logger (a child
of the library's root logger ``langgraph_unified_store``), with its fields as flat
``extra`` attributes of the record (``record.event``, ``record.thread_id``, ...): a
``%(thread_id)s`` format string, a filter or any JSON formatter that dumps a record's
extra attributes sees them; ``JsonLinesFormatter`` is one with no dependency beyond
orjson. Fields are only ever ids, names, sizes, counts and durations: never a stored
value, metadata, a filter's values, a URL or an error's message (which may quote input).

Spans. When the application imported OpenTelemetry and set a tracer provider, each
operation is also a span (``lus.checkpoint.put``, ...) carrying the same fields as
``lus.*`` attributes. The library never imports OpenTelemetry itself: without it in
``sys.modules`` there can be no provider, and the check is one dict lookup.

Cost. ``observe`` returns the falsy ``OFF`` when the event's level is disabled and no
span would be made, so a call pays a level check and a ``with`` on a constant; callers
compute a size only ``if op``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, TypeVar

import orjson

T = TypeVar("T")

ROOT_LOGGER: Final = "langgraph_unified_store"
"""Every logger of the library is under this name."""
EVENTS_LOGGER: Final = "langgraph_unified_store.events"
"""The structured events, one record per operation."""
TRACER_NAME: Final = "langgraph_unified_store"

events_logger = logging.getLogger(EVENTS_LOGGER)
# A library's records go where the application sends them, and nowhere when it configures
# no logging (without this, Python's last-resort handler prints WARNINGs to stderr).
logging.getLogger(ROOT_LOGGER).addHandler(logging.NullHandler())

EVENT_FIELDS: Final = (
    "event",
    "backend",
    "thread_id",
    "checkpoint_ns",
    "checkpoint_id",
    "target_thread_id",
    "bytes",
    "duration_ms",
    "count",
    "found",
    "strategy",
    "checkpoints",
    "writes",
    "blobs",
    "items",
    "verified",
    "version",
    "schema",
    "server",
    "error",
    "attempt",
    "retrying",
)
"""Every field an event may carry (each event carries ``event``, ``backend`` and
``duration_ms``, and those of the others that apply to it)."""

# What the OpenTelemetry database conventions call each backend's system.
_DB_SYSTEM: Final = {"postgres": "postgresql", "redis": "redis", "sqlite": "sqlite"}


@dataclass(frozen=True, slots=True)
class Operation:
    """One kind of operation: its event's name and level, and its span's name."""

    event: str
    level: int
    span: str


DEBUG, INFO, WARNING = logging.DEBUG, logging.INFO, logging.WARNING

SAVED: Final = Operation("checkpoint.saved", DEBUG, "lus.checkpoint.put")
WRITES_SAVED: Final = Operation("writes.saved", DEBUG, "lus.checkpoint.put_writes")
LOADED: Final = Operation("checkpoint.loaded", DEBUG, "lus.checkpoint.get_tuple")
LISTED: Final = Operation("checkpoints.listed", DEBUG, "lus.checkpoint.list")
DELETED: Final = Operation("thread.deleted", INFO, "lus.thread.delete")
RUNS_DELETED: Final = Operation("runs.deleted", INFO, "lus.runs.delete")
COPIED: Final = Operation("thread.copied", INFO, "lus.thread.copy")
PRUNED: Final = Operation("threads.pruned", INFO, "lus.threads.prune")
SWEPT: Final = Operation("threads.swept", INFO, "lus.threads.sweep")
THREADS_DELETED: Final = Operation("threads.deleted", INFO, "lus.threads.delete")
FORGOTTEN: Final = Operation("threads.forgotten", INFO, "lus.threads.forget")
MIGRATED: Final = Operation("schema.migrated", INFO, "lus.schema.migrate")
CONNECTION_LOST: Final = Operation("connection.lost", WARNING, "lus.connection.lost")
CONNECTION_RECOVERED: Final = Operation("connection.recovered", INFO, "lus.connection.recovered")


# -- spans ----------------------------------------------------------------------------------

_tracers: dict[int, tuple[Any, Any]] = {}
_modules = sys.modules
# A provider named by the environment is loaded by OpenTelemetry on first use.
_PROVIDER_FROM_ENVIRONMENT: Final = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_UNKNOWN: Final = object()


def _tracer() -> Any:
    """The tracer of the provider the application set, or None (no OpenTelemetry imported,
    or no provider set: its proxy provider then makes only no-op spans)."""
    trace = _modules.get("opentelemetry.trace")
    if trace is None:
        return None
    # The hot path: OpenTelemetry's own global, None until a provider is set (its getter
    # looks in os.environ on every call).
    if getattr(trace, "_TRACER_PROVIDER", _UNKNOWN) is None and not _PROVIDER_FROM_ENVIRONMENT:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    cached = _tracers.get(id(provider))
    if cached is None or cached[0] is not provider:
        cached = _tracers[id(provider)] = (provider, provider.get_tracer(TRACER_NAME))
    return cached[1]


def _attributes(backend: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Span attributes: the fields (scalars only, None left out) under ``lus.``."""
    attributes: dict[str, Any] = {"lus.backend": backend}
    attributes.update(
        (f"lus.{key}", value)
        for key, value in fields.items()
        if isinstance(value, (str, bool, int, float))
    )
    system = _DB_SYSTEM.get(backend)
    if system is not None:
        attributes["db.system.name"] = system
    return attributes


def in_caller_context(coro: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """``coro`` run in the caller's OpenTelemetry context, wherever it runs: a blocking
    call runs on the saver's I/O loop, whose tasks would otherwise start fresh traces.
    Unchanged when no tracing is on."""
    if "opentelemetry.trace" not in _modules or _tracer() is None:
        return coro
    context = sys.modules["opentelemetry.context"]
    carried = context.get_current()

    async def carrying() -> T:
        token = context.attach(carried)
        try:
            return await coro
        finally:
            context.detach(token)

    return carrying()


# -- one operation --------------------------------------------------------------------------


class Observation:
    """One operation being timed: the fields its event will carry, and its span."""

    __slots__ = ("_log", "_span", "_started", "_token", "backend", "fields", "operation")

    def __init__(self, operation: Operation, backend: str, log: bool, tracer: Any, current: bool) -> None:
        self.operation = operation
        self.backend = backend
        self.fields: dict[str, Any] = {}
        self._log = log
        self._span: Any = None
        self._token: Any = None
        if tracer is not None:
            self._span = tracer.start_span(operation.span, attributes=_attributes(backend, {}))
            if current:
                trace = sys.modules["opentelemetry.trace"]
                context = sys.modules["opentelemetry.context"]
                self._token = context.attach(trace.set_span_in_context(self._span))
        self._started = time.perf_counter()

    def __bool__(self) -> bool:
        return True

    def note(self, **fields: Any) -> None:
        """Add fields to the event (only ids, names, sizes and counts)."""
        self.fields.update(fields)

    def __enter__(self) -> Observation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, GeneratorExit):  # a list its consumer left early
            self.done()
        else:
            self.failed(exc)

    def done(self) -> None:
        """The operation succeeded: emit its event, end its span."""
        duration_ms = round((time.perf_counter() - self._started) * 1000, 3)
        if self._log:
            emit(self.operation, self.backend, duration_ms=duration_ms, **self.fields)
        if self._span is not None:
            self._span.set_attributes(_attributes(self.backend, self.fields))
            self._end()

    def failed(self, exc: BaseException) -> None:
        """The operation raised: its span says so by the error's type alone (its message
        may quote a stored value), and no event is emitted (the caller has the error)."""
        if self._span is not None:
            status = sys.modules["opentelemetry.trace"].Status
            code = sys.modules["opentelemetry.trace"].StatusCode.ERROR
            self._span.set_attributes(_attributes(self.backend, self.fields))
            self._span.set_attribute("error.type", type(exc).__qualname__)
            self._span.set_status(status(code, type(exc).__qualname__))
            self._end()

    def _end(self) -> None:
        if self._token is not None:
            sys.modules["opentelemetry.context"].detach(self._token)
            self._token = None
        self._span.end()


class _Off:
    """What ``observe`` returns when nothing would be logged or traced: does nothing."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def note(self, **fields: Any) -> None:
        pass

    def __enter__(self) -> _Off:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def done(self) -> None:
        pass

    def failed(self, exc: BaseException) -> None:
        pass


OFF: Final = _Off()


def observe(operation: Operation, backend: str, *, current: bool = True) -> Observation | _Off:
    """Time one operation (``with observe(SAVED, name) as op: ...; if op: op.note(...)``):
    on success one event at the operation's level, and a span when tracing is on.
    ``current=False`` for an operation that spans several tasks (a list iterated by the
    blocking API): its span is then nobody's parent."""
    tracer = None if "opentelemetry.trace" not in _modules else _tracer()
    log = events_logger.isEnabledFor(operation.level)
    if not log and tracer is None:
        return OFF
    return Observation(operation, backend, log, tracer, current)


def emit(operation: Operation, backend: str, **fields: Any) -> None:
    """One event record now (for events that are not a timed call, e.g. connection lost)."""
    if not events_logger.isEnabledFor(operation.level):
        return
    extra = {"event": operation.event, "backend": backend, **fields}
    shown = " ".join(f"{key}={_shown(value)}" for key, value in extra.items() if value is not None)
    events_logger.log(operation.level, "%s", shown, extra=extra)


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) and (not value or " " in value) else str(value)


def stored_bytes(*parts: Any) -> int:
    """The bytes of records' ``data`` (and a checkpoint's metadata): what a size field counts."""
    total = 0
    for part in parts:
        total += len(part.data)
        metadata = getattr(part, "metadata", None)
        if metadata is not None:
            total += len(metadata)
    return total


# -- JSON lines -----------------------------------------------------------------------------

_RECORD_ATTRIBUTES: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


class JsonLinesFormatter(logging.Formatter):
    """Each record as one JSON object on one line: ``time`` (UTC, ISO 8601), ``level``,
    ``logger``, ``message``, every ``extra`` field of the record (an event's fields among
    them), and ``exception`` when there is one. Values JSON cannot hold are written as
    their ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
