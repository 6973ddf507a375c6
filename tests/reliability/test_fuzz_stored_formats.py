"""Property-based fuzzing of every stored format, in the codec and on every backend.

Real stored values (what a real saver writes: checkpoint skeletons, deflated or not,
plain blobs, item-list and item-dict blobs, segments, deflated items, writes, metadata,
channel_versions, and on Redis the record and write frames) are mutated (bytes flipped,
truncated, extended, spliced, repeated), re-framed (deflated into ``zd1:``/``zc1:``),
re-tagged (another valid type tag, another msgpack extension code) and their item
references shuffled, repeated or dropped, then read back. Only the library's own errors
(``UnifiedStoreError``) may come out: never a crash, a hang or a foreign exception, and
memory stays bounded.

``HYPOTHESIS_PROFILE=ci`` (the default) runs 2,000 examples per format in the codec and
60 per format per backend, derandomized so CI is reproducible; ``=deep`` runs 20,000
and 1,000, with fresh randomness each run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import resource
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from langgraph_unified_store import UnifiedStoreError
from langgraph_unified_store.backends.redis import deflate_record
from langgraph_unified_store.core.codec import COMPRESSED_CHECKPOINT, COMPRESSED_ITEM
from langgraph_unified_store.core.dictionaries import CHECKPOINT_DICTIONARY_V1, ITEM_DICTIONARY_V1
from langgraph_unified_store.core.records import (
    ITEM_DICT_TYPE,
    ITEM_LIST_TYPE,
    SEGMENT_TYPE,
    BlobRecord,
    ItemRecord,
    StoredCheckpoint,
    WriteRecord,
    load_channel_versions,
)
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import ALL_BACKENDS, make_checkpoint
from . import raw
from .hostile import put_state, sandboxed_saver
from .private_servers import PrivateRedis

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if PROFILE not in ("ci", "deep"):
    raise ValueError(f"HYPOTHESIS_PROFILE must be ci or deep, not {PROFILE!r}")
CODEC_EXAMPLES = int(os.environ.get("LUS_FUZZ_EXAMPLES", {"ci": 2000, "deep": 20_000}[PROFILE]))
BACKEND_EXAMPLES = int(os.environ.get("LUS_FUZZ_BACKEND_EXAMPLES", {"ci": 60, "deep": 1000}[PROFILE]))
MIB = 1024 * 1024
MEMORY_BOUND = 100 * MIB


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=PROFILE == "ci",
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


# -- real stored values ---------------------------------------------------------------------

TAGS = (
    "msgpack", "json", "bytes", "bytearray", "null", "empty", "pickle", "str",
    ITEM_LIST_TYPE, ITEM_DICT_TYPE, SEGMENT_TYPE,
    COMPRESSED_ITEM + "msgpack", COMPRESSED_CHECKPOINT + "msgpack", COMPRESSED_ITEM + "json",
    COMPRESSED_CHECKPOINT + ITEM_LIST_TYPE, "msgpack+aesgcm", "lus.zr1:msgpack",
)


def chat(count: int) -> list[Any]:
    out: list[Any] = []
    for i in range(count):
        out.append(HumanMessage(f"question {i} " + "lorem ipsum " * 8, id=f"h{i}"))
        out.append(AIMessage(f"answer {i} " + "dolor sit " * 9, id=f"a{i}",
                             tool_calls=[{"name": "search", "args": {"q": str(i)}, "id": f"c{i}"}]))
    out.append(ToolMessage("result", tool_call_id="c0", id="t0"))
    out.append({"role": "user", "content": "a plain dict element " + "x" * 60})
    return out


def real_values() -> dict[str, Any]:
    """channel values of the real checkpoint every example starts from."""
    return {
        "messages": chat(4),
        "notes": {"items": [*chat(2), "short", 1], "count": 3, "tags": ["a", "b"]},
        "counter": 7,
        "blob": {"nested": [1, 2.5, None, True, "text", b"bytes"], "when": "2025-01-01"},
    }


def real_checkpoint(saver: UnifiedCheckpointSaver) -> StoredCheckpoint:
    """A StoredCheckpoint as a backend would hand it back, encoded by the saver's codec."""
    values = real_values()
    versions = {channel: saver.get_next_version(None) for channel in values}
    checkpoint = make_checkpoint(values, versions)
    checkpoint["versions_seen"] = {"agent": dict(versions)}
    configurable = {"thread_id": "fuzz", "checkpoint_ns": ""}
    record, blobs, items, _inherited = saver._encode_checkpoint(
        configurable, checkpoint, {"source": "loop", "step": 3, "writes": {"a": [1]}}, versions, []
    )
    stored = StoredCheckpoint(record, {b.channel: b for b in blobs})
    by_ref = {i.ref: i for i in items}
    for idx, (channel, value) in enumerate([("messages", chat(1)), ("counter", 8), ("notes", {"x": chat(1)})]):
        type_, data, refs, new_items = saver.codec.encode_value(value, "write")
        stored.writes.append(WriteRecord("task", idx, channel, type_, data, "", refs))
        by_ref.update({i.ref: i for i in new_items})
    stored.items = by_ref
    return stored


# -- mutations ------------------------------------------------------------------------------

EXT_HEADERS = {0xC7: 2, 0xC8: 3, 0xC9: 5, 0xD4: 1, 0xD5: 1, 0xD6: 1, 0xD7: 1, 0xD8: 1}


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` after one to three byte-level mutations."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from((
            "flip", "truncate", "extend", "insert", "delete", "repeat", "ext-code",
            "deflate-item", "deflate-checkpoint", "garbage", "nest",
        )))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[at:]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=64))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "repeat":
            data = data[:at] + data[at:] * draw(st.integers(2, 50))
        elif op == "ext-code":
            spots = [i for i, b in enumerate(data) if b in EXT_HEADERS and i + EXT_HEADERS[b] < len(data)]
            if spots:
                spot = draw(st.sampled_from(spots))
                data[spot + EXT_HEADERS[data[spot]]] = draw(st.integers(0, 255))
        elif op in ("deflate-item", "deflate-checkpoint"):
            dictionary = ITEM_DICTIONARY_V1 if op == "deflate-item" else CHECKPOINT_DICTIONARY_V1
            deflater = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY, dictionary)
            data = bytearray(deflater.compress(bytes(data)) + deflater.flush())
        elif op == "garbage":
            data = bytearray(draw(st.binary(max_size=200)))
        elif op == "nest":
            depth = draw(st.integers(1, 5000))
            data = bytearray(b"\x91" * depth) + data
    return bytes(data)


@st.composite
def mutated_refs(draw: st.DrawFn, original: tuple[bytes, ...], known: list[bytes]) -> tuple[bytes, ...]:
    refs = list(original)
    op = draw(st.sampled_from(("keep", "drop", "repeat", "swap", "random", "shuffle", "many")))
    if op == "drop" and refs:
        del refs[draw(st.integers(0, len(refs) - 1))]
    elif op == "repeat" and refs:
        refs = refs * draw(st.integers(2, 100))
    elif op == "swap" and refs and known:
        refs[draw(st.integers(0, len(refs) - 1))] = draw(st.sampled_from(known))
    elif op == "random":
        refs.append(draw(st.binary(min_size=16, max_size=16)))
    elif op == "shuffle":
        refs = draw(st.permutations(refs))
    elif op == "many" and known:
        refs = [draw(st.sampled_from(known))] * draw(st.integers(1, 4000))
    return tuple(refs)


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70).filter(lambda i: abs(i) < 2**63),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
)
JSON_VALUES = st.one_of(
    st.integers(1, 3000).map(lambda depth: b'{"deep": ' + b"[" * depth + b"]" * depth + b"}"),
    st.dictionaries(st.text(max_size=10), st.recursive(
        JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    ), max_size=6),
    st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=10),
)


def _tag(draw: st.DrawFn, original: str) -> str:
    return draw(st.one_of(st.just(original), st.sampled_from(TAGS)))


# Formats: where in a StoredCheckpoint the mutation lands.
CODEC_FORMATS = (
    "skeleton", "skeleton-zc1", "blob", "item-list", "item-dict", "segment", "item",
    "write", "metadata", "channel-versions",
)


def _mutate_stored(draw: st.DrawFn, fmt: str, stored: StoredCheckpoint) -> StoredCheckpoint:
    record = stored.record
    blobs = dict(stored.blobs)
    writes = list(stored.writes)
    items = dict(stored.items)
    known = list(items)
    if fmt in ("skeleton", "skeleton-zc1"):
        record = replace(record, type=_tag(draw, record.type), data=draw(mutated(record.data)))
    elif fmt == "metadata":
        record = replace(record, metadata=draw(mutated(record.metadata)))
    elif fmt in ("blob", "item-list", "item-dict"):
        channel = {"blob": "blob", "item-list": "messages", "item-dict": "notes"}[fmt]
        blob = blobs[channel]
        blobs[channel] = BlobRecord(
            channel, blob.version, _tag(draw, blob.type), draw(mutated(blob.data)),
            draw(mutated_refs(blob.item_refs, known)),
        )
    elif fmt in ("segment", "item"):
        refs = [r for r, i in items.items() if (i.type == SEGMENT_TYPE) == (fmt == "segment")]
        ref = draw(st.sampled_from(refs))
        item = items[ref]
        items[ref] = ItemRecord(ref, _tag(draw, item.type), draw(mutated(item.data)),
                                draw(mutated_refs(item.item_refs, known)))
    elif fmt == "write":
        at = draw(st.integers(0, len(writes) - 1))
        write = writes[at]
        writes[at] = replace(write, type=_tag(draw, write.type), data=draw(mutated(write.data)),
                             item_refs=draw(mutated_refs(write.item_refs, known)))
    return StoredCheckpoint(record, blobs, writes, items)


def _read_stored(saver: UnifiedCheckpointSaver, stored: StoredCheckpoint) -> None:
    from langgraph_unified_store.mapping import state_from_checkpoint

    with contextlib.suppress(UnifiedStoreError):
        state_from_checkpoint(saver._to_tuple(stored))


@pytest.fixture(scope="module")
def codec_saver(tmp_path_factory: pytest.TempPathFactory) -> UnifiedCheckpointSaver:
    # A SQLite saver is never opened here: it is only a codec that deflates (as SQL and
    # Redis backends do), reading StoredCheckpoints built in memory.
    from langgraph_unified_store import SQLiteSaver

    return SQLiteSaver(tmp_path_factory.mktemp("fuzz") / "unused.sqlite")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("fmt", CODEC_FORMATS)
def test_codec_reads_mutated_values_with_own_errors_only(
    fmt: str, codec_saver: UnifiedCheckpointSaver
) -> None:
    stored = real_checkpoint(codec_saver)
    if fmt == "skeleton":
        plain = codec_saver.serde.dumps_typed(codec_saver.codec.decode_value(
            stored.record.type, stored.record.data, {}, "x"))
        stored.record = replace(stored.record, type=plain[0], data=plain[1])
    else:
        assert fmt != "skeleton-zc1" or stored.record.type.startswith(COMPRESSED_CHECKPOINT)
    assert any(i.type.startswith(COMPRESSED_ITEM) for i in stored.items.values())
    assert stored.blobs["messages"].type == ITEM_LIST_TYPE and stored.blobs["notes"].type == ITEM_DICT_TYPE
    _read_stored(codec_saver, stored)  # the unmutated value reads back
    if fmt == "channel-versions":
        _fuzz_versions()
        return
    peak_before = _peak_rss()

    @_settings(CODEC_EXAMPLES)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        _read_stored(codec_saver, data.draw(st.composite(lambda draw: _mutate_stored(draw, fmt, stored))()))

    run()
    grown = _peak_rss() - peak_before
    assert grown < MEMORY_BOUND, f"{fmt}: the process's peak memory grew by {grown / MIB:.0f} MiB"


def _peak_rss() -> int:
    """The peak resident memory of this process so far (bytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _fuzz_versions() -> None:
    original = b'{"messages":"a1.5f3a9c","counter":"a1.03d2e1"}'

    @_settings(CODEC_EXAMPLES)
    @given(mutated(original))
    def run(data: bytes) -> None:
        with contextlib.suppress(UnifiedStoreError):
            load_channel_versions(data, "t", "", "c")

    run()


# -- every backend: planted through raw SQL / raw Redis, read through the API ---------------

BACKEND_FORMATS = (
    "checkpoint", "metadata", "versions", "blob:messages", "blob:notes", "blob:blob",
    "write:messages", "item", "segment", "record-frame", "write-frame",
)


def _backend_formats() -> list[Any]:
    cases = []
    for backend in ALL_BACKENDS:
        for fmt in BACKEND_FORMATS:
            if fmt.endswith("-frame") and backend != "redis":
                continue
            if fmt == "versions" and backend == "memory":
                continue  # memory keeps channel_versions as a dict, not stored bytes
            cases.append(pytest.param(backend, fmt, id=f"{backend}-{fmt}"))
    return cases


def _originals(saver: UnifiedCheckpointSaver) -> dict[str, tuple[str | None, bytes, bytes | None]]:
    """(type, data, refs) of each target as this saver writes it (the codec is deterministic)."""
    stored = real_checkpoint(saver)
    record = stored.record
    out: dict[str, tuple[str | None, bytes, bytes | None]] = {
        "checkpoint": (record.type, record.data, None),
        "metadata": (None, record.metadata, None),
        "versions": (None, b'{"messages":"a1.5f3a9c","counter":"a1.03d2e1"}', None),
    }
    for channel, blob in stored.blobs.items():
        out[f"blob:{channel}"] = (blob.type, blob.data, b"".join(blob.item_refs))
    write = stored.writes[0]
    out["write:messages"] = (write.type, write.data, b"".join(write.item_refs))
    element = next(i for i in stored.items.values() if i.type != SEGMENT_TYPE)
    segment = next(i for i in stored.items.values() if i.type == SEGMENT_TYPE)
    out["item"] = (element.type, element.data, b"")
    out["segment"] = (segment.type, segment.data, b"".join(segment.item_refs))
    type_, data = deflate_record(record.type, record.data)
    head = orjson.dumps({"p": None, "v": record.channel_versions})
    out["record-frame"] = (None, raw_frame(head, type_, data), None)
    out["write-frame"] = (None, raw_frame(b"", b'["task",0,"messages","","msgpack"]', write.data), None)
    return out


def raw_frame(*parts: bytes) -> bytes:
    from .raw_redis import pack

    return pack(*parts)


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("backend", "fmt"), _backend_formats())
def test_backends_read_planted_mutations_with_own_errors_only(
    backend: str, fmt: str, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    counter = itertools.count()
    with asyncio.Runner() as runner:
        context = sandboxed_saver(backend, tmp_path, sandbox_redis)
        saver = runner.run(context.__aenter__())
        try:
            originals = _originals(saver)
            known = list(real_checkpoint(saver).items)
            type_, original, original_refs = originals[fmt]

            @_settings(BACKEND_EXAMPLES)
            @given(st.data())
            def run(data: st.DataObject) -> None:
                thread = f"fuzz-{next(counter)}"
                if backend == "postgres" and fmt in ("metadata", "versions"):
                    value = data.draw(JSON_VALUES)  # json columns take JSON only
                    planted = value if isinstance(value, bytes) else orjson.dumps(value)
                else:
                    planted = data.draw(mutated(original))
                tag = data.draw(st.one_of(st.just(type_), st.sampled_from(TAGS))) if type_ else None
                refs = None
                if original_refs is not None:
                    split = tuple(original_refs[i : i + 16] for i in range(0, len(original_refs), 16))
                    refs = b"".join(data.draw(mutated_refs(split, known)))
                runner.run(_seed(saver, thread))
                try:
                    runner.run(raw.plant(saver, thread, fmt, planted, tag, refs))
                except UnicodeDecodeError:
                    reject()  # PostgreSQL json columns take text only
                except Exception as exc:
                    if type(exc).__module__.startswith("asyncpg"):
                        reject()  # PostgreSQL refuses to store it (json, jsonb columns)
                    raise
                _read_back(runner, saver, thread, sync=data.draw(st.booleans()))

            run()
        finally:
            runner.run(context.__aexit__(None, None, None))


async def _seed(saver: UnifiedCheckpointSaver, thread: str) -> None:
    config = await put_state(saver, thread, real_values())
    await saver.aput_writes(config, [("messages", chat(1))], "task")


def _read_back(runner: asyncio.Runner, saver: UnifiedCheckpointSaver, thread: str, *, sync: bool) -> None:
    config = {"configurable": {"thread_id": thread}}
    reads: list[Callable[[], Any]]
    if sync:
        reads = [lambda: saver.get_tuple(config), lambda: list(saver.list(config)),
                 lambda: saver.load_state(thread)]
    else:
        async def listed() -> list[Any]:
            return [t async for t in saver.alist(config)]

        reads = [lambda: runner.run(asyncio.wait_for(saver.aget_tuple(config), 60)),
                 lambda: runner.run(asyncio.wait_for(listed(), 60)),
                 lambda: runner.run(asyncio.wait_for(saver.aload_state(thread), 60))]
    for read in reads:
        with contextlib.suppress(UnifiedStoreError):
            read()

