"""LlamaIndex chat stores, Memory and workflow Context on every backend, offline."""

from __future__ import annotations

import asyncio
import importlib
import sys
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    ImageBlock,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.memory import ChatMemoryBuffer, Memory
from llama_index.core.storage.chat_store.base_db import MessageStatus
from pydantic import BaseModel
from workflows import Context, Workflow, step
from workflows.events import StartEvent, StopEvent

from langgraph_unified_store import MissingExtraError, ToolCall, UnifiedWorkflowState
from langgraph_unified_store.adapters._common import framework_metadata
from langgraph_unified_store.adapters.llamaindex import (
    LlamaIndexContextStore,
    UnifiedChatStore,
    UnifiedDBChatStore,
    chat_message_from_unified,
    unified_from_chat_message,
)
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from .support import unique


def words(text: str) -> list[str]:
    """An offline tokenizer for Memory."""
    return text.split()


def conversation() -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Weather in Rome?", additional_kwargs={"name": "ana"}),
        ChatMessage(
            role="assistant",
            blocks=[ToolCallBlock(tool_call_id="t1", tool_name="weather", tool_kwargs={"city": "Rome"})],
        ),
        ChatMessage(role="tool", content="25 C", additional_kwargs={"tool_call_id": "t1", "name": "weather"}),
        ChatMessage(role="assistant", content="25 C."),
    ]


def odd_messages() -> list[ChatMessage]:
    """Shapes the unified schema has no slot for: kept whole and given back."""
    return [
        ChatMessage(role="developer", content="house rules"),
        ChatMessage(role="chatbot", content="hi"),
        ChatMessage(
            role="assistant",
            blocks=[ThinkingBlock(content="hmm"), TextBlock(text="answer")],
            additional_kwargs={"logprobs": [0.1]},
        ),
        ChatMessage(role="user", blocks=[TextBlock(text="see"), ImageBlock(url="https://example.invalid/a.png")]),
        ChatMessage(role="user", blocks=[TextBlock(text="a"), TextBlock(text="b")]),
        ChatMessage(role="assistant", blocks=[]),
    ]


def dumps(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in messages]


def seeded_state(workflow_id: str) -> UnifiedWorkflowState:
    """A thread as LangGraph would leave it: ids and LangChain metadata on messages."""
    state = UnifiedWorkflowState()
    state.metadata.workflow_id = workflow_id
    state.add_message("user", "Plan Rome", id="lg-1")
    state.add_message(
        "assistant",
        "Sure",
        id="lg-2",
        metadata={"langchain": {"response_metadata": {"model": "fake"}}},
    )
    state.update_context(city="Rome", days=2)
    return state


# -- message mapping (no backend) ----------------------------------------------------------


def test_conversation_maps_to_unified_fields() -> None:
    unified = [unified_from_chat_message(m) for m in conversation()]
    assert [m.role for m in unified] == ["system", "user", "assistant", "tool", "assistant"]
    assert unified[1].name == "ana"
    assert unified[2].tool_calls == [ToolCall(id="t1", name="weather", arguments={"city": "Rome"})]
    assert (unified[3].tool_call_id, unified[3].name) == ("t1", "weather")
    assert all(not m.metadata for m in unified), "these shapes need no raw copy"
    assert dumps([chat_message_from_unified(m) for m in unified]) == dumps(conversation())


def test_unexpressible_messages_are_kept_and_restored() -> None:
    unified = [unified_from_chat_message(m) for m in odd_messages()]
    assert [m.role for m in unified] == ["system", "assistant", "assistant", "user", "user", "assistant"]
    kept_raw = [i for i, m in enumerate(unified) if "raw" in m.metadata.get("llamaindex", {})]
    assert kept_raw == [0, 1, 2, 5], "roles, thinking blocks, kwargs and empty blocks need it"
    assert unified[2].content == [{"type": "text", "text": "answer"}]
    assert unified[3].content == [
        {"type": "text", "text": "see"},
        {"type": "image", "url": "https://example.invalid/a.png"},
    ]
    assert dumps([chat_message_from_unified(m) for m in unified]) == dumps(odd_messages())


# -- BaseChatStore on every backend --------------------------------------------------------


async def test_chat_store_async_operations(saver: UnifiedCheckpointSaver) -> None:
    store = UnifiedChatStore(saver)
    key = unique("chat")
    await store.aset_messages(key, conversation())
    assert dumps(await store.aget_messages(key)) == dumps(conversation())
    await store.async_add_message(key, ChatMessage(role="user", content="thanks"))
    assert len(await store.aget_messages(key)) == 6
    removed = await store.adelete_message(key, 0)
    assert removed is not None and removed.content == "Be brief."
    last = await store.adelete_last_message(key)
    assert last is not None and last.content == "thanks"
    assert await store.adelete_message(key, 99) is None
    assert await store.aget_keys() == [key]
    deleted = await store.adelete_messages(key)
    assert deleted is not None and len(deleted) == 4
    assert await store.aget_messages(key) == []
    history = await saver.ahistory(key)
    assert {h.metadata.framework for h in history} == {"llamaindex"}


async def test_chat_store_blocking_operations(saver: UnifiedCheckpointSaver) -> None:
    store = UnifiedChatStore(saver)
    key = unique("chat")

    def work() -> list[ChatMessage]:
        store.set_messages(key, odd_messages())
        store.add_message(key, ChatMessage(role="user", content="more"))
        store.delete_last_message(key)
        assert store.get_keys() == [key]
        return store.get_messages(key)

    assert dumps(await asyncio.to_thread(work)) == dumps(odd_messages())


async def test_unknown_key_reads_empty_and_writes_nothing(saver: UnifiedCheckpointSaver) -> None:
    store = UnifiedChatStore(saver)
    key = unique("missing")
    assert await store.aget_messages(key) == []
    assert await store.adelete_messages(key) is None
    assert await store.adelete_last_message(key) is None
    assert await asyncio.to_thread(store.delete_message, key, 0) is None
    db = UnifiedDBChatStore(saver)
    assert await db.get_messages(key) == []
    assert await db.count_messages(key) == 0
    await db.delete_messages(key)
    assert await db.archive_oldest_messages(key, 3) == []
    assert await saver.alist_workflows() == []


async def test_chat_store_keeps_langgraph_ids(saver: UnifiedCheckpointSaver) -> None:
    workflow_id = unique("wf")
    seeded = seeded_state(workflow_id)
    await saver.asave_state(workflow_id, seeded, framework="langgraph")
    memory = ChatMemoryBuffer.from_defaults(
        chat_store=UnifiedChatStore(saver), chat_store_key=workflow_id, tokenizer_fn=words
    )
    history = await memory.aget_all()
    assert [m.content for m in history] == ["Plan Rome", "Sure"]
    await memory.aput(ChatMessage(role="user", content="Add Florence"))
    # ChatMemoryBuffer rewrites the whole list; untouched messages keep id and metadata.
    await memory.aset([*history, ChatMessage(role="user", content="Add Florence")])
    state = await saver.aload_state(workflow_id)
    assert state is not None
    assert [m.model_dump() for m in state.messages[:2]] == [m.model_dump() for m in seeded.messages]
    assert state.messages[2].content == "Add Florence"
    assert state.context == {"city": "Rome", "days": 2}


# -- AsyncDBChatStore and Memory -----------------------------------------------------------


async def test_memory_archives_without_losing_messages(saver: UnifiedCheckpointSaver) -> None:
    workflow_id = unique("wf")
    await saver.asave_state(workflow_id, seeded_state(workflow_id), framework="langgraph")
    store = UnifiedDBChatStore(saver)
    memory = Memory.from_defaults(
        session_id=workflow_id, chat_store=store, token_limit=40, tokenizer_fn=words
    )
    for turn in range(6):
        await memory.aput_messages(
            [
                ChatMessage(role="user", content=f"question {turn} " + "word " * 5),
                ChatMessage(role="assistant", content=f"answer {turn} " + "word " * 5),
            ]
        )
    archived = await store.count_messages(workflow_id, status=MessageStatus.ARCHIVED)
    active = await store.count_messages(workflow_id)
    assert archived > 0
    assert archived + active == 14
    assert len(await memory.aget()) == active

    state = await saver.aload_state(workflow_id)
    assert state is not None
    assert len(state.messages) == 14, "archived messages stay in the thread"
    assert [m.id for m in state.messages[:2]] == ["lg-1", "lg-2"]
    assert framework_metadata(state.messages[0], "llamaindex") == {"status": "archived"}
    assert state.messages[1].metadata["langchain"]["response_metadata"] == {"model": "fake"}


async def test_db_chat_store_operations(saver: UnifiedCheckpointSaver) -> None:
    store = UnifiedDBChatStore(saver)
    key = unique("db")
    await store.set_messages(key, conversation())
    await store.add_messages(key, odd_messages(), status=MessageStatus.ARCHIVED)
    assert await store.count_messages(key) == 5
    assert await store.count_messages(key, status=None) == 11
    assert dumps(await store.get_messages(key, status=MessageStatus.ARCHIVED)) == dumps(odd_messages())
    assert [m.content for m in await store.get_messages(key, limit=2, offset=1)] == [
        "Weather in Rome?", None,
    ]
    oldest = await store.delete_oldest_messages(key, 1)
    assert [m.content for m in oldest] == ["Be brief."]
    archived = await store.archive_oldest_messages(key, 2)
    assert [m.role.value for m in archived] == ["user", "assistant"]
    assert await store.count_messages(key) == 2
    removed = await store.delete_message(key, 0)
    assert removed is not None and removed.content == "Weather in Rome?"
    await store.delete_messages(key, status=MessageStatus.ARCHIVED)
    assert await store.count_messages(key, status=None) == 2
    await store.add_message(key, ChatMessage(role="user", content="x"))
    assert await store.count_messages(key) == 3
    assert await store.get_keys() == [key]


# -- workflow Context ----------------------------------------------------------------------


class CountingWorkflow(Workflow):
    @step
    async def count(self, ctx: Context, ev: StartEvent) -> StopEvent:
        runs = await ctx.store.get("runs", default=0)
        await ctx.store.set("runs", runs + 1)
        city = await ctx.store.get("city", default=None)
        return StopEvent(result=f"{runs + 1} {city}")


class TypedTrip(BaseModel):
    runs: int = 0


class TypedWorkflow(Workflow):
    @step
    async def count(self, ctx: Context[TypedTrip], ev: StartEvent) -> StopEvent:
        async with ctx.store.edit_state() as state:
            state.runs += 1
        return StopEvent(result=str((await ctx.store.get_state()).runs))


async def test_context_round_trip_with_foreign_values(saver: UnifiedCheckpointSaver) -> None:
    workflow_id = unique("wf")
    seeded = seeded_state(workflow_id)
    await saver.asave_state(workflow_id, seeded, framework="langgraph")
    contexts = LlamaIndexContextStore(saver)
    workflow = CountingWorkflow()

    ctx = await contexts.load(workflow_id, workflow)
    assert await workflow.run(ctx=ctx) == "1 Rome"
    await contexts.save(workflow_id, ctx)
    state = await saver.aload_state(workflow_id)
    assert state is not None
    assert state.context == {"city": "Rome", "days": 2, "runs": 1}
    assert [m.model_dump() for m in state.messages] == [m.model_dump() for m in seeded.messages]

    # Another framework edits the context; LlamaIndex sees the edit, deletion included.
    state.update_context(city="Milan")
    state.context.pop("days")
    await saver.asave_state(workflow_id, state, framework="langgraph")
    ctx = await contexts.load(workflow_id, workflow)
    assert await workflow.run(ctx=ctx) == "2 Milan"
    await contexts.save(workflow_id, ctx)
    state = await saver.aload_state(workflow_id)
    assert state is not None
    assert state.context == {"city": "Milan", "runs": 2}


async def test_typed_context_keeps_what_it_cannot_hold(saver: UnifiedCheckpointSaver) -> None:
    workflow_id = unique("wf")
    await saver.asave_state(workflow_id, seeded_state(workflow_id), framework="langgraph")
    contexts = LlamaIndexContextStore(saver)
    workflow = TypedWorkflow()
    for expected in ("1", "2"):
        ctx = await contexts.load(workflow_id, workflow)
        assert await workflow.run(ctx=ctx) == expected
        await contexts.save(workflow_id, ctx)
    state = await saver.aload_state(workflow_id)
    assert state is not None
    assert state.context == {"city": "Rome", "days": 2, "runs": 2}


async def test_unknown_workflow_gives_a_fresh_context(saver: UnifiedCheckpointSaver) -> None:
    workflow = CountingWorkflow()
    ctx = await LlamaIndexContextStore(saver).load(unique("missing"), workflow)
    assert await workflow.run(ctx=ctx) == "1 None"
    assert await saver.alist_workflows() == []


async def test_memory_in_the_context_is_restored(saver: UnifiedCheckpointSaver) -> None:
    workflow_id = unique("wf")

    class ChatWorkflow(Workflow):
        @step
        async def chat(self, ctx: Context, ev: StartEvent) -> StopEvent:
            memory = await ctx.store.get("memory", default=None)
            if memory is None:
                memory = Memory.from_defaults(
                    session_id=workflow_id, chat_store=UnifiedDBChatStore(saver), tokenizer_fn=words
                )
                await ctx.store.set("memory", memory)
            await memory.aput(ChatMessage(role="user", content=str(ev.get("text"))))
            return StopEvent(result=len(await memory.aget()))

    contexts = LlamaIndexContextStore(saver)
    workflow = ChatWorkflow()
    for turn, expected in (("one", 1), ("two", 2)):
        ctx = await contexts.load(workflow_id, workflow)
        assert await workflow.run(ctx=ctx, text=turn) == expected
        await contexts.save(workflow_id, ctx)
    state = await saver.aload_state(workflow_id)
    assert state is not None
    assert [m.content for m in state.messages] == ["one", "two"]
    assert state.framework_state["llamaindex"]["memory"]["session_id"] == workflow_id


def test_missing_llamaindex_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "llama_index" or name.startswith("llama_index."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "langgraph_unified_store.adapters.llamaindex")
    with pytest.raises(MissingExtraError, match=r"langgraph-unified-store\[llamaindex\]"):
        importlib.import_module("langgraph_unified_store.adapters.llamaindex")
