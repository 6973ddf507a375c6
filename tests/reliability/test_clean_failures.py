"""Writes fail cleanly, and so do reads of well-formed data of the wrong shape.

Every user-supplied string or value that reaches a driver (ids, namespaces, channel
names, versions, task ids and paths, metadata keys and values, filter keys and values,
limit and before, run ids, copy targets) is tried with hostile content on every backend,
through the async and the blocking API. Only the library's own errors may come out;
a NUL or a lone surrogate in an id or name is the same ``InvalidConfigError`` on every
backend; and a refused call writes nothing (raw rows and keys compared before and after).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import random
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import ormsgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, MessagesState, StateGraph

from langgraph_unified_store import (
    CorruptDataError,
    InvalidConfigError,
    SerializationError,
    UnifiedStoreError,
)
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import ALL_BACKENDS, drop_saver, make_checkpoint, make_saver, saver_for
from ..syncwrap import SyncDriven
from . import figures, raw
from .hostile import make_bystander, put_state, snapshot

APIS = ("async", "sync")
# Examples per backend for the property-based tests; raise it locally (LUS_CLEAN_EXAMPLES).
EXAMPLES = int(os.environ.get("LUS_CLEAN_EXAMPLES", "60"))


def api_of(saver: UnifiedCheckpointSaver, api: str) -> BaseCheckpointSaver[Any]:
    """The saver itself (async API), or a wrapper whose async methods call its blocking
    twins in a worker thread (the blocking API)."""
    return saver if api == "async" else SyncDriven(saver)


async def raw_state(saver: UnifiedCheckpointSaver) -> list[bytes]:
    """Every stored row and key of the saver (order-free), to prove nothing was written."""
    return sorted((await raw.dump(saver)).split(b"\n"))


def nest(depth: int, kind: str) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


# -- a value nested 10,000 levels deep ------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_deeply_nested_values_are_a_serialization_error_naming_the_path(
    backend: str, api: str, tmp_path: Path
) -> None:
    async with saver_for(backend, tmp_path) as saver:
        use = api_of(saver, api)
        bystander = await make_bystander(saver)
        parent = await put_state(saver, "victim", {"counter": 1})
        cyclic: list[Any] = ["start"]
        cyclic.append(cyclic)
        for kind in ("list", "dict"):
            deep = nest(10_000, kind)
            step = "[0]" if kind == "list" else "['k']"
            before = await raw_state(saver)
            attempts: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
            checkpoint = make_checkpoint({"notes": deep, "counter": 2}, {"notes": "b1.000001", "counter": "b1.000001"})
            attempts.append(("channel 'notes'", lambda c=checkpoint: use.aput(
                {"configurable": {"thread_id": "victim", "checkpoint_ns": "",
                                  "checkpoint_id": parent["configurable"]["checkpoint_id"]}},
                c, {"source": "loop", "step": 1}, dict(c["channel_versions"]))))
            attempts.append(("write to channel 'notes'", lambda d=deep: use.aput_writes(
                parent, [("counter", 5), ("notes", d)], "task-deep")))
            attempts.append(("metadata['deep']", lambda d=deep: put_state(
                saver if api == "async" else use, "victim", {"counter": 3}, {"deep": d})))  # type: ignore[arg-type]
            attempts.append(("channel 'loop'", lambda: put_state(
                saver if api == "async" else use, "victim", {"loop": cyclic})))  # type: ignore[arg-type]
            for what, attempt in attempts:
                with pytest.raises(SerializationError) as caught:
                    await attempt()
                message = str(caught.value)
                assert what in message, message
                if what != "channel 'loop'":
                    assert step * 4 in message and "levels deep" in message, message
                    assert len(message) < 2000, f"a path of {len(message)} characters"
                else:
                    assert "contains itself" in message, message
                figures.count(backend, figures.HOSTILE_INPUTS)
            assert await raw_state(saver) == before, f"{kind}: a refused value left something behind"
        assert await snapshot(saver, "bystander") == bystander


# -- hostile input in every argument -----------------------------------------------------------

_RANDOM = random.Random(20261203)
HOSTILE: dict[str, Any] = {
    "NUL": "nul\x00inside",
    "surrogate": "lone \ud800 surrogate",
    "3 KB random": _RANDOM.randbytes(1500).hex(),
    "100 K chars": "y" * 100_000,
    "glob+SQL": "*' OR '1'='1 --{x}:[a-z]%_\\",
    "bytes": b"bytes-id",
    "float": 1.5,
    "int > 64 bits": 2**70,
    "NaN": math.nan,
    "inf": math.inf,
}

Slot = Callable[[BaseCheckpointSaver[Any], Any, str], Awaitable[Any]]


async def _put(
    use: BaseCheckpointSaver[Any],
    thread_id: Any,
    *,
    ns: Any = "",
    checkpoint_id: Any = None,
    parent: Any = None,
    values: dict[Any, Any] | None = None,
    versions: dict[Any, Any] | None = None,
    metadata: dict[Any, Any] | None = None,
) -> Any:
    checkpoint = make_checkpoint(values if values is not None else {"a": 1}, versions or None)
    if checkpoint_id is not None:
        checkpoint["id"] = checkpoint_id
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ns}
    if parent is not None:
        configurable["checkpoint_id"] = parent
    return await use.aput(
        {"configurable": configurable},
        checkpoint,
        {"source": "input", "step": -1, **(metadata or {})},
        dict(checkpoint["channel_versions"]),
    )


# put_writes slots write to this checkpoint (made by ``prepare``, before the comparison
# starts, so that a refused write is compared against a store that already holds it).
WRITES_THREAD = "writes-target"
WRITES_CHECKPOINT = "1f0c0000-0000-6000-8000-000000000001"


async def prepare(use: BaseCheckpointSaver[Any]) -> None:
    await _put(use, WRITES_THREAD, checkpoint_id=WRITES_CHECKPOINT)


async def _writes(use: BaseCheckpointSaver[Any], thread: str, **kw: Any) -> None:
    config = _conf(thread_id=WRITES_THREAD, checkpoint_ns="",
                   checkpoint_id=kw.pop("checkpoint_id", WRITES_CHECKPOINT))
    await use.aput_writes(
        config, [(kw.pop("channel", "a"), kw.pop("value", 2))], kw.pop("task_id", "task"),
        kw.pop("task_path", ""),
    )


async def _list(use: BaseCheckpointSaver[Any], config: Any, **kw: Any) -> list[Any]:
    return [t async for t in use.alist(config, **kw)]


def _conf(**configurable: Any) -> Any:
    return {"configurable": configurable}


# Each slot puts the hostile value in one argument; ``thread`` is a fresh thread id.
SLOTS: dict[str, Slot] = {
    "put thread_id": lambda u, v, t: _put(u, v),
    "put checkpoint_ns": lambda u, v, t: _put(u, t, ns=v),
    "put checkpoint id": lambda u, v, t: _put(u, t, checkpoint_id=v),
    "put parent checkpoint_id": lambda u, v, t: _put(u, t, parent=v),
    "put channel name": lambda u, v, t: _put(u, t, values={v: 1}),
    "put channel version": lambda u, v, t: _put(u, t, versions={"a": v}),
    "put channel value": lambda u, v, t: _put(u, t, values={"a": v}),
    "put metadata key": lambda u, v, t: _put(u, t, metadata={v: 1}),
    "put metadata value": lambda u, v, t: _put(u, t, metadata={"k": v}),
    "put nested metadata value": lambda u, v, t: _put(u, t, metadata={"k": {"in": [v]}}),
    "put metadata run_id": lambda u, v, t: _put(u, t, metadata={"run_id": v}),
    "put_writes checkpoint_id": lambda u, v, t: _writes(u, t, checkpoint_id=v),
    "put_writes channel": lambda u, v, t: _writes(u, t, channel=v),
    "put_writes task_id": lambda u, v, t: _writes(u, t, task_id=v),
    "put_writes task_path": lambda u, v, t: _writes(u, t, task_path=v),
    "put_writes value": lambda u, v, t: _writes(u, t, value=v),
    "get_tuple thread_id": lambda u, v, t: u.aget_tuple(_conf(thread_id=v)),
    "get_tuple checkpoint_ns": lambda u, v, t: u.aget_tuple(_conf(thread_id=t, checkpoint_ns=v)),
    "get_tuple checkpoint_id": lambda u, v, t: u.aget_tuple(_conf(thread_id=t, checkpoint_id=v)),
    "list thread_id": lambda u, v, t: _list(u, _conf(thread_id=v)),
    "list checkpoint_ns": lambda u, v, t: _list(u, _conf(thread_id=t, checkpoint_ns=v)),
    "list checkpoint_id": lambda u, v, t: _list(u, _conf(thread_id=t, checkpoint_id=v)),
    "list before": lambda u, v, t: _list(u, None, before=_conf(checkpoint_id=v)),
    "list filter key": lambda u, v, t: _list(u, None, filter={v: 1}),
    "list filter value": lambda u, v, t: _list(u, None, filter={"k": v}),
    "list limit": lambda u, v, t: _list(u, None, limit=v),
    "delete_thread": lambda u, v, t: u.adelete_thread(v),
    "delete_for_runs run id": lambda u, v, t: u.adelete_for_runs([v]),
    "copy_thread source": lambda u, v, t: u.acopy_thread(v, t),
    "copy_thread target": lambda u, v, t: u.acopy_thread("bystander", v),
    "prune thread id": lambda u, v, t: u.aprune([v]),
}
# Slots whose value becomes (part of) a stored id or name: NUL and lone surrogates are
# refused there alike on every backend, as InvalidConfigError.
ID_SLOTS = {s for s in SLOTS if not any(w in s for w in ("metadata", "value", "limit"))} | {
    "list filter value",
}
# PostgreSQL's btree entry limit (2,704 bytes) applies to what goes into a row's key.
POSTGRES_KEY_SLOTS = {
    "put thread_id", "put checkpoint_ns", "put checkpoint id", "put channel name",
    "put channel version", "put metadata run_id", "put_writes checkpoint_id",
    "put_writes task_id", "copy_thread target",
}
LONG = ("3 KB random",)


def outcome(exc: BaseException | None) -> str:
    return "ok" if exc is None else type(exc).__name__


async def _try_all(saver: UnifiedCheckpointSaver, api: str) -> dict[tuple[str, str], str]:
    """Every slot with every hostile value; what each did. Asserts the invariants."""
    use = api_of(saver, api)
    results: dict[tuple[str, str], str] = {}
    await prepare(use)
    before = await raw_state(saver)
    for n, (slot, attempt) in enumerate(SLOTS.items()):
        for name, value in HOSTILE.items():
            thread = f"t{n}-{name}"
            error: BaseException | None = None
            try:
                returned = await asyncio.wait_for(attempt(use, value, thread), 60)
            except UnifiedStoreError as exc:
                error = exc
            except Exception as exc:  # pragma: no cover - what this test exists to catch
                raise AssertionError(
                    f"{saver.backend.name}/{api}: {slot} with {name}: a foreign "
                    f"{type(exc).__module__}.{type(exc).__name__} escaped: {exc}"
                ) from exc
            else:
                await _reads_back(use, slot, value, returned)
            results[(slot, name)] = outcome(error)
            figures.count(saver.backend.name, figures.HOSTILE_INPUTS)
            if error is not None:
                assert len(str(error)) < 1500, f"{slot} with {name}: a {len(str(error))}-char message"
                after = await raw_state(saver)
                assert after == before, f"{slot} with {name}: refused, but something was written"
            else:
                # What the call stored goes again, so the next refusal compares from clean.
                for thread_id in (thread, value, thread + "-copy"):
                    if isinstance(thread_id, (str, int)) and not isinstance(thread_id, bool):
                        with contextlib.suppress(InvalidConfigError):
                            await saver.adelete_thread(thread_id)
                if slot.startswith("put_writes"):
                    await saver.adelete_thread(WRITES_THREAD)
                    await prepare(saver)
                before = await raw_state(saver)
    return results


def _as_stored(value: Any) -> str:
    """repr of what reads back. ormsgpack (under LangGraph's serializer, and ours) writes a
    lone surrogate inside a str *value* as '?', silently, as the official savers do: a
    known limit of the serializer, reported, not fixed here (see serde.py)."""
    if isinstance(value, str):
        return repr("".join("?" if "\ud800" <= c <= "\udfff" else c for c in value))
    return repr(value)


async def _reads_back(use: BaseCheckpointSaver[Any], slot: str, value: Any, returned: Any) -> None:
    """What an accepted put or write stored reads back exactly (NaN compared by repr)."""
    if slot.startswith("put "):
        got = await use.aget_tuple(returned)
        assert got is not None, f"{slot} with {value!r:.40}: stored, then not found"
        if slot == "put channel value":
            assert repr(got.checkpoint["channel_values"]["a"]) == _as_stored(value), slot
        if slot == "put thread_id":
            assert got.config["configurable"]["thread_id"] == str(value), slot
    elif slot == "put_writes value":
        got = await use.aget_tuple(
            _conf(thread_id=WRITES_THREAD, checkpoint_ns="", checkpoint_id=WRITES_CHECKPOINT)
        )
        assert got is not None and [repr(v) for _, _, v in got.pending_writes] == [_as_stored(value)], slot


@pytest.mark.timeout(900)
@pytest.mark.postgres  # every backend, one after another, in one test
@pytest.mark.redis
@pytest.mark.parametrize("api", APIS)
async def test_hostile_arguments_fail_cleanly_and_alike_on_every_backend(
    api: str, tmp_path: Path
) -> None:
    table: dict[str, dict[tuple[str, str], str]] = {}
    for backend in ALL_BACKENDS:
        async with saver_for(backend, tmp_path) as saver:
            bystander = await make_bystander(saver)
            table[backend] = await _try_all(saver, api)
            assert await snapshot(saver, "bystander") == bystander, f"{backend}: bystander changed"
    memory = table["memory"]
    for (slot, name), result in memory.items():
        if name in ("NUL", "surrogate") and slot in ID_SLOTS:
            assert result == "InvalidConfigError", f"memory: {slot} with {name}: {result}"
        for backend in ALL_BACKENDS:
            got = table[backend][(slot, name)]
            if backend == "postgres" and name in LONG and slot in POSTGRES_KEY_SLOTS:
                assert got == "InvalidConfigError", f"postgres: {slot} with {name}: {got}"
            else:
                assert got == result, f"{slot} with {name}: memory {result}, {backend} {got}"
    _print_table(api, table)


def _print_table(api: str, table: dict[str, dict[tuple[str, str], str]]) -> None:
    """The input x slot x backend outcomes, for the record (shown with ``-s``)."""
    lines = [f"\n{api} API: slot | input | " + " | ".join(ALL_BACKENDS)]
    for slot, name in table["memory"]:
        cells = [table[b][(slot, name)] for b in ALL_BACKENDS]
        lines.append(f"{slot} | {name} | " + " | ".join(cells))
    print("\n".join(lines))


# -- random text in every id and name, blocking API, property-based ---------------------------

HOSTILE_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from("\x00\ud800\udfff\x01:{}*?[]%_'\"\\\n"),
        st.characters(codec=None),
    ),
    min_size=1,
    max_size=40,
)
TEXT_SLOTS = sorted(ID_SLOTS)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_random_text_in_any_id_is_stored_or_refused_cleanly(backend: str, tmp_path: Path) -> None:
    saver = make_saver(backend, tmp_path)
    saver.setup()
    use = SyncDriven(saver)
    asyncio.run(prepare(use))
    try:
        counter = iter(range(10**9))

        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(text=HOSTILE_TEXT, slot=st.sampled_from(TEXT_SLOTS))
        def check(text: str, slot: str) -> None:
            thread = f"h{next(counter)}"
            before = asyncio.run(raw_state(saver))
            try:
                asyncio.run(SLOTS[slot](use, text, thread))
            except UnifiedStoreError as exc:
                if "\x00" in text or any("\ud800" <= c <= "\udfff" for c in text):
                    assert isinstance(exc, InvalidConfigError), f"{slot}: {exc!r}"
                assert asyncio.run(raw_state(saver)) == before, f"{slot} {text!r}: half-written"
                return
            assert "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text), (
                f"{slot} accepted {text!r}"
            )
            figures.count(backend, figures.HOSTILE_INPUTS)

        check()
    finally:
        asyncio.run(drop_saver(saver))


HOSTILE_DATA = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.floats(), st.integers(min_value=-(2**80), max_value=2**80),
        HOSTILE_TEXT, st.binary(max_size=8),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(HOSTILE_TEXT, inner, max_size=3),
    max_leaves=8,
)
DATA_SLOTS = ("put metadata value", "put nested metadata value", "put metadata key",
              "list filter value", "put channel value", "put_writes value")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_random_data_in_metadata_filters_and_values_fails_only_cleanly(
    backend: str, tmp_path: Path
) -> None:
    """JSON-like data with NaN, infinities, ints past 64 bits, NUL, surrogates and bytes,
    anywhere in metadata, filters and values: stored, or refused with a library error
    and nothing written."""
    saver = make_saver(backend, tmp_path)
    saver.setup()
    use = SyncDriven(saver)
    asyncio.run(prepare(use))
    try:
        counter = iter(range(10**9))

        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(data=HOSTILE_DATA, slot=st.sampled_from(DATA_SLOTS))
        def check(data: Any, slot: str) -> None:
            if slot == "put metadata key" and not isinstance(data, (str, int, float, bool)):
                data = repr(data)
            before = asyncio.run(raw_state(saver))
            try:
                asyncio.run(SLOTS[slot](use, data, f"d{next(counter)}"))
            except UnifiedStoreError:
                assert asyncio.run(raw_state(saver)) == before, f"{slot} {data!r:.80}: half-written"
            figures.count(backend, figures.HOSTILE_INPUTS)

        check()
    finally:
        asyncio.run(drop_saver(saver))


# -- PostgreSQL: an id too long for its index ------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_postgres_id_too_long_for_the_index_names_it(api: str, tmp_path: Path) -> None:
    async with saver_for("postgres", tmp_path) as saver:
        use = api_of(saver, api)
        bystander = await make_bystander(saver)
        long_id = random.Random(3).randbytes(1500).hex()
        before = await raw_state(saver)
        cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("thread id", lambda: _put(use, long_id)),
            ("checkpoint id", lambda: _put(use, "t", checkpoint_id=long_id)),
            ("checkpoint namespace", lambda: _put(use, "t", ns=long_id)),
            ("task id", lambda: use.aput_writes(
                _conf(thread_id="bystander", checkpoint_ns="",
                      checkpoint_id=bystander[0][0]), [("a", 1)], long_id)),
        ]
        for what, attempt in cases:
            with pytest.raises(InvalidConfigError) as caught:
                await attempt()
            assert f"the {what} is too long" in str(caught.value) and "2704" in str(caught.value)
            assert await raw_state(saver) == before, f"{what}: something was written"
        assert await snapshot(saver, "bystander") == bystander


# -- reads of well-formed data of the wrong shape --------------------------------------------

SKELETONS: dict[str, Any] = {
    "a plain object": {"hello": "world"},
    "a list": [1, 2, 3],
    "no 'v'": {"ts": "2026-01-01T00:00:00+00:00", "versions_seen": {}},
    "no 'ts'": {"v": 4, "versions_seen": {}},
    "no 'versions_seen'": {"v": 4, "ts": "2026-01-01T00:00:00+00:00"},
    "'v' a string": {"v": "4", "ts": "2026-01-01T00:00:00+00:00", "versions_seen": {}},
    "versions_seen of ints": {"v": 4, "ts": "2026-01-01T00:00:00+00:00", "versions_seen": {"n": 1}},
    "channel_versions a list": {
        "v": 4, "ts": "2026-01-01T00:00:00+00:00", "versions_seen": {}, "channel_versions": [1],
    },
    "channel_versions of lists": {
        "v": 4, "ts": "2026-01-01T00:00:00+00:00", "versions_seen": {},
        "channel_versions": {"messages": [1]},
    },
    "updated_channels an int": {
        "v": 4, "ts": "2026-01-01T00:00:00+00:00", "versions_seen": {}, "updated_channels": 7,
    },
}
# Planted as the messages channel: readable as a generic channel, not as messages.
MESSAGE_SHAPES: dict[str, Any] = {
    "a list of ints": [1, 2, 3],
    "a plain object": {"hello": "world"},
    "a list holding a plain object": [{"hello": "world"}],
    "a string": "not messages",
}


def _graph(saver: UnifiedCheckpointSaver) -> Any:
    def reply(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"reply to {len(state['messages'])}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    return builder.compile(checkpointer=saver)


def _names_victim(exc: BaseException, what: str) -> None:
    assert isinstance(exc, CorruptDataError), f"{what}: {type(exc).__name__}: {exc}"
    assert "'victim'" in str(exc) and "checkpoint '" in str(exc), f"{what}: {exc}"


def _reads(saver: UnifiedCheckpointSaver, api: str) -> Iterator[tuple[str, Callable[[], Awaitable[Any]]]]:
    config = _conf(thread_id="victim")
    graph = _graph(saver)
    if api == "async":
        yield "get_tuple", lambda: saver.aget_tuple(config)
        yield "list", lambda: _list(saver, config)
        yield "list all", lambda: _list(saver, None)
        yield "graph.get_state", lambda: graph.aget_state(config)
        yield "load_state", lambda: saver.aload_state("victim")
        yield "history", lambda: saver.ahistory("victim")
    else:
        yield "get_tuple", lambda: asyncio.to_thread(saver.get_tuple, config)
        yield "list", lambda: asyncio.to_thread(lambda: list(saver.list(config)))
        yield "list all", lambda: asyncio.to_thread(lambda: list(saver.list(None)))
        yield "graph.get_state", lambda: asyncio.to_thread(graph.get_state, config)
        yield "load_state", lambda: asyncio.to_thread(saver.load_state, "victim")
        yield "history", lambda: asyncio.to_thread(saver.history, "victim")


async def _victim(saver: UnifiedCheckpointSaver) -> None:
    await _graph(saver).ainvoke(
        {"messages": [HumanMessage(content="hello " + "x" * 80)]}, _conf(thread_id="victim")
    )


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_wrong_shape_checkpoints_read_as_corrupt_data(
    backend: str, api: str, tmp_path: Path
) -> None:
    async with saver_for(backend, tmp_path) as saver:
        bystander = await make_bystander(saver)
        for shape, skeleton in SKELETONS.items():
            await _victim(saver)
            await raw.overwrite(saver, "victim", "checkpoint", ormsgpack.packb(skeleton), "msgpack")
            for read, call in _reads(saver, api):
                with pytest.raises(Exception) as caught:
                    await call()
                _names_victim(caught.value, f"{shape}, {read}")
                figures.count(backend, figures.HOSTILE_INPUTS)
            await saver.adelete_thread("victim")
        assert await snapshot(saver, "bystander") == bystander


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_wrong_shape_messages_read_as_corrupt_unified_state(
    backend: str, api: str, tmp_path: Path
) -> None:
    """A messages channel that is not messages is a valid generic channel for LangGraph
    (get_tuple and get_state return it as stored), but not a unified state."""
    async with saver_for(backend, tmp_path) as saver:
        for shape, planted in MESSAGE_SHAPES.items():
            await _victim(saver)
            await raw.overwrite(saver, "victim", "blob:messages", ormsgpack.packb(planted), "msgpack")
            for read, call in _reads(saver, api):
                if read in ("load_state", "history"):
                    with pytest.raises(Exception) as caught:
                        await call()
                    _names_victim(caught.value, f"{shape}, {read}")
                else:
                    await call()  # stored data of a generic shape reads back as stored
                figures.count(backend, figures.HOSTILE_INPUTS)
            tup = await saver.aget_tuple(_conf(thread_id="victim"))
            assert tup is not None and tup.checkpoint["channel_values"]["messages"] == planted
            await saver.adelete_thread("victim")
        # The framework channel and the timestamp, too.
        await _victim(saver)
        await saver.asave_state("victim", (await saver.aload_state("victim")))  # type: ignore[arg-type]
        await raw.overwrite(saver, "victim", "blob:__unified__", ormsgpack.packb([1]), "msgpack")
        with pytest.raises(CorruptDataError, match=r"'victim'.*__unified__"):
            await saver.aload_state("victim")


# -- Redis: the TTL ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ttl", [1e18, math.inf, -math.inf, math.nan, 0, -1, 1e300, 10**10 + 1, 2**64, True, "10"]
)
def test_redis_ttl_out_of_range_is_refused_at_construction(ttl: Any) -> None:
    from langgraph_unified_store import RedisSaver

    from ..support import REDIS_URL

    with pytest.raises(InvalidConfigError, match="ttl"):
        RedisSaver(REDIS_URL, ttl=ttl)


async def _pttls(saver: UnifiedCheckpointSaver, thread_id: str) -> list[int]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(saver.backend._url)  # type: ignore[attr-defined]
    try:
        base = saver.backend._base(thread_id)  # type: ignore[attr-defined]
        keys = [k async for k in client.scan_iter(match=base.replace("{", "\\{").replace("}", "\\}") + ":*")]
        return [await client.pttl(k) for k in keys]
    finally:
        await client.aclose()


@pytest.mark.parametrize("api", APIS)
async def test_redis_longest_ttl_works_and_a_bad_expiry_writes_nothing(api: str) -> None:
    from langgraph_unified_store import RedisSaver
    from langgraph_unified_store.backends.redis import MAX_TTL_SECONDS

    from ..support import REDIS_URL, unique

    saver = RedisSaver(REDIS_URL, prefix=unique("lus_test"), ttl=MAX_TTL_SECONDS)
    try:
        use = api_of(saver, api)
        config = await _put(use, "longest")
        ttls = await _pttls(saver, "longest")
        assert ttls and all(MAX_TTL_SECONDS * 1000 - 600_000 < t <= MAX_TTL_SECONDS * 1000 for t in ttls)
        # A ttl that got past validation (set behind the saver's back) must fail before
        # the script writes anything: no key of a new thread, nothing added to an old one.
        saver.backend.lifecycle = dataclasses.replace(saver.backend.lifecycle, ttl=10**15)
        before = await raw_state(saver)
        attempts: list[Callable[[], Awaitable[Any]]] = [
            lambda: _put(use, "never"),
            lambda: _put(use, "longest", parent=config["configurable"]["checkpoint_id"]),
            lambda: use.aput_writes(config, [("a", 5)], "task"),
            lambda: use.acopy_thread("longest", "copy"),
        ]
        for attempt in attempts:
            with pytest.raises(InvalidConfigError, match="ttl"):
                await attempt()
            after = await raw_state(saver)
            if attempt is attempts[-1]:
                # copy_thread sends the global thread index (a hint readers check against
                # the thread's own keys) in the same pipeline, before its script: only that
                # hint may name the target. No key of the target thread exists.
                after = [part for part in after if part != b"copy"]
            assert after == before, "an expiry failure left a half-written call"
        assert await _pttls(saver, "never") == [] and await _pttls(saver, "copy") == []
        assert await saver.alist_workflows() == ["longest"]
    finally:
        saver.backend.lifecycle = dataclasses.replace(saver.backend.lifecycle, ttl=1)
        await drop_saver(saver)


METADATA_SHAPES = {
    "step a string": b'{"source": "loop", "step": "x", "parents": {}}',
    "step true": b'{"source": "loop", "step": true, "parents": {}}',
    "step a float": b'{"source": "loop", "step": 1.5, "parents": {}}',
    "parents a list": b'{"source": "loop", "step": 1, "parents": [1]}',
    "parents of ints": b'{"source": "loop", "step": 1, "parents": {"": 5}}',
}


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_wrong_shape_metadata_reads_as_corrupt_data_and_is_refused_on_write(
    backend: str, api: str, tmp_path: Path
) -> None:
    """LangGraph adds to metadata's ``step`` and walks its ``parents``: of another type,
    they would surface as a TypeError inside get_state or invoke."""
    async with saver_for(backend, tmp_path) as saver:
        use = api_of(saver, api)
        for shape, planted in METADATA_SHAPES.items():
            await _victim(saver)
            await raw.overwrite(saver, "victim", "metadata", planted)
            reads = [*_reads(saver, api), ("graph.invoke", lambda: _graph(saver).ainvoke(
                {"messages": []}, _conf(thread_id="victim")))]
            for read, call in reads:
                with pytest.raises(Exception) as caught:
                    await call()
                _names_victim(caught.value, f"{shape}, {read}")
                figures.count(backend, figures.HOSTILE_INPUTS)
            await saver.adelete_thread("victim")
            before = await raw_state(saver)
            with pytest.raises(InvalidConfigError, match="metadata"):
                await _put(use, "victim", metadata=orjson.loads(planted))
            assert await raw_state(saver) == before
