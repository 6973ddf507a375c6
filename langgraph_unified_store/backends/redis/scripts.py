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
REMOVE_THREAD: Final = LuaScript.load("remove_thread")
SET_TTL: Final = LuaScript.load("set_ttl")
ADOPT: Final = LuaScript.load("adopt")
NAMESPACES: Final = LuaScript.load("namespaces")


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


class RemoveStatus(IntEnum):
    """What remove_thread.lua answers first."""

    KEPT = 0
    REMOVED = 1
    ABSENT = 2


class RetainMode(StrEnum):
    """What retain.lua's values are."""

    KEEP = "keep"
    """The keys P of the checkpoints to keep."""
    RUNS = "runs"
    """The run ids whose checkpoints go."""


@dataclass(frozen=True, slots=True)
class ThreadIndexEntry:
    """The global index entries a write adds on a single server (put_checkpoint.lua
    ARGV[11..15], put_writes.lua ARGV[7..10]); the script computes the scores."""

    threads_key: str
    names_key: str
    written_key: str
    thread_member: bytes
    run_key: str | None = None

    def args(self) -> list[ScriptArg]:
        return [self.threads_key, self.names_key, self.written_key, self.thread_member]


NO_INDEX_ENTRY: Final[list[ScriptArg]] = ["", "", "", ""]


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
    now_ms: int,
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
        now_ms,
        len(blobs),
    ]
    if index_entry is None:
        args += [*NO_INDEX_ENTRY, ""]
    else:
        args += [*index_entry.args(), index_entry.run_key or ""]
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
    now_ms: int,
    index_entry: ThreadIndexEntry | None,
    checkpoint_key: bytes,
    writes: Sequence[tuple[bytes, bytes]],
    items: Sequence[tuple[bytes, bytes]],
) -> Call:
    """put_writes.lua; ``writes`` are (match key, value) pairs."""
    args: list[ScriptArg] = [base, _flag(replace), ttl_ms, checkpoint_key, len(writes), now_ms]
    args.extend(NO_INDEX_ENTRY if index_entry is None else index_entry.args())
    args.extend(_pairs(writes))
    args.extend(_pairs(items))
    return Call(PUT_WRITES, (thread_key(base, ThreadKey.WRITES),), args)


@dataclass(frozen=True, slots=True)
class ReadClock:
    """What a read script needs of the lifecycle: now, and whether and by how much a
    read moves the thread's expiry (refresh_on_read, the saver's ttl)."""

    now_ms: int
    refresh: bool = False
    ttl_ms: int = 0

    def args(self) -> list[ScriptArg]:
        return [self.now_ms, _flag(self.refresh), self.ttl_ms]


def fetch_call(*, base: str, by: FetchBy, target: bytes | str, clock: ReadClock) -> Call:
    """fetch.lua."""
    return Call(
        FETCH, (thread_key(base, ThreadKey.INDEX),), [base, by.value, target, *clock.args()]
    )


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
    clock: ReadClock,
) -> Call:
    """list.lua; ``want`` and ``scan_budget`` 0 mean no limit."""
    args: list[ScriptArg] = [
        base, index.value, max_bound, min_bound, want, scan_budget, filter_json,
        _flag(with_data), *clock.args(),
    ]
    return Call(LIST, (thread_key(base, ThreadKey(index.value)),), args)


def heads_call(*, base: str, clock: ReadClock) -> Call:
    """heads.lua."""
    return Call(HEADS, (thread_key(base, ThreadKey.INDEX),), [base, *clock.args()])


def delete_thread_call(*, base: str) -> Call:
    """delete_thread.lua."""
    return Call(DELETE_THREAD, (thread_key(base, ThreadKey.INDEX),), [base])


def retain_call(*, base: str, mode: RetainMode, values: Sequence[bytes]) -> Call:
    """retain.lua."""
    return Call(RETAIN, (thread_key(base, ThreadKey.INDEX),), [base, mode.value, *values])


def snapshot_call(*, base: str, now_ms: int) -> Call:
    """snapshot.lua."""
    return Call(SNAPSHOT, (thread_key(base, ThreadKey.INDEX),), [base, now_ms])


def restore_call(
    *, base: str, ttl_ms: int, now_ms: int, sections: Sequence[Sequence[bytes]]
) -> Call:
    """restore.lua; ``sections`` as snapshot.lua returned them."""
    args: list[ScriptArg] = [base, ttl_ms, now_ms]
    for section in sections:
        args.append(len(section))
        args.extend(section)
    return Call(RESTORE, (thread_key(base, ThreadKey.INDEX),), args)


def remove_thread_call(
    *, base: str, written_before_ms: float | None, expired_at_ms: float | None
) -> Call:
    """remove_thread.lua; a bound None is no guard."""
    args: list[ScriptArg] = [
        base,
        "" if written_before_ms is None else repr(float(written_before_ms)),
        "" if expired_at_ms is None else repr(float(expired_at_ms)),
    ]
    return Call(REMOVE_THREAD, (thread_key(base, ThreadKey.INDEX),), args)


def set_ttl_call(*, base: str, now_ms: int, ttl_ms: int) -> Call:
    """set_ttl.lua; ``ttl_ms`` 0 pins the thread."""
    return Call(SET_TTL, (thread_key(base, ThreadKey.INDEX),), [base, now_ms, ttl_ms])


def adopt_call(*, base: str, now_ms: int) -> Call:
    """adopt.lua: stamp a thread of the earlier release as written at the upgrade."""
    return Call(ADOPT, (thread_key(base, ThreadKey.INDEX),), [base, now_ms])


def namespaces_call(*, base: str) -> Call:
    """namespaces.lua."""
    return Call(NAMESPACES, (thread_key(base, ThreadKey.INDEX),), [base])
