"""One long-term memory shown to every framework: what AutoGen, LlamaIndex, CrewAI or a
LangGraph node writes, the others recall (metadata kept), on every store backend, with
and without an embedding index; clearing one scope leaves the others."""

from __future__ import annotations

import os

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypedDict

import asyncpg
import pytest
from autogen_core import Image
from autogen_core.memory import MemoryContent, MemoryMimeType
from autogen_core.model_context import UnboundedChatCompletionContext
from autogen_core.models import SystemMessage, UserMessage
from crewai.events.event_listener import event_listener
from crewai.memory.storage.backend import StorageBackend
from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory import Memory

from langgraph_unified_store import MissingExtraError
from langgraph_unified_store.adapters.autogen_memory import PROVENANCE_KEY, UnifiedAutoGenMemory
from langgraph_unified_store.adapters.crewai_memory import UnifiedMemoryStorage, crewai_memory
from langgraph_unified_store.adapters.llamaindex_memory import UnifiedMemoryBlock
from langgraph_unified_store.adapters.memory import (
    SharedMemory,
    hashed_embedding,
    memory_namespace,
    memory_value,
    text_score,
)
from langgraph_unified_store.registry import backend_named

from .support import ALL_BACKENDS, POSTGRES_DSN, SERVER_URLS, unique

event_listener.formatter.verbose = False  # CrewAI prints a panel for every memory event
DIMS = 32
KINDS = ["indexed", "plain"]


@asynccontextmanager
async def store_for(backend: str, tmp_path: Path, indexed: bool) -> AsyncIterator[Any]:
    """A fresh store of ``backend`` from the registry, on its own file, schema or key
    prefix; removed from its server afterwards."""
    entry = backend_named(backend)
    options: dict[str, Any] = {}
    if indexed:
        options["index"] = {"dims": DIMS, "embed": hashed_embedding(DIMS), "fields": ["text"]}
    location = unique("lus_mem")
    store_class = entry.store_class()
    if entry.namespace_option is not None:
        store = store_class(SERVER_URLS[backend], **{entry.namespace_option: location}, **options)
    elif entry.conn_of_url is not None:
        store = store_class(str(tmp_path / f"{location}.sqlite"), **options)
    else:
        store = store_class(**options)
    await store.asetup()
    try:
        yield store
    finally:
        if backend == "redis":
            await store.backend.drop_all()
        await store.aclose()
        if backend == "postgres":
            admin = await asyncpg.connect(POSTGRES_DSN)
            try:
                await admin.execute(f'DROP SCHEMA IF EXISTS "{location}" CASCADE')
            finally:
                await admin.close()


class RecallState(TypedDict, total=False):
    namespace: tuple[str, ...]
    question: str
    found: list[dict[str, Any]]


async def recall_node(state: RecallState) -> dict[str, Any]:
    found = await get_store().asearch(state["namespace"], query=state["question"], limit=20)
    return {"found": [dict(item.value, namespace=item.namespace) for item in found]}


async def langgraph_recall(store: BaseStore, namespace: tuple[str, ...], question: str) -> list[dict[str, Any]]:
    """What a LangGraph node sees through ``get_store()``."""
    builder = StateGraph(RecallState)
    builder.add_node("recall", recall_node)
    builder.add_edge(START, "recall")
    builder.add_edge("recall", END)
    result = await builder.compile(store=store).ainvoke({"namespace": namespace, "question": question})
    found: list[dict[str, Any]] = result["found"]
    return found


def by_text(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {value["text"]: value for value in found}


def crewai_recall(store: BaseStore, namespace: tuple[str, ...], query: str) -> dict[str, Any]:
    memory = crewai_memory(store, namespace, llm="gpt-4o-mini")
    try:
        return {m.record.content: m.record for m in memory.recall(query, depth="shallow", limit=10)}
    finally:
        memory.close()


async def llamaindex_recall(store: BaseStore, namespace: tuple[str, ...], question: str) -> str:
    block = UnifiedMemoryBlock(store=store, namespace=namespace)
    memory = Memory.from_defaults(
        session_id=unique("chat"), memory_blocks=[block], tokenizer_fn=lambda text: text.split()
    )
    messages = await memory.aget(input=question)
    return next((m.content or "" for m in messages if m.role.value == "system"), "")


# -- each framework writes, the others recall ------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_autogen_writes_the_others_recall(backend: str, kind: str, tmp_path: Path) -> None:
    fact = "The traveller is vegetarian and avoids peanuts."
    async with store_for(backend, tmp_path, kind == "indexed") as store:
        scope = memory_namespace(unique("user"))
        memory = UnifiedAutoGenMemory(store, scope, created_by="budgeter")
        await memory.add(
            MemoryContent(content=fact, mime_type=MemoryMimeType.TEXT, metadata={"source": "form", "n": 1})
        )
        await memory.add(
            MemoryContent(content={"city": "Lisbon", "days": 3}, mime_type=MemoryMimeType.JSON)
        )

        own = (await memory.query("vegetarian traveller")).results
        assert own[0].content == fact
        assert own[0].metadata is not None and own[0].metadata["source"] == "form"
        assert own[0].metadata[PROVENANCE_KEY]["framework"] == "autogen"
        as_json = [r for r in (await memory.query("Lisbon city days")).results if isinstance(r.content, dict)]
        assert as_json[0].content == {"city": "Lisbon", "days": 3}
        assert as_json[0].mime_type == MemoryMimeType.JSON.value

        assert fact in await llamaindex_recall(store, scope, "Is the traveller vegetarian?")

        records = await asyncio.to_thread(crewai_recall, store, scope, "vegetarian traveller peanuts")
        assert records[fact].metadata == {"source": "form", "n": 1}
        assert records[fact].source == "budgeter"
        assert records[fact].scope == "/"

        seen = by_text(await langgraph_recall(store, scope, "vegetarian"))
        value = seen[fact]
        assert value["framework"] == "autogen"
        assert value["kind"] == "fact"
        assert value["metadata"] == {"source": "form", "n": 1}
        assert value["created_by"] == "budgeter"
        assert value["autogen"] == {"mime_type": "text/plain"}
        assert value["id"] and tuple(value["namespace"]) == scope


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_llamaindex_writes_the_others_recall(backend: str, kind: str, tmp_path: Path) -> None:
    fact = "The traveller prefers a window seat on flights."
    async with store_for(backend, tmp_path, kind == "indexed") as store:
        scope = memory_namespace(unique("user"))
        block = UnifiedMemoryBlock(store=store, namespace=scope)
        await block.aput(
            [
                ChatMessage(role="user", content=fact, additional_kwargs={"topic": "flights"}),
                ChatMessage(role="assistant", content=""),  # no text: nothing to remember
            ],
            session_id="chat-1",
        )

        results = (await UnifiedAutoGenMemory(store, scope).query("window seat flights")).results
        assert results[0].content == fact
        assert results[0].metadata is not None
        assert results[0].metadata["topic"] == "flights"
        assert results[0].metadata[PROVENANCE_KEY]["framework"] == "llamaindex"
        assert results[0].metadata[PROVENANCE_KEY]["created_by"] == "chat-1"

        records = await asyncio.to_thread(crewai_recall, store, scope, "window seat")
        assert records[fact].metadata == {"topic": "flights"}

        seen = by_text(await langgraph_recall(store, scope, "window seat"))
        assert list(seen) == [fact]
        assert seen[fact]["framework"] == "llamaindex"
        assert seen[fact]["kind"] == "message"
        assert seen[fact]["llamaindex"] == {"role": "user"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_crewai_writes_the_others_recall(backend: str, kind: str, tmp_path: Path) -> None:
    fact = "Day 2 in Sintra needs a rain jacket."
    async with store_for(backend, tmp_path, kind == "indexed") as store:
        scope = memory_namespace(unique("user"))

        def remember() -> Any:
            memory = crewai_memory(store, scope, llm="gpt-4o-mini")
            try:
                record = memory.remember(
                    fact, scope="/trip/packing", categories=["packing"], importance=0.8,
                    metadata={"day": 2}, source="planner",
                )
                return record, memory.list_scopes("/"), memory.info("/trip"), memory.list_records()
            finally:
                memory.close()

        record, scopes, info, listed = await asyncio.to_thread(remember)
        assert scopes == ["/trip"]
        assert info.record_count == 1 and info.categories == ["packing"]
        assert info.child_scopes == ["/trip/packing"]
        assert [r.id for r in listed] == [record.id]

        results = (await UnifiedAutoGenMemory(store, scope).query("rain jacket Sintra")).results
        assert results[0].content == fact
        assert results[0].metadata is not None and results[0].metadata["day"] == 2
        assert results[0].metadata[PROVENANCE_KEY]["namespace"] == [*scope, "trip", "packing"]

        assert fact in await llamaindex_recall(store, scope, "Do I need a rain jacket in Sintra?")

        seen = by_text(await langgraph_recall(store, scope, "rain jacket"))
        value = seen[fact]
        assert value["framework"] == "crewai"
        assert value["metadata"] == {"day": 2}
        assert value["created_by"] == "planner"
        assert value["id"] == record.id
        assert value["crewai"]["categories"] == ["packing"]
        assert value["crewai"]["importance"] == 0.8
        assert tuple(value["namespace"]) == (*scope, "trip", "packing")

        storage = UnifiedMemoryStorage(store, scope)
        again = await asyncio.to_thread(storage.get_record, record.id)
        assert again is not None
        assert (again.content, again.scope, again.categories, again.metadata, again.source) == (
            fact, "/trip/packing", ["packing"], {"day": 2}, "planner"
        )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_a_langgraph_node_writes_the_others_recall(backend: str, kind: str, tmp_path: Path) -> None:
    fact = "The hotel is in Alfama, near the tram 28 stop."
    scope = memory_namespace(unique("user"))

    async def write_node(state: RecallState) -> dict[str, Any]:
        value = memory_value(
            fact, key="hotel", framework="langgraph", metadata={"booked": True}, created_by="graph"
        )
        await get_store().aput(scope, "hotel", value, index=["text"])
        return {}

    async with store_for(backend, tmp_path, kind == "indexed") as store:
        builder = StateGraph(RecallState)
        builder.add_node("write", write_node)
        builder.add_edge(START, "write")
        builder.add_edge("write", END)
        await builder.compile(store=store).ainvoke({"question": ""})

        results = (await UnifiedAutoGenMemory(store, scope).query("hotel tram Alfama")).results
        assert results[0].content == fact
        assert results[0].metadata is not None and results[0].metadata["booked"] is True
        assert fact in await llamaindex_recall(store, scope, "Where is the hotel?")
        records = await asyncio.to_thread(crewai_recall, store, scope, "hotel Alfama")
        assert records[fact].metadata == {"booked": True}
        assert records[fact].id == "hotel"


# -- clearing one scope ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_clear_clears_only_that_scope(backend: str, tmp_path: Path) -> None:
    async with store_for(backend, tmp_path, indexed=False) as store:
        alice, bob = memory_namespace(unique("alice")), memory_namespace(unique("bob"))
        for scope in (alice, bob):
            await UnifiedAutoGenMemory(store, scope).add(MemoryContent(content="likes tea", mime_type="text/plain"))
            await UnifiedMemoryBlock(store=store, namespace=scope).aput([ChatMessage(role="user", content="likes jazz")])
            await SharedMemory(store, (*scope, "trip"), framework="langgraph").aadd("likes trains")

        crew = UnifiedMemoryStorage(store, alice)
        await asyncio.to_thread(crew.reset, "/trip")  # CrewAI: one sub-scope only
        assert sorted(m.text for m in await SharedMemory(store, alice, framework="x").aitems()) == [
            "likes jazz", "likes tea"
        ]

        await UnifiedAutoGenMemory(store, alice).clear()  # every framework's memories of alice
        assert await SharedMemory(store, alice, framework="x").aitems() == []
        assert (await UnifiedAutoGenMemory(store, alice).query("likes")).results == []
        left = sorted(m.text for m in await SharedMemory(store, bob, framework="x").aitems())
        assert left == ["likes jazz", "likes tea", "likes trains"]

        assert await UnifiedMemoryBlock(store=store, namespace=(*bob, "trip")).aclear() == 1
        assert len(await SharedMemory(store, bob, framework="x").aitems()) == 2
        assert await asyncio.to_thread(UnifiedMemoryStorage(store, bob).delete, None, None, None, None, None) == 2
        assert await SharedMemory(store, bob, framework="x").aitems() == []


# -- what else each adapter promises ---------------------------------------------------------


async def test_update_context_adds_the_relevant_memories_as_a_system_message(tmp_path: Path) -> None:
    async with store_for("memory", tmp_path, indexed=False) as store:
        scope = memory_namespace(unique("user"))
        memory = UnifiedAutoGenMemory(store, scope, k=1)
        await memory.add(MemoryContent(content="The budget is 420 EUR", mime_type="text/plain"))
        await memory.add(MemoryContent(content="The traveller is vegetarian", mime_type="text/plain"))
        context = UnboundedChatCompletionContext()
        await context.add_message(UserMessage(content="What is the budget?", source="user"))
        result = await memory.update_context(context)
        assert [r.content for r in result.memories.results] == ["The budget is 420 EUR"]
        messages = await context.get_messages()
        assert isinstance(messages[-1], SystemMessage)
        assert "1. The budget is 420 EUR" in messages[-1].content

        empty = UnboundedChatCompletionContext()
        assert (await UnifiedAutoGenMemory(store, memory_namespace(unique("nobody"))).update_context(empty)).memories.results == []
        assert await empty.get_messages() == []


async def test_autogen_refuses_content_with_no_text(tmp_path: Path) -> None:
    pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    async with store_for("memory", tmp_path, indexed=False) as store:
        memory = UnifiedAutoGenMemory(store, memory_namespace("u"))
        with pytest.raises(ValueError, match="an image"):
            await memory.add(MemoryContent(content=Image.from_base64(pixel), mime_type=MemoryMimeType.IMAGE))
        with pytest.raises(ValueError, match="bytes"):
            await memory.add(MemoryContent(content=b"\x00", mime_type=MemoryMimeType.BINARY))
        assert (await memory.query("")).results == []


async def test_crewai_private_memories_stay_out_of_other_frameworks(tmp_path: Path) -> None:
    async with store_for("memory", tmp_path, indexed=True) as store:
        scope = memory_namespace(unique("user"))

        def remember() -> list[str]:
            memory = crewai_memory(store, scope, llm="gpt-4o-mini")
            try:
                memory.remember("secret diary entry", scope="/", categories=[], importance=0.5, source="me", private=True)
                mine = memory.recall("secret diary", depth="shallow", source="me")
                others = memory.recall("secret diary", depth="shallow", source="you")
                return [m.record.content for m in mine] + ["|"] + [m.record.content for m in others]
            finally:
                memory.close()

        assert await asyncio.to_thread(remember) == ["secret diary entry", "|"]
        assert (await UnifiedAutoGenMemory(store, scope).query("secret diary")).results == []
        assert await UnifiedMemoryBlock(store=store, namespace=scope).aget(
            [ChatMessage(role="user", content="secret diary")]
        ) == ""


async def test_crewai_storage_works_from_inside_an_event_loop(tmp_path: Path) -> None:
    """CrewAI's async methods call the sync storage on the loop; the storage hands the
    blocking store calls to a worker thread."""
    async with store_for("sqlite", tmp_path, indexed=True) as store:
        scope = memory_namespace(unique("user"))
        await UnifiedAutoGenMemory(store, scope).add(MemoryContent(content="likes trams", mime_type="text/plain"))
        memory = crewai_memory(store, scope, llm="gpt-4o-mini")
        try:
            matches = await memory.arecall("trams", depth="shallow")
            assert [m.record.content for m in matches] == ["likes trams"]
            storage = memory._storage
            assert isinstance(storage, StorageBackend)  # CrewAI's protocol, checked at runtime
            assert isinstance(storage, UnifiedMemoryStorage)
            vector = hashed_embedding(7)(["trams"])[0]  # not made by storage.embedder
            with pytest.raises(ValueError, match=r"embedder=storage\.embedder"):
                await storage.asearch(vector)
            own = storage._embed(["trams"])[0]  # same embedding, not remembered: ranked here
            ranked = await storage.asearch(own)
            assert [r.content for r, _ in ranked] == ["likes trams"]
            assert await storage.adelete(record_ids=[ranked[0][0].id]) == 1
        finally:
            memory.close()


def test_text_score_ranks_word_overlap() -> None:
    assert text_score("budget", "The budget is 420 EUR") > text_score("budget", "Nothing here")
    assert text_score("", "anything") == 0.0
    assert text_score("Same words", "same WORDS") == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("module", "extra", "framework"),
    [
        ("autogen_memory", "autogen", "autogen_core"),
        ("llamaindex_memory", "llamaindex", "llama_index"),
        ("crewai_memory", "crewai", "crewai"),
    ],
)
def test_missing_framework_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, extra: str, framework: str
) -> None:
    for name in list(sys.modules):
        if name == framework or name.startswith(framework + "."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, f"langgraph_unified_store.adapters.{module}")
    with pytest.raises(MissingExtraError, match=rf"langgraph-unified-store\[{extra}\]"):
        importlib.import_module(f"langgraph_unified_store.adapters.{module}")
    importlib.import_module("langgraph_unified_store.adapters.memory")  # needs no framework
