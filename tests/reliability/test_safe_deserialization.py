"""Safe deserialization by default, without breaking graphs.

Payloads an attacker with write access to the database would plant (LangGraph msgpack
extension records naming ``os.system``, ``subprocess.Popen``, ``builtins.eval``,
``functools.partial``, modules with import side effects; a pickle; a LangChain JSON
"constructor" object) are written straight into each backend's storage: into a channel
blob, a pending write, a list item and the checkpoint record itself. Reading them must
run nothing (the marker file never appears, no module gets imported) and raise
``UnsafeDeserializationError`` naming the type. Meanwhile a graph whose state holds the
user's own pydantic model, dataclass, enum and NamedTuple works unchanged with no
environment variable set, and ``with_allowlist`` lets a user-approved type through.
"""

from __future__ import annotations

import asyncio
import operator
import os
import pickle
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

import orjson
import ormsgpack
import pytest
from langgraph.checkpoint.serde.jsonplus import (
    EXT_CONSTRUCTOR_KW_ARGS,
    EXT_CONSTRUCTOR_POS_ARGS,
    EXT_CONSTRUCTOR_SINGLE_ARG,
    EXT_METHOD_SINGLE_ARG,
    EXT_PYDANTIC_V2,
)
from langgraph.graph import END, START, StateGraph

from langgraph_unified_store import UnifiedStoreError, UnsafeDeserializationError
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import ALL_BACKENDS
from . import figures, raw
from .hostile import (
    make_bystander,
    put_state,
    reader_of,
    sandboxed_saver,
    snapshot,
    thread_tuples,
)
from .private_servers import PrivateRedis
from .user_types import Color, Pair, Point, Quacks, UserProfile

# Modules whose mere import has a visible effect; a safe reader never imports them.
SIDE_EFFECT_MODULES = ("antigravity", "this")


def _ext(code: int, payload: Any) -> bytes:
    return ormsgpack.packb(ormsgpack.Ext(code, ormsgpack.packb(payload)))


class _PickleBomb:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


def payloads(marker: Path) -> list[tuple[str, str, bytes, str]]:
    """(label, serde type, stored bytes, what the error must name)."""
    touch = f"touch {marker}"
    nested = ormsgpack.packb(
        [{"innocent": [1, 2, ormsgpack.Ext(
            EXT_CONSTRUCTOR_POS_ARGS, ormsgpack.packb(("os", "system", [touch]))
        )]}]
    )
    return [
        ("os.system pos", "msgpack", _ext(EXT_CONSTRUCTOR_POS_ARGS, ("os", "system", [touch])), "os.system"),
        ("os.system single", "msgpack", _ext(EXT_CONSTRUCTOR_SINGLE_ARG, ("os", "system", touch)), "os.system"),
        ("posix.system", "msgpack", _ext(EXT_CONSTRUCTOR_POS_ARGS, ("posix", "system", [touch])), "posix.system"),
        ("subprocess.Popen pos", "msgpack",
         _ext(EXT_CONSTRUCTOR_POS_ARGS, ("subprocess", "Popen", [["touch", str(marker)]])), "subprocess.Popen"),
        ("subprocess.Popen kw", "msgpack",
         _ext(EXT_CONSTRUCTOR_KW_ARGS, ("subprocess", "Popen", {"args": ["touch", str(marker)]})),
         "subprocess.Popen"),
        ("subprocess.Popen as model", "msgpack",
         _ext(EXT_PYDANTIC_V2, ("subprocess", "Popen", {"args": ["touch", str(marker)]}, "x")),
         "subprocess.Popen"),
        ("builtins.eval", "msgpack",
         _ext(EXT_CONSTRUCTOR_POS_ARGS, ("builtins", "eval", [f"__import__('os').system('{touch}')"])),
         "builtins.eval"),
        ("builtins.exec", "msgpack",
         _ext(EXT_CONSTRUCTOR_POS_ARGS, ("builtins", "exec", [f"import os; os.system('{touch}')"])),
         "builtins.exec"),
        ("functools.partial", "msgpack",
         _ext(EXT_CONSTRUCTOR_POS_ARGS, ("functools", "partial", ["print", touch])), "functools.partial"),
        ("method call", "msgpack",
         _ext(EXT_METHOD_SINGLE_ARG, ("os", "system", touch, "__call__")), "os.system"),
        ("import side effect", "msgpack",
         _ext(EXT_CONSTRUCTOR_POS_ARGS, ("antigravity", "fly", [])), "antigravity.fly"),
        ("import side effect 2", "msgpack", _ext(EXT_CONSTRUCTOR_SINGLE_ARG, ("this", "s", "")), "this.s"),
        ("nested deep", "msgpack", nested, "os.system"),
        ("pickle", "pickle", pickle.dumps(_PickleBomb(touch)), "unpickle"),
        ("langchain json constructor", "json",
         orjson.dumps({"lc": 1, "type": "constructor", "id": ["subprocess", "Popen"],
                       "kwargs": {"args": ["touch", str(marker)]}}), "subprocess.Popen"),
        ("langchain json os.system", "json",
         orjson.dumps({"lc": 2, "type": "constructor", "id": ["os", "system"],
                       "kwargs": {"command": touch}}), "os.system"),
    ]


LOCATIONS = ("blob:messages", "write:messages", "item", "checkpoint")



async def _plant(
    saver: UnifiedCheckpointSaver, thread_id: str, location: str, type_: str, data: bytes
) -> Any:
    config = await put_state(
        saver, thread_id,
        {"messages": [{"content": f"element {i} " + "z" * 80} for i in range(3)], "n": 1},
    )
    await saver.aput_writes(config, [("messages", [{"content": "w" * 100}])], "task-1")
    # An attacker does not know the key: plants go in unencrypted, and an encrypted
    # saver must refuse them (test_encryption_binding checks it says so).
    await raw.overwrite(saver, thread_id, location, data, type_)
    return config


async def _reads(
    saver: UnifiedCheckpointSaver, config: Any, thread_id: str, **options: Any
) -> list[Any]:
    """Each way of reading the thread, by a reader with nothing cached (as a process
    starting later would): the value read, or the exception raised."""
    outcomes: list[Any] = []
    async with reader_of(saver, **options) as reader:
        for read in (reader.aget_tuple(config), thread_tuples(reader, thread_id)):
            try:
                outcomes.append(await read)
            except Exception as exc:
                outcomes.append(exc)
    return outcomes


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("location", LOCATIONS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_planted_payloads_run_nothing(
    backend: str, location: str, encrypted: bool, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    marker = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    options = {"encryption_key": "correct horse battery staple"} if encrypted else {}
    async with sandboxed_saver(backend, tmp_path, sandbox_redis, **options) as saver:
        before = await make_bystander(saver)
        for label, type_, data, _names in payloads(marker):
            thread_id = f"victim-{label}"
            config = await _plant(saver, thread_id, location, type_, data)
            for outcome in await _reads(saver, config, thread_id, **options):
                assert not marker.exists(), f"{label} in {location} RAN CODE"
                for module in SIDE_EFFECT_MODULES:
                    assert module not in sys.modules, f"{label} in {location} imported {module}"
                if isinstance(outcome, Exception):
                    # Refused: by the library, on purpose, naming the thread.
                    assert isinstance(outcome, UnifiedStoreError), f"{label}: {outcome!r}"
                    assert thread_id in str(outcome), f"{label}: {outcome}"
                else:
                    # Only plain JSON may come back, and then only as inert data.
                    assert type_ == "json", f"{label} in {location} was read without an error"
            figures.count(backend, figures.PAYLOADS_REFUSED)
        assert await snapshot(saver, "bystander") == before


def _kind_cases() -> list[Any]:
    return [
        pytest.param(backend, kind, id=f"{backend}-{kind}")
        for backend in ALL_BACKENDS
        for kind in ("msgpack", "pickle", "json")
    ]


@pytest.mark.parametrize(("backend", "kind"), _kind_cases())
async def test_planted_payloads_are_refused_naming_the_type(
    backend: str, kind: str, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    marker = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    async with sandboxed_saver(backend, tmp_path, sandbox_redis) as saver:
        for location in LOCATIONS:
            for label, type_, data, names in payloads(marker):
                if type_ != kind:
                    continue
                thread_id = f"victim-{location}-{label}"
                config = await _plant(saver, thread_id, location, type_, data)
                for outcome in await _reads(saver, config, thread_id):
                    assert isinstance(outcome, UnsafeDeserializationError), (
                        f"{label} in {location}: {outcome!r:.300}"
                    )
                    assert names in str(outcome), f"{label}: error does not name {names}: {outcome}"
                    assert thread_id in str(outcome), f"{label}: error does not name the thread"
        assert not marker.exists()


# -- the user's own types go through a real graph untouched ------------------------------


class UserState(TypedDict):
    profile: UserProfile
    point: Point
    color: Color
    pair: Pair
    history: Annotated[list[Any], operator.add]
    visits: int


def _visit(state: UserState) -> dict[str, Any]:
    # Every value arrives as the user's own type, rebuilt from the checkpoint.
    assert isinstance(state["profile"], UserProfile), type(state["profile"])
    assert isinstance(state["point"], Point), type(state["point"])
    assert isinstance(state["color"], Color), type(state["color"])
    assert isinstance(state["pair"], Pair), type(state["pair"])
    assert all(isinstance(h, (Point, Pair, Color, UserProfile)) for h in state["history"])
    visits = state["visits"] + 1
    return {
        "profile": UserProfile(name=state["profile"].name, tags=[*state["profile"].tags, f"v{visits}"]),
        "point": Point(state["point"].x + 1, state["point"].y),
        "color": Color.GREEN if state["color"] is Color.RED else Color.RED,
        "pair": Pair(state["pair"].right, state["pair"].left + visits),
        "history": [Point(visits, visits), Pair(visits, -visits), Color.RED, UserProfile(name="h")],
        "visits": visits,
    }


def _graph(saver: UnifiedCheckpointSaver) -> Any:
    builder = StateGraph(UserState)
    builder.add_node("visit", _visit)
    builder.add_edge(START, "visit")
    builder.add_edge("visit", END)
    return builder.compile(checkpointer=saver)


def _first_input() -> dict[str, Any]:
    return {
        "profile": UserProfile(name="ada", tags=["a"]),
        "point": Point(0.5, 2.0),
        "color": Color.RED,
        "pair": Pair(1, 2),
        "history": [],
        "visits": 0,
    }


async def test_user_types_work_through_a_graph_unchanged(
    saver: UnifiedCheckpointSaver, backend_name: str
) -> None:
    assert "LANGGRAPH_STRICT_MSGPACK" not in os.environ
    graph = _graph(saver)
    sync_config = {"configurable": {"thread_id": "user-types-sync"}}
    async_config = {"configurable": {"thread_id": "user-types-async"}}
    await asyncio.to_thread(graph.invoke, _first_input(), sync_config)
    await graph.ainvoke(_first_input(), async_config)
    # A second run resumes from the stored checkpoint: every value is read back.
    second = await asyncio.to_thread(graph.invoke, {"visits": 1}, sync_config)
    again = await graph.ainvoke({"visits": 1}, async_config)
    for result in (second, again):
        assert result["profile"] == UserProfile(name="ada", tags=["a", "v1", "v2"])
        assert result["point"] == Point(2.5, 2.0)
        assert result["color"] is Color.RED
        assert result["pair"] == Pair(2, 4)
        assert result["history"] == [
            Point(1, 1), Pair(1, -1), Color.RED, UserProfile(name="h"),
            Point(2, 2), Pair(2, -2), Color.RED, UserProfile(name="h"),
        ]
    # A fresh saver object on the same storage reads the same state back.
    state = await _graph(saver).aget_state(async_config)
    assert state.values["profile"] == again["profile"]
    assert isinstance(state.values["pair"], Pair)
    history = [s async for s in _graph(saver).aget_state_history(async_config)]
    assert len(history) >= 4


async def test_with_allowlist_lets_an_approved_type_through(
    saver: UnifiedCheckpointSaver, backend_name: str
) -> None:
    config = await _put_quacks(saver)
    with pytest.raises(UnifiedStoreError):
        await saver.aget_tuple(config)
    approved = saver.with_allowlist([(Quacks.__module__, "Quacks")])
    got = await approved.aget_tuple(config)
    assert got is not None
    assert got.checkpoint["channel_values"]["q"] == Quacks("donald")
    assert got.checkpoint["channel_values"]["qs"] == [Quacks(f"q{i}" * 40) for i in range(3)]
    # The original saver is unchanged: approval is per saver, never global.
    with pytest.raises(UnifiedStoreError):
        await saver.aget_tuple(config)
    figures.count(backend_name, figures.PAYLOADS_REFUSED)


async def test_refusing_a_user_type_names_it_and_the_way_out(saver: UnifiedCheckpointSaver) -> None:
    config = await _put_quacks(saver)
    with pytest.raises(UnsafeDeserializationError) as caught:
        await saver.aget_tuple(config)
    assert "Quacks" in str(caught.value) and "with_allowlist" in str(caught.value)


async def _put_quacks(saver: UnifiedCheckpointSaver) -> Any:
    return await put_state(
        saver, "quacks", {"q": Quacks("donald"), "qs": [Quacks(f"q{i}" * 40) for i in range(3)]}
    )
