"""What a test needs to make savers, configs and checkpoints, in one place.

Servers. PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (``.ci/run`` starts
them), or wherever ``LUS_TEST_POSTGRES_DSN`` and ``LUS_TEST_REDIS_URL`` point. A test
that needs one carries the ``postgres`` or ``redis`` marker (``conftest.py`` adds it to
every test parametrized by backend), so ``pytest -m "not postgres and not redis"`` runs
without servers; a test that cannot reach its server fails, it is never skipped.

Savers:
- ``make_saver``: a fresh, isolated saver (its own SQLite file, schema or key prefix);
- ``saver_for``: the same, set up, and dropped from the server afterwards;
- ``open_saver``: a saver on a location you name, so several savers (or processes, or one
  process after another) share the same stored data;
- ``drop_saver``: remove what a test saver stored on a shared server, then close it.

Configs:
- ``config_for``: one checkpoint (or a namespace's latest), namespace included;
- ``thread_config``: a whole thread (every namespace), what graphs are invoked with.

Checkpoints:
- ``make_checkpoint``: LangGraph's empty checkpoint holding the values you give;
- ``checkpoint_and_versions``: the same with every channel at the version of ``step``,
  and those versions (what ``aput`` takes as new versions);
- ``numbered_checkpoint``: one whose id sorts by a number you give;
- ``put_values`` and ``put_numbered``: put such a checkpoint on a thread.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint, empty_checkpoint

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.registry import BACKENDS, backend_named

POSTGRES_DSN = os.environ.get("LUS_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

ALL_BACKENDS = tuple(entry.name for entry in BACKENDS)
# Backends that need a server, and the pytest marker each carries.
SERVER_BACKENDS = ("postgres", "redis")
SERVER_URLS = {"postgres": POSTGRES_DSN, "redis": REDIS_URL}

# The version every channel of a hand-made checkpoint is at unless a test says otherwise.
FIRST_VERSION = "a1.000001"

# Thread ids that stress key encodings: glob and hash-tag characters, separators,
# quotes, non-ASCII text and a long id.
STRANGE_THREAD_IDS = [
    "a*",
    "ab",
    "a?",
    "a[b]",
    "[a-z]*",
    "{tag}",
    "}{",
    "{",
    "}",
    "a:b",
    "a:b:c",
    "quote'\"`",
    "back\\slash",
    "ünïcødé/日本語/🙂",
    " spaced ",
    "x" * 300,
]


def unique(prefix: str) -> str:
    """``prefix`` and a random suffix: a schema or key prefix no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# -- savers ------------------------------------------------------------------------------------


def open_saver(backend: str, location: str, **options: Any) -> UnifiedCheckpointSaver:
    """A saver on a fixed location (SQLite file, Postgres schema, Redis prefix; memory has
    none), so that several savers or processes share the same stored data. ``dsn`` or
    ``url`` in ``options`` points it at another server. Built from the registry: its
    saver class and the option that keeps one saver's data apart (``namespace_option``)."""
    entry = backend_named(backend)
    saver_class = entry.saver_class()
    if entry.namespace_option is not None:  # a server: the location is a namespace on it
        server = options.pop("dsn", None) or options.pop("url", None) or SERVER_URLS[backend]
        return saver_class(server, **{entry.namespace_option: location}, **options)
    if entry.conn_of_url is not None:  # a file
        return saver_class(location, **options)
    return saver_class(**options)


def make_saver(backend: str, tmp_path: Path, **options: Any) -> UnifiedCheckpointSaver:
    """A fresh, isolated saver of ``backend`` (its own file, schema or key prefix)."""
    if backend == "sqlite":
        return open_saver(backend, str(tmp_path / f"{unique('db')}.sqlite"), **options)
    return open_saver(backend, unique("lus_test"), **options)


async def drop_saver(saver: UnifiedCheckpointSaver) -> None:
    """Remove what a test saver stored on a shared server, then close it."""
    cleanup: Callable[[], Any] | None = getattr(saver.backend, "drop_all", None)
    if cleanup is not None:
        await cleanup()
    await saver.aclose()


@asynccontextmanager
async def saver_for(
    backend: str, tmp_path: Path, **options: Any
) -> AsyncIterator[UnifiedCheckpointSaver]:
    """A fresh saver of ``backend``, set up; dropped from its server when the block ends."""
    saver = make_saver(backend, tmp_path, **options)
    try:
        await saver.asetup()
        yield saver
    finally:
        await drop_saver(saver)


# -- configs -----------------------------------------------------------------------------------


def config_for(thread_id: Any, checkpoint_id: str | None = None, *, ns: str = "") -> RunnableConfig:
    """The config of one checkpoint of ``thread_id`` in namespace ``ns`` (without an id:
    that namespace's latest, or the parent config of a first checkpoint)."""
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ns}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def thread_config(thread_id: Any, **configurable: Any) -> RunnableConfig:
    """The config of a whole thread, no namespace named (``alist`` then lists every
    namespace), what graphs are invoked with; ``configurable`` adds keys."""
    return {"configurable": {"thread_id": thread_id, **configurable}}


# -- checkpoints -------------------------------------------------------------------------------


def make_checkpoint(
    values: dict[Any, Any],
    versions: dict[Any, Any] | None = None,
    *,
    checkpoint_id: str | None = None,
    ts: str | None = None,
) -> Checkpoint:
    """LangGraph's empty checkpoint (a fresh, time-ordered id) holding ``values``, each
    channel at ``versions`` (default: FIRST_VERSION)."""
    checkpoint = empty_checkpoint()
    if checkpoint_id is not None:
        checkpoint["id"] = checkpoint_id
    if ts is not None:
        checkpoint["ts"] = ts
    checkpoint["channel_values"] = dict(values)
    checkpoint["channel_versions"] = dict(
        versions if versions is not None else {c: FIRST_VERSION for c in values}
    )
    return checkpoint


def checkpoint_and_versions(
    values: dict[str, Any], step: int = 0
) -> tuple[Checkpoint, dict[str, str]]:
    """A checkpoint whose every channel is at the version of ``step``, and those versions."""
    versions = {channel: f"{step + 1:016d}.00000000" for channel in values}
    return make_checkpoint(values, versions), versions


def numbered_checkpoint(number: int, **values: Any) -> Checkpoint:
    """A hand-made checkpoint whose id sorts by ``number``, its channels at a version of it."""
    return make_checkpoint(
        values,
        {k: f"{number:08x}.000000" for k in values},
        checkpoint_id=f"1ef00000-0000-6000-8000-{number:012d}",
    )


async def put_values(
    saver: BaseCheckpointSaver[Any],
    thread_id: str,
    values: dict[str, Any],
    *,
    ns: str = "",
    parent: str | None = None,
    **metadata: Any,
) -> Any:
    """Put a checkpoint holding ``values`` (each channel new) on ``thread_id``, child of
    ``parent``; its metadata is an input step's plus ``metadata``. Returns its config."""
    checkpoint, versions = checkpoint_and_versions(values)
    return await saver.aput(
        config_for(thread_id, parent, ns=ns),
        checkpoint,
        {"source": "input", "step": -1, **metadata},
        versions,
    )


async def put_numbered(
    saver: BaseCheckpointSaver[Any],
    thread_id: str,
    number: int,
    *,
    ns: str = "",
    metadata: dict[str, Any] | None = None,
    **values: Any,
) -> Any:
    """Put ``numbered_checkpoint(number, **values)`` on ``thread_id``. Returns its config."""
    made = numbered_checkpoint(number, **values)
    return await saver.aput(
        config_for(thread_id, ns=ns), made, metadata or {}, dict(made["channel_versions"])
    )
