"""What the CLI reads, as plain data: savers and stores opened from a URL, a thread's
checkpoints, one checkpoint as unified state or as stored, and two checkpoints compared.

Everything is read through the saver's ordinary methods, and so through its safe serde:
nothing stored can name a type to build or code to run.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple

from ..core.saver import UnifiedCheckpointSaver
from ..errors import CheckpointNotFoundError
from ..factory import DEFAULT_SQLITE_FILE, ENV_URL, create_saver, create_store
from ..mapping import MESSAGES_CHANNEL, state_from_checkpoint
from ..registry import SAVER_OPTIONS, BackendEntry, backend_for_scheme, backend_named
from .parsing import UsageProblem, parse_options, redact
from .render import plain

KEY_OPTION = "encryption_key"


def describe(url: str | None) -> str:
    """Which storage a command opens, for messages (secrets out)."""
    url = url or os.environ.get(ENV_URL) or None
    return redact(url) if url else f"sqlite (default file {DEFAULT_SQLITE_FILE})"


def _check_url(url: str | None, create: bool = False) -> tuple[str | None, BackendEntry]:
    """The URL to open and its backend; a usage problem for an unknown scheme, a failure
    for a SQLite file that is not there (opening it would create an empty database),
    unless the command writes there (``create``: an import or a copy's target)."""
    url = url or os.environ.get(ENV_URL) or None
    if url is None:
        if not DEFAULT_SQLITE_FILE.exists():
            raise UsageProblem(
                f"no URL given and no {ENV_URL}, and the default SQLite file "
                f"{DEFAULT_SQLITE_FILE} does not exist: pass --url"
            )
        return None, backend_named("sqlite")
    scheme = urlsplit(url).scheme
    if not scheme:
        raise UsageProblem(f"{redact(url)!r} is not a URL (e.g. sqlite:///file.db, postgresql://..., redis://...)")
    try:
        entry = backend_for_scheme(scheme)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    if entry.name == "sqlite" and entry.conn_of_url is not None:
        path = entry.conn_of_url(url)
        if path != ":memory:" and not create and not Path(path).exists():
            raise FileNotFoundError(f"no SQLite database at {path}")
    return url, entry


def new_sqlite_file(url: str | None) -> Path | None:
    """The SQLite file ``url`` names, if it does not exist yet (writing creates it)."""
    url = url or os.environ.get(ENV_URL) or None
    if url is None:
        return None if DEFAULT_SQLITE_FILE.exists() else DEFAULT_SQLITE_FILE
    try:
        entry = backend_for_scheme(urlsplit(url).scheme)
    except ValueError:
        return None
    if entry.name != "sqlite" or entry.conn_of_url is None:
        return None
    path = entry.conn_of_url(url)
    return None if path == ":memory:" or Path(path).exists() else Path(path)


def key_from_env(name: str | None, option: str = "--key-env") -> str | None:
    """The encryption key held by the environment variable ``name`` (None: no key).
    Keys never come from the command line, where ``ps`` and shell history show them."""
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise UsageProblem(f"{option} {name}: the environment variable {name} is not set or empty")
    return value


def _saver_options(entry: BackendEntry, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` if the backend's saver takes each of them (the registry's table)."""
    if KEY_OPTION in options:
        raise UsageProblem(
            f"--option {KEY_OPTION}: a key on the command line shows in ps and shell history; "
            "put it in an environment variable and pass --key-env NAME"
        )
    known = [option.name for option in (*entry.options, *SAVER_OPTIONS)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UsageProblem(
            f"--option {', '.join(unknown)}: not an option of the {entry.name} saver; "
            f"known: {', '.join(known)}"
        )
    return options


def _store_options(entry: BackendEntry, options: dict[str, Any]) -> dict[str, Any]:
    """Of the saver's options, those the backend's store also takes (its connection's)."""
    taken = inspect.signature(entry.store_class()).parameters
    return {name: value for name, value in _saver_options(entry, options).items() if name in taken}


@contextmanager
def opened_saver(
    url: str | None, options: dict[str, Any], *, key: str | None = None, create: bool = False
) -> Iterator[UnifiedCheckpointSaver]:
    """The saver at ``url`` with ``options`` (and an encryption ``key``), closed after."""
    checked, entry = _check_url(url, create)
    chosen = dict(_saver_options(entry, options))
    if key is not None:
        chosen[KEY_OPTION] = key
    saver = create_saver(checked, **chosen)
    try:
        yield saver
    finally:
        saver.close()


@contextmanager
def opened_store(url: str | None, options: dict[str, Any], *, create: bool = False) -> Iterator[Any]:
    """The long-term memory store on the same URL (the options its connection takes)."""
    checked, entry = _check_url(url, create)
    store = create_store(checked, **_store_options(entry, options))
    try:
        yield store
    finally:
        store.close()


def saver_of_flags(
    url: str | None, option: list[str] | None, key_env: str | None
) -> AbstractContextManager[UnifiedCheckpointSaver]:
    """``opened_saver`` as a command's ``--url``, ``--option`` and ``--key-env`` name it."""
    return opened_saver(url, parse_options(option or []), key=key_from_env(key_env))


def store_of_flags(url: str | None, option: list[str] | None) -> AbstractContextManager[Any]:
    """``opened_store`` as a command's ``--url`` and ``--option`` name it."""
    return opened_store(url, parse_options(option or []))


# -- checkpoints -----------------------------------------------------------------------------


def thread_config(thread_id: str, namespace: str, checkpoint_id: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": namespace}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def checkpoint(
    saver: UnifiedCheckpointSaver, thread_id: str, checkpoint_id: str | None, namespace: str = ""
) -> CheckpointTuple:
    """One checkpoint (the latest without an id); CheckpointNotFoundError if none."""
    found = saver.get_tuple(thread_config(thread_id, namespace, checkpoint_id))
    if found is None:
        what = "no checkpoint" if checkpoint_id is None else f"no checkpoint {checkpoint_id!r}"
        where = f" in namespace {namespace!r}" if namespace else ""
        raise CheckpointNotFoundError(f"thread {thread_id!r} has {what}{where}")
    return found


def parent_id(tup: CheckpointTuple) -> str | None:
    if tup.parent_config is None:
        return None
    value = tup.parent_config["configurable"].get("checkpoint_id")
    return None if value is None else str(value)


def history_row(tup: CheckpointTuple) -> dict[str, Any]:
    """One checkpoint as ``lus history`` lists it."""
    metadata = dict(tup.metadata or {})
    writes = tup.pending_writes or []
    return {
        "checkpoint_id": tup.checkpoint["id"],
        "namespace": tup.config["configurable"].get("checkpoint_ns", ""),
        "step": metadata.get("step"),
        "source": metadata.get("source"),
        "writes": len(writes),
        "written_channels": sorted({str(channel) for _, channel, _ in writes}),
        "updated_channels": list(tup.checkpoint.get("updated_channels") or []),
        "ts": tup.checkpoint.get("ts"),
        "parent_checkpoint_id": parent_id(tup),
    }


def pending_writes(tup: CheckpointTuple) -> list[dict[str, Any]]:
    return [
        {"task_id": task_id, "channel": channel, "value": plain(value)}
        for task_id, channel, value in tup.pending_writes or []
    ]


def unified_view(tup: CheckpointTuple) -> dict[str, Any]:
    """The checkpoint as ``UnifiedWorkflowState`` (messages, context, framework state,
    metadata), with its pending writes and stored metadata."""
    state = state_from_checkpoint(tup)
    return {
        "thread_id": tup.config["configurable"]["thread_id"],
        "checkpoint_id": tup.checkpoint["id"],
        "state": state.to_dict(),
        "checkpoint_metadata": plain(dict(tup.metadata or {})),
        "pending_writes": pending_writes(tup),
    }


def stored_view(tup: CheckpointTuple) -> dict[str, Any]:
    """The checkpoint as LangGraph stored it: every channel's value, versions, metadata."""
    stored = tup.checkpoint
    return {
        "thread_id": tup.config["configurable"]["thread_id"],
        "checkpoint_ns": tup.config["configurable"].get("checkpoint_ns", ""),
        "checkpoint_id": stored["id"],
        "parent_checkpoint_id": parent_id(tup),
        "ts": stored.get("ts"),
        "metadata": plain(dict(tup.metadata or {})),
        "channel_values": plain(dict(stored.get("channel_values") or {})),
        "channel_versions": plain(dict(stored.get("channel_versions") or {})),
        "versions_seen": plain(dict(stored.get("versions_seen") or {})),
        "pending_writes": pending_writes(tup),
    }


# -- comparing two checkpoints --------------------------------------------------------------


def _message_key(message: dict[str, Any], index: int) -> str:
    return f"id:{message['id']}" if message.get("id") else f"#{index}"


def diff(older: CheckpointTuple, newer: CheckpointTuple) -> dict[str, Any]:
    """What changed from ``older`` to ``newer``: each channel added, removed or changed
    (by its value), and the messages added, removed or changed (matched by id, else by
    position)."""
    before = plain(dict(older.checkpoint.get("channel_values") or {}))
    after = plain(dict(newer.checkpoint.get("channel_values") or {}))
    channels: list[dict[str, Any]] = []
    for name in sorted(set(before) | set(after)):
        if name == MESSAGES_CHANNEL:
            continue
        if name not in before:
            channels.append({"channel": name, "change": "added", "after": after[name]})
        elif name not in after:
            channels.append({"channel": name, "change": "removed", "before": before[name]})
        elif before[name] != after[name]:
            channels.append(
                {"channel": name, "change": "changed", "before": before[name], "after": after[name]}
            )
    old_messages = state_from_checkpoint(older).to_dict()["messages"]
    new_messages = state_from_checkpoint(newer).to_dict()["messages"]
    old_by_key = {_message_key(m, i): m for i, m in enumerate(old_messages)}
    new_by_key = {_message_key(m, i): m for i, m in enumerate(new_messages)}
    messages: list[dict[str, Any]] = []
    for key, message in old_by_key.items():
        if key not in new_by_key:
            messages.append({"key": key, "change": "removed", "before": message})
        elif new_by_key[key] != message:
            messages.append(
                {"key": key, "change": "changed", "before": message, "after": new_by_key[key]}
            )
    for key, message in new_by_key.items():
        if key not in old_by_key:
            messages.append({"key": key, "change": "added", "after": message})
    return {
        "thread_id": newer.config["configurable"]["thread_id"],
        "from": older.checkpoint["id"],
        "to": newer.checkpoint["id"],
        "channels": channels,
        "messages": messages,
    }
