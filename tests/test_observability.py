"""Structured events and spans (``core.observability``), on every backend.

- every operation's event appears once, on ``langgraph_unified_store.events``, at its
  level, with its fields as flat record attributes of the right types;
- ``JsonLinesFormatter`` writes lines orjson parses back, fields included (and, for any
  extra fields, the same values: a property test);
- a whole graph run at DEBUG, with a password in the server URL, planted message text
  and metadata, and a forget by a planted filter value: no record of any logger shows
  any of them, in its message or its extra attributes;
- PostgreSQL connections terminated by the server, and Redis clients killed: the next
  call tells ``connection.lost`` (WARNING) and ``connection.recovered`` (INFO), naming
  the server without its password;
- OpenTelemetry spans (the SDK's in-memory exporter) per operation, with the fields as
  attributes and no payload; a blocking call's span is a child of the caller's span.
"""

from __future__ import annotations

import asyncio
import io
import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import HumanMessage
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from langgraph_unified_store.backends.postgres.connection import Dsn
from langgraph_unified_store.backends.redis.client import safe_location
from langgraph_unified_store.core import observability
from langgraph_unified_store.core.observability import (
    EVENT_FIELDS,
    EVENTS_LOGGER,
    OFF,
    SAVED,
    JsonLinesFormatter,
    observe,
)
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from .graphs import chat_graph
from .reliability.private_servers import PrivateRedis
from .support import (
    ALL_BACKENDS,
    POSTGRES_DSN,
    config_for,
    drop_saver,
    make_saver,
    open_saver,
    put_values,
    thread_config,
    unique,
)

PASSWORD = "S3cretPw-Obs"
PLANTED_TEXT = "Planted-Message-Text-Xyzzy"
PLANTED_META = "Planted-Metadata-Plugh"
PLANTED_FILTER = "Planted-Filter-Value-Quux"
PLANTED = (PASSWORD, PLANTED_TEXT, PLANTED_META, PLANTED_FILTER)

# What each operation's event must carry, beyond event, backend and duration_ms.
REQUIRED: dict[str, tuple[str, ...]] = {
    "checkpoint.saved": ("thread_id", "checkpoint_ns", "checkpoint_id", "bytes"),
    "writes.saved": ("thread_id", "checkpoint_ns", "checkpoint_id", "bytes", "count"),
    "checkpoint.loaded": ("thread_id", "checkpoint_ns", "checkpoint_id", "bytes", "found"),
    "checkpoints.listed": ("thread_id", "count", "bytes"),
    "thread.copied": ("thread_id", "target_thread_id"),
    "thread.deleted": ("thread_id",),
    "runs.deleted": ("count",),
    "threads.pruned": ("count", "strategy"),
    "threads.swept": ("count", "checkpoints", "writes", "blobs", "items"),
    "threads.deleted": ("count", "checkpoints", "writes", "blobs", "items"),
    "threads.forgotten": ("count", "checkpoints", "verified"),
}
LEVELS = {name: logging.DEBUG for name in ("checkpoint.saved", "writes.saved", "checkpoint.loaded", "checkpoints.listed")}


def events(records: list[logging.LogRecord], name: str) -> list[logging.LogRecord]:
    return [r for r in records if getattr(r, "event", None) == name]


def check_event(record: logging.LogRecord, backend: str) -> None:
    name = record.event  # type: ignore[attr-defined]
    assert record.name == EVENTS_LOGGER
    assert record.levelno == LEVELS.get(name, logging.INFO), name
    assert record.backend == backend  # type: ignore[attr-defined]
    assert isinstance(record.duration_ms, float) and record.duration_ms >= 0  # type: ignore[attr-defined]
    for field in REQUIRED.get(name, ()):
        assert field in EVENT_FIELDS
        assert hasattr(record, field), f"{name} lacks {field}"
    if hasattr(record, "bytes"):
        assert isinstance(record.bytes, int) and record.bytes >= 0
    extras = set(vars(record)) - set(vars(logging.makeLogRecord({}))) - {"message", "asctime"}
    assert extras <= set(EVENT_FIELDS), extras - set(EVENT_FIELDS)


async def run_every_operation(saver: UnifiedCheckpointSaver) -> None:
    config = await put_values(saver, "t1", {"x": "hello"}, user="u1", run_id="run-1")
    await saver.aput_writes(config, [("x", "pending")], "task-1")
    assert await saver.aget_tuple(config) is not None
    assert await saver.aget_tuple(config_for("absent")) is None
    assert len([t async for t in saver.alist(thread_config("t1"))]) == 1
    await saver.acopy_thread("t1", "t2")
    await saver.aprune(["t1", "t2"], strategy="keep_latest")
    await saver.adelete_thread("t2")
    await saver.adelete_for_runs(["run-9"])
    await saver.asweep()
    await put_values(saver, "t3", {"x": 1}, kind="old")
    await saver.adelete_threads(older_than=0.0, filter={"kind": "old"})
    receipt = await saver.aforget({"user": "u1"})
    assert receipt.verified


async def test_every_event_has_its_fields(
    saver: UnifiedCheckpointSaver, backend_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=EVENTS_LOGGER)
    await run_every_operation(saver)
    records = caplog.records
    for name in REQUIRED:
        assert events(records, name), f"no {name} event"
    for record in records:
        if hasattr(record, "event"):
            check_event(record, backend_name)
    saved = events(records, "checkpoint.saved")[0]
    assert saved.thread_id == "t1" and saved.checkpoint_ns == "" and saved.bytes > 0  # type: ignore[attr-defined]
    loaded = events(records, "checkpoint.loaded")
    assert [r.found for r in loaded] == [True, False]  # type: ignore[attr-defined]
    assert loaded[0].checkpoint_id == saved.checkpoint_id  # type: ignore[attr-defined]
    assert loaded[0].bytes >= saved.bytes  # type: ignore[attr-defined]  # and the write
    forgotten = events(records, "threads.forgotten")[0]
    assert forgotten.count == 1 and forgotten.verified is True  # type: ignore[attr-defined]
    assert events(records, "threads.deleted")[0].count == 1  # type: ignore[attr-defined]
    # One event per call: the put inside copy_thread or save_state is not a second one.
    assert len(events(records, "checkpoint.saved")) == 2


async def test_events_at_info_leave_out_the_hot_path(
    saver: UnifiedCheckpointSaver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=EVENTS_LOGGER)
    await run_every_operation(saver)
    names = {getattr(r, "event", None) for r in caplog.records}
    assert not names & set(LEVELS)
    assert {"thread.deleted", "threads.forgotten", "threads.pruned"} <= names


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_migrations_are_told_once_applied(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=EVENTS_LOGGER)
    location = str(tmp_path / "m.sqlite") if backend == "sqlite" else unique("lus_obs_mig")
    saver = open_saver(backend, location)
    try:
        await saver.asetup()
        migrated = events(caplog.records, "schema.migrated")
        versions = [r.version for r in migrated]  # type: ignore[attr-defined]
        assert versions == list(range(1, len(versions) + 1)) and len(versions) >= 4
        for record in migrated:
            check_event(record, backend)
        caplog.clear()
        again = open_saver(backend, location)  # the schema is current: nothing applied
        await again.asetup()
        await again.aclose()
        assert not events(caplog.records, "schema.migrated")
    finally:
        await drop_saver(saver)


# -- JSON lines ---------------------------------------------------------------------------


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The library's records, as JSON lines, into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonLinesFormatter())
    library = logging.getLogger("langgraph_unified_store")
    level = library.level
    library.addHandler(handler)
    library.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        library.removeHandler(handler)
        library.setLevel(level)


async def test_json_lines_parse_with_their_fields(
    saver: UnifiedCheckpointSaver, backend_name: str, json_lines: io.StringIO
) -> None:
    await run_every_operation(saver)
    lines = [orjson.loads(line) for line in json_lines.getvalue().splitlines()]
    by_event: dict[str, Any] = {}
    for line in lines:
        if "event" in line:
            by_event.setdefault(line["event"], line)
    assert set(REQUIRED) <= set(by_event)
    saved = by_event["checkpoint.saved"]
    assert saved["level"] == "DEBUG" and saved["logger"] == EVENTS_LOGGER
    assert saved["backend"] == backend_name and saved["thread_id"] == "t1"
    assert isinstance(saved["bytes"], int) and isinstance(saved["duration_ms"], float)
    assert saved["time"].endswith("+00:00") and "event=checkpoint.saved" in saved["message"]
    for name, fields in REQUIRED.items():
        assert set(fields) <= set(by_event[name]), name


def test_json_lines_formatter_keeps_any_record() -> None:
    formatter = JsonLinesFormatter()
    try:
        raise ValueError("boom")
    except ValueError as exc:
        record = logging.makeLogRecord(
            {"msg": "odd %s", "args": ("x",), "exc_info": (type(exc), exc, exc.__traceback__),
             "levelno": logging.ERROR, "levelname": "ERROR", "name": "app",
             "thing": object(), "when": b"raw"}
        )
    line = orjson.loads(formatter.format(record))
    assert line["message"] == "odd x" and "ValueError: boom" in line["exception"]
    assert line["thing"].startswith("<object") and line["level"] == "ERROR"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True), json_values, max_size=5), st.text())
def test_json_lines_round_trip_extra_fields(extra: dict[str, Any], message: str) -> None:
    reserved = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "time", "level", "logger"}
    extra = {k: v for k, v in extra.items() if k not in reserved}
    record = logging.getLogger("lus.test").makeRecord(
        "lus.test", logging.INFO, __file__, 1, "%s", (message,), None, extra=extra
    )
    line = JsonLinesFormatter().format(record)
    assert "\n" not in line
    parsed = orjson.loads(line)
    assert parsed["message"] == message
    for key, value in extra.items():
        assert parsed[key] == value


# -- nothing stored, nothing secret -------------------------------------------------------


def assert_clean(text: str, where: str) -> None:
    for planted in PLANTED:
        assert planted not in text, f"{where} shows {planted!r}: {text[:300]}"


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could write of a record: its message, traceback, and every
    attribute (the extra fields among them)."""
    parts = [record.getMessage()]
    if record.exc_info:
        parts.append("".join(traceback.format_exception(*record.exc_info)))
    parts.extend(f"{k}={v!r}" for k, v in vars(record).items() if k not in ("msg", "args"))
    return "\n".join(parts)


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis", password=PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def url_with_password(backend: str, private_redis: PrivateRedis | None) -> str | None:
    if backend == "postgres":  # trust auth on loopback: the password is accepted and ignored
        return POSTGRES_DSN.replace("://postgres@", f"://postgres:{PASSWORD}@")
    if backend == "redis":
        assert private_redis is not None
        return f"redis://:{PASSWORD}@127.0.0.1:{private_redis.port}/0"
    return None


@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_debug_output_of_a_graph_run_shows_no_payload_or_secret(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    private = request.getfixturevalue("redis_with_password") if backend == "redis" else None
    url = url_with_password(backend, private)
    caplog.set_level(logging.DEBUG)  # every logger: the drivers' too
    options: dict[str, Any] = {} if url is None else {"dsn" if backend == "postgres" else "url": url}
    saver = (
        make_saver(backend, tmp_path)
        if url is None
        else open_saver(backend, unique("lus_obs"), **options)
    )
    try:
        await saver.asetup()
        graph = chat_graph(saver)
        config: Any = {
            "configurable": {"thread_id": "obs-thread"},
            "metadata": {"note": PLANTED_META, "user": PLANTED_FILTER},
        }
        for turn in range(3):
            await graph.ainvoke({"messages": [HumanMessage(f"{PLANTED_TEXT} {turn}")]}, config)
        await asyncio.to_thread(graph.invoke, {"messages": [HumanMessage(PLANTED_TEXT)]}, config)
        assert PLANTED_TEXT in str((await graph.aget_state(config)).values)
        assert [t async for t in saver.alist(thread_config("obs-thread"))]
        await saver.aprune(["obs-thread"], strategy="keep_last", keep=2)
        receipt = await saver.aforget({"user": PLANTED_FILTER})
        assert receipt.verified and receipt.thread_ids == ["obs-thread"]
    finally:
        await drop_saver(saver)
    assert events(caplog.records, "checkpoint.saved")
    assert events(caplog.records, "threads.forgotten")
    for record in caplog.records:
        assert_clean(record_text(record), f"record of {record.name}")
        if hasattr(record, "event"):
            formatted = JsonLinesFormatter().format(record)
            assert_clean(formatted, f"JSON line of {record.event}")


def test_locations_in_events_leave_the_password_out() -> None:
    for dsn in (
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/test",
        f"postgresql://postgres@127.0.0.1:5432/test?password={PASSWORD}",
    ):
        described = Dsn(dsn).describe()
        assert "127.0.0.1" in described and PASSWORD not in described
    for url in (f"redis://:{PASSWORD}@127.0.0.1:6379/0", f"redis://user:{PASSWORD}@h:1/2"):
        shown = safe_location(url)
        assert PASSWORD not in shown and "***@" in shown


# -- connections lost and recovered -------------------------------------------------------


async def test_postgres_connection_lost_and_recovered(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: the drivers' failure paths too
    app = unique("lus_obs_term")
    dsn = url_with_password("postgres", None)
    saver = open_saver("postgres", unique("lus_obs"), dsn=dsn, server_settings={"application_name": app})
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        await saver.asetup()
        config = await put_values(saver, "t", {"x": PLANTED_TEXT})
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            app,
        )
        assert killed >= 1
        caplog.clear()
        assert await saver.aget_tuple(config) is not None
    finally:
        await admin.close()
        await drop_saver(saver)
    lost = events(caplog.records, "connection.lost")
    recovered = events(caplog.records, "connection.recovered")
    assert lost and recovered, [r.getMessage() for r in caplog.records]
    assert lost[0].levelno == logging.WARNING and recovered[0].levelno == logging.INFO
    assert lost[0].backend == "postgres" and lost[0].retrying is True  # type: ignore[attr-defined]
    assert "127.0.0.1" in lost[0].server and PASSWORD not in lost[0].server  # type: ignore[attr-defined]
    assert recovered[0].attempt >= 2 and recovered[0].duration_ms >= 0  # type: ignore[attr-defined]
    for record in caplog.records:
        assert_clean(record_text(record), record.name)


async def test_redis_connection_lost_and_recovered(
    redis_with_password: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: the drivers' failure paths too
    url = url_with_password("redis", redis_with_password)
    saver = open_saver("redis", unique("lus_obs"), url=url)
    try:
        await saver.asetup()
        config = await put_values(saver, "t", {"x": PLANTED_TEXT})
        redis_with_password.cli("client", "kill", "type", "normal", "skipme", "yes")
        caplog.clear()
        assert await saver.aget_tuple(config) is not None
    finally:
        await drop_saver(saver)
    lost = events(caplog.records, "connection.lost")
    recovered = events(caplog.records, "connection.recovered")
    assert lost and recovered, [r.getMessage() for r in caplog.records]
    assert lost[0].levelno == logging.WARNING and lost[0].backend == "redis"
    assert lost[0].error and lost[0].retrying is True  # type: ignore[attr-defined]
    assert PASSWORD not in lost[0].server and "127.0.0.1" in lost[0].server  # type: ignore[attr-defined]
    assert recovered[0].attempt == 2  # type: ignore[attr-defined]
    for record in caplog.records:
        assert_clean(record_text(record), record.name)


# -- OpenTelemetry --------------------------------------------------------------------------


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """A tracer provider with an in-memory exporter, for this test only (the global one
    can be set once per process, so OpenTelemetry's global is patched instead)."""
    # .ci/run and the CrewAI tests set OTEL_SDK_DISABLED (CrewAI's telemetry opt-out),
    # which makes an SDK provider hand out no-op tracers: this one is the test's own.
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    try:
        yield exporter
    finally:
        provider.shutdown()


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def test_spans_carry_the_fields_and_no_payload(
    saver: UnifiedCheckpointSaver, backend_name: str, spans: InMemorySpanExporter
) -> None:
    config = await put_values(saver, "t1", {"x": PLANTED_TEXT}, user=PLANTED_META)
    await saver.aput_writes(config, [("x", PLANTED_TEXT)], "task-1")
    assert await saver.aget_tuple(config) is not None
    assert [t async for t in saver.alist(thread_config("t1"))]
    await saver.aprune(["t1"])
    await saver.aforget({"user": PLANTED_FILTER})
    await saver.adelete_thread("t1")
    names = {s.name for s in spans.get_finished_spans()}
    assert {
        "lus.checkpoint.put", "lus.checkpoint.put_writes", "lus.checkpoint.get_tuple",
        "lus.checkpoint.list", "lus.threads.prune", "lus.threads.forget", "lus.thread.delete",
    } <= names
    (put,) = spans_named(spans, "lus.checkpoint.put")
    attributes = dict(put.attributes)
    assert attributes["lus.backend"] == backend_name and attributes["lus.thread_id"] == "t1"
    assert attributes["lus.bytes"] > 0 and attributes["lus.checkpoint_id"]
    if backend_name != "memory":
        assert attributes["db.system.name"] in ("sqlite", "postgresql", "redis")
    assert put.status.is_ok
    for span in spans.get_finished_spans():
        assert_clean(repr(dict(span.attributes)) + repr(span.events) + span.name, span.name)


async def test_a_failed_call_is_an_error_span_naming_only_the_error_type(
    saver: UnifiedCheckpointSaver, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=EVENTS_LOGGER)
    with pytest.raises(Exception, match=r"\w"):
        await put_values(saver, "t1", {"x": lambda: PLANTED_TEXT})
    (put,) = spans_named(spans, "lus.checkpoint.put")
    assert not put.status.is_ok and put.attributes["error.type"]
    assert_clean(repr(put.status.description) + repr(dict(put.attributes)) + repr(put.events), "error span")
    assert not events(caplog.records, "checkpoint.saved")


async def test_a_blocking_call_is_a_child_of_the_callers_span(
    saver: UnifiedCheckpointSaver, spans: InMemorySpanExporter
) -> None:
    config = await put_values(saver, "t1", {"x": 1})
    tracer = trace.get_tracer_provider().get_tracer("app")

    def blocking() -> None:
        with tracer.start_as_current_span("app.step"):
            assert saver.get_tuple(config) is not None
            assert list(saver.list(thread_config("t1")))

    await asyncio.to_thread(blocking)
    (step,) = spans_named(spans, "app.step")
    (got,) = spans_named(spans, "lus.checkpoint.get_tuple")
    assert got.parent is not None and got.parent.span_id == step.context.span_id
    assert got.context.trace_id == step.context.trace_id
    (listed,) = spans_named(spans, "lus.checkpoint.list")
    assert listed.attributes["lus.count"] == 1


def test_nothing_is_made_when_nothing_would_be_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    logging.getLogger(EVENTS_LOGGER).setLevel(logging.WARNING)
    try:
        assert observe(SAVED, "memory") is OFF  # the process imported OpenTelemetry: no provider set
        monkeypatch.delitem(__import__("sys").modules, "opentelemetry.trace")
        assert observability._tracer() is None  # not imported: one dict lookup
        assert observe(SAVED, "memory") is OFF
    finally:
        logging.getLogger(EVENTS_LOGGER).setLevel(logging.NOTSET)
