"""The Lua scripts: loaded once from ``lua/``, and one wrapper per script that builds its
KEYS and ARGV, in the order the script's header documents, from named arguments.

Every script receives the thread's base key B as ARGV[1] and declares one of its keys
as KEYS[1] (for cluster routing); every key it touches shares that key's hash tag and slot.

Shared helpers live in ``lua/lib/``. A script (or helper) names the helpers it needs with
lines ``--! include lib/<name>.lua``; the loader puts each named file's text, once, in
front of the file that includes it (depth first, so a helper's own includes come first).
That is the whole mechanism: the Lua that runs is the files' text, in that order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from hashlib import sha1
from importlib.resources import files
from typing import Final

from .client import Call, ScriptArg
from .keys import ThreadKey, thread_key

INCLUDE_LINE: Final = re.compile(r"^--! include (\S+)[ \t]*(?:\n|$)", re.M)


def load_lua(name: str) -> str:
    """The source of ``lua/<name>``, its includes resolved (see the module docstring)."""
    emitted: list[str] = []
    texts: list[str] = []

    def resolve(path: str, including: tuple[str, ...]) -> None:
        if path in including:
            raise ValueError(f"Lua include cycle: {' -> '.join((*including, path))}")
        if path in emitted:
            return
        source = files(__package__).joinpath("lua", *path.split("/")).read_text("utf-8")
        for included in INCLUDE_LINE.findall(source):
            resolve(included, (*including, path))
        emitted.append(path)
        texts.append(f"-- {path}\n" + INCLUDE_LINE.sub("", source).strip() + "\n")

    resolve(name, ())
    return "\n".join(texts)


@dataclass(frozen=True, slots=True)
class LuaScript:
    """A script run by EVALSHA, falling back to EVAL when the server has not cached it."""

    name: str
    source: str
    sha: str

    @classmethod
    def load(cls, name: str) -> LuaScript:
        source = load_lua(f"{name}.lua")
        return cls(name, source, sha1(source.encode(), usedforsecurity=False).hexdigest())


PUT_CHECKPOINT: Final = LuaScript.load("put_checkpoint")
PUT_WRITES: Final = LuaScript.load("put_writes")
FETCH: Final = LuaScript.load("fetch")
LIST: Final = LuaScript.load("list")
HEADS: Final = LuaScript.load("heads")
DELETE_THREAD: Final = LuaScript.load("delete_thread")
RETAIN: Final = LuaScript.load("retain")
SNAPSHOT: Final = LuaScript.load("snapshot")
RESTORE: Final = LuaScript.load("restore")


class PutOutcome(IntEnum):
    """What put_checkpoint.lua answers: its number, or the first element of its list."""

    ITEM_MISSING = 0
    STORED = 1
    BLOBS_MISSING = 2


class FetchBy(StrEnum):
    """How fetch.lua finds its checkpoint."""

    ID = "id"
    """By its key P."""
    MEMBER = "member"
    """By the B:i member a listing found."""
    LATEST = "latest"
    """The newest of a hex namespace."""


class ListIndex(StrEnum):
    """Which index list.lua walks (the values are the keys' suffixes)."""

    ONE_NAMESPACE = ThreadKey.INDEX.value
    ALL_NAMESPACES = ThreadKey.BY_ID.value


class RetainMode(StrEnum):
    """What retain.lua's values are."""

    KEEP = "keep"
    """The keys P of the checkpoints to keep."""
    RUNS = "runs"
    """The run ids whose checkpoints go."""


@dataclass(frozen=True, slots=True)
class ThreadIndexEntry:
    """The global index entries a put adds (put_checkpoint.lua ARGV[10..13])."""

    threads_key: str
    score: float
    thread_member: bytes
    run_key: str | None


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _pairs(pairs: Sequence[tuple[bytes, bytes]]) -> list[ScriptArg]:
    return [part for pair in pairs for part in pair]


def put_checkpoint_call(
    *,
    base: str,
    checkpoint_key: bytes,
    by_id_entry: bytes | None,
    record: bytes,
    metadata: bytes,
    run_id: bytes | None,
    ttl_ms: int,
    index_entry: ThreadIndexEntry | None,
    inherited_fields: Sequence[bytes],
    blobs: Sequence[tuple[bytes, bytes]],
    items: Sequence[tuple[bytes, bytes]],
) -> Call:
    """put_checkpoint.lua. ``index_entry`` None: the caller indexes the thread itself (a
    cluster, where the global keys live in other slots)."""
    args: list[ScriptArg] = [
        base,
        checkpoint_key,
        by_id_entry or b"",
        record,
        metadata,
        _flag(run_id is not None),
        run_id or b"",
        ttl_ms,
        len(blobs),
    ]
    if index_entry is None:
        args += ["", "", "", ""]
    else:
        args += [
            index_entry.threads_key,
            index_entry.score,
            index_entry.thread_member,
            index_entry.run_key or "",
        ]
    args.append(len(inherited_fields))
    args.extend(inherited_fields)
    args.extend(_pairs(blobs))
    args.extend(_pairs(items))
    return Call(PUT_CHECKPOINT, (thread_key(base, ThreadKey.INDEX),), args)


def put_writes_call(
    *,
    base: str,
    replace: bool,
    ttl_ms: int,
    checkpoint_key: bytes,
    writes: Sequence[tuple[bytes, bytes]],
    items: Sequence[tuple[bytes, bytes]],
) -> Call:
    """put_writes.lua; ``writes`` are (match key, value) pairs."""
    args: list[ScriptArg] = [base, _flag(replace), ttl_ms, checkpoint_key, len(writes)]
    args.extend(_pairs(writes))
    args.extend(_pairs(items))
    return Call(PUT_WRITES, (thread_key(base, ThreadKey.WRITES),), args)


def fetch_call(*, base: str, by: FetchBy, target: bytes | str, ttl_ms: int) -> Call:
    """fetch.lua."""
    return Call(FETCH, (thread_key(base, ThreadKey.INDEX),), [base, by.value, target, ttl_ms])


def list_call(
    *,
    base: str,
    index: ListIndex,
    max_bound: bytes | str,
    min_bound: bytes | str,
    want: int,
    scan_budget: int,
    filter_json: bytes,
    with_data: bool,
    ttl_ms: int,
) -> Call:
    """list.lua; ``want`` and ``scan_budget`` 0 mean no limit."""
    args: list[ScriptArg] = [
        base, index.value, max_bound, min_bound, want, scan_budget, filter_json,
        _flag(with_data), ttl_ms,
    ]
    return Call(LIST, (thread_key(base, ThreadKey(index.value)),), args)


def heads_call(*, base: str) -> Call:
    """heads.lua."""
    return Call(HEADS, (thread_key(base, ThreadKey.INDEX),), [base])


def delete_thread_call(*, base: str) -> Call:
    """delete_thread.lua."""
    return Call(DELETE_THREAD, (thread_key(base, ThreadKey.INDEX),), [base])


def retain_call(*, base: str, mode: RetainMode, values: Sequence[bytes]) -> Call:
    """retain.lua."""
    return Call(RETAIN, (thread_key(base, ThreadKey.INDEX),), [base, mode.value, *values])


def snapshot_call(*, base: str) -> Call:
    """snapshot.lua."""
    return Call(SNAPSHOT, (thread_key(base, ThreadKey.INDEX),), [base])


def restore_call(*, base: str, ttl_ms: int, sections: Sequence[Sequence[bytes]]) -> Call:
    """restore.lua; ``sections`` as snapshot.lua returned them."""
    args: list[ScriptArg] = [base, ttl_ms]
    for section in sections:
        args.append(len(section))
        args.extend(section)
    return Call(RESTORE, (thread_key(base, ThreadKey.INDEX),), args)
