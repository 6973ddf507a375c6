"""What an import refuses, and what it leaves behind when it does: existing threads are
never silently overwritten, a damaged or truncated file is named by its line and writes
nothing, and no garbled line escapes as anything but the library's own error."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langgraph_unified_store.backends.memory import MemorySaver
from langgraph_unified_store.errors import CorruptDataError, InvalidConfigError, UnifiedStoreError
from langgraph_unified_store.transfer import (
    ExportFormatError,
    ImportConflictError,
    aexport_to,
    aimport_from,
    parse_line,
)

from ..support import put_numbered, saver_for
from .histories import CHAT, FORKED, INTERRUPTED, NESTED, build_history, thread_view


@pytest.fixture(scope="module")
def exported() -> bytes:
    """An export of the histories (built once, on a memory saver)."""
    import asyncio

    async def build() -> bytes:
        saver = MemorySaver()
        await build_history(saver, turns=2)
        out = io.BytesIO()
        await aexport_to(out, saver)
        return out.getvalue()

    return asyncio.run(build())


async def _everything(saver: Any) -> list[Any]:
    return [t async for t in saver.alist(None)]


async def test_an_existing_thread_is_refused_skipped_resumed_or_replaced(exported: bytes, tmp_path: Path) -> None:
    async with saver_for("sqlite", tmp_path) as target:
        await put_numbered(target, FORKED, 1, x="mine")
        mine = await thread_view(target, FORKED)
        with pytest.raises(ImportConflictError, match=f"thread {FORKED!r} exists") as raised:
            await aimport_from(io.BytesIO(exported), target)
        assert raised.value.thread_id == FORKED
        assert str(raised.value).endswith(
            "(on_conflict='skip' keeps it, 'resume' completes it, 'replace' deletes it first)"
        )
        assert raised.value.described("--on-conflict ", str).endswith(
            "(--on-conflict skip keeps it, resume completes it, replace deletes it first)"
        )
        assert await thread_view(target, FORKED) == mine
        summary = await aimport_from(io.BytesIO(exported), target, on_conflict="skip")
        assert FORKED in summary.threads_skipped and CHAT in summary.threads_skipped
        assert await thread_view(target, FORKED) == mine
        with pytest.raises(ImportConflictError, match="holds 1 checkpoint"):
            await aimport_from(io.BytesIO(exported), target, on_conflict="resume", verify=True)
        assert (await thread_view(target, FORKED))[""][-1] == mine[""][0]
        await aimport_from(io.BytesIO(exported), target, on_conflict="replace")
        source = MemorySaver()
        await aimport_from(io.BytesIO(exported), source)
        assert await thread_view(target, FORKED) == await thread_view(source, FORKED)
        with pytest.raises(InvalidConfigError, match="on_conflict"):
            await aimport_from(io.BytesIO(exported), target, on_conflict="overwrite")  # type: ignore[arg-type]


def _cut(data: bytes, keep: int) -> bytes:
    return b"\n".join(data.splitlines()[:keep]) + b"\n"


class _Stream(io.RawIOBase):
    """A file that cannot seek (a pipe): it is imported without the check first."""

    def __init__(self, data: bytes) -> None:
        self._lines: Iterator[bytes] = iter(data.splitlines(keepends=True))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def __iter__(self) -> Iterator[bytes]:
        return self._lines


async def test_a_truncated_file_is_refused_and_writes_nothing(exported: bytes) -> None:
    lines = exported.splitlines()
    middle = next(i for i, line in enumerate(lines) if line.startswith(b'{"kind":"checkpoint"')) + 2
    for keep, message in [
        (middle, "ends inside thread 'chat'"),
        (len(lines) - 1, "without its trailer"),
    ]:
        target = MemorySaver()
        with pytest.raises(ExportFormatError, match=f"line {keep}: .*{message}.*truncated"):
            await aimport_from(io.BytesIO(_cut(exported, keep)), target)
        assert await _everything(target) == []
    # A stream is imported as it comes: the thread cut short is rolled back.
    target = MemorySaver()
    with pytest.raises(ExportFormatError, match="truncated"):
        await aimport_from(_Stream(_cut(exported, middle)), target)  # type: ignore[arg-type]
    assert await _everything(target) == []


def _replace_line(data: bytes, index: int, change: Any) -> bytes:
    lines = data.splitlines()
    lines[index] = change(lines[index]) if callable(change) else change
    return b"\n".join(lines) + b"\n"


def _edit(field: str, value: Any) -> Any:
    def edit(line: bytes) -> bytes:
        obj = orjson.loads(line)
        obj[field] = value
        return orjson.dumps(obj)

    return edit


@pytest.mark.parametrize(
    ("index", "change", "error", "message"),
    [
        (0, _edit("version", 2), ExportFormatError, "format version 2 is not one this library reads"),
        (0, _edit("format", "other"), ExportFormatError, "not a langgraph-unified-store-export"),
        (3, b"{not json", ExportFormatError, "not a JSON object"),
        (3, b"[1, 2]", ExportFormatError, "not a JSON object but list"),
        (3, _edit("kind", "mystery"), ExportFormatError, "unknown record kind 'mystery'"),
        (3, _edit("checkpoint_id", 7), ExportFormatError, "'checkpoint_id' must be a string, not int"),
        (3, _edit("writes", {}), ExportFormatError, "'writes' must be a list"),
        (2, _edit("value", {"type": "msgpack", "data": "!!"}), ExportFormatError, "not base64"),
        (2, _edit("value", {"type": "msgpack", "data": "wc8="}), CorruptDataError, "cannot be read"),
        (3, b'{"kind":"trailer","threads":0,"checkpoints":0,"blobs":0,"writes":0,"store_items":0}',
         ExportFormatError, "no thread_end record before this one"),
    ],
)
async def test_a_damaged_line_is_named_and_nothing_is_written(
    exported: bytes, index: int, change: Any, error: type[Exception], message: str
) -> None:
    damaged = _replace_line(exported, index, change)
    for check_first in (True, False):
        target = MemorySaver()
        with pytest.raises(error, match=f"line {index + 1}: .*{message}"):
            await aimport_from(io.BytesIO(damaged), target, check_first=check_first)
        assert await _everything(target) == []


async def test_counts_that_do_not_add_up_are_refused(exported: bytes) -> None:
    lines = exported.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith(b'{"kind":"thread_end"'))
    target = MemorySaver()
    with pytest.raises(ExportFormatError, match=f"line {end + 1}: .*counts"):
        await aimport_from(io.BytesIO(_replace_line(exported, end, _edit("checkpoints", 99))), target)
    dropped = b"\n".join(lines[: end - 1] + lines[end:]) + b"\n"  # a checkpoint went missing
    with pytest.raises(ExportFormatError, match="counts"):
        await aimport_from(io.BytesIO(dropped), target)
    assert await _everything(target) == []


_SMALL: list[bytes] = []


def _small_export() -> list[bytes]:
    """The lines of a small export (one thread of a turn, a store item), built once."""
    if not _SMALL:
        import asyncio

        async def build() -> bytes:
            saver = MemorySaver()
            await build_history(saver, turns=1)
            out = io.BytesIO()
            await aexport_to(out, saver, threads=[INTERRUPTED, NESTED])
            return out.getvalue()

        _SMALL.extend(asyncio.run(build()).splitlines())
    return _SMALL


def _garble(line: bytes, data: st.DataObject) -> bytes:
    """A line with a few bytes changed, cut, or a JSON value swapped for another."""
    how = data.draw(st.sampled_from(["bytes", "cut", "value"]))
    if how == "cut":
        return line[: data.draw(st.integers(0, len(line)))]
    if how == "bytes":
        out = bytearray(line)
        for _ in range(data.draw(st.integers(1, 4))):
            out[data.draw(st.integers(0, len(out) - 1))] = data.draw(st.integers(0, 255))
        return bytes(out)
    obj = orjson.loads(line)
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=6,
    )
    key = data.draw(st.sampled_from(sorted(obj)))
    obj[key] = data.draw(json_values)
    return orjson.dumps(obj)


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_garbled_lines_raise_only_the_library_s_errors(data: st.DataObject) -> None:
    import asyncio

    lines = _small_export()
    index = data.draw(st.integers(0, len(lines) - 1))
    garbled = _garble(lines[index], data)
    try:
        parse_line(garbled, index + 1)
    except ExportFormatError as exc:
        assert f"line {index + 1}" in str(exc)
    damaged = b"\n".join([*lines[:index], garbled, *lines[index + 1 :]]) + b"\n"
    target = MemorySaver()
    with contextlib.suppress(UnifiedStoreError):
        asyncio.run(aimport_from(io.BytesIO(damaged), target, check_first=data.draw(st.booleans())))


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200) | st.text(max_size=200))
def test_random_lines_raise_only_export_format_errors(raw: bytes | str) -> None:
    try:
        parse_line(raw, 5)
    except ExportFormatError as exc:
        assert str(exc).startswith("line 5: ")
