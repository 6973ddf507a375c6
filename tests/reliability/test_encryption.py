"""Encryption at rest on every backend.

A graph's state holds a recognizable plaintext in its messages, in other channels and
in pending writes (an interrupt, and a write stored directly). With ``encryption_key=``,
or LangGraph's own ``EncryptedSerializer`` passed as ``serde`` (here with a cipher the
user wrote), the raw rows or keys of the backend hold none of it, and the graph still
reads everything back. Without encryption the same raw dump does show it, which proves
the dump sees the stored data.

By design, checkpoint metadata stays plaintext JSON: ``list(filter=...)`` queries it in
the database. Thread ids, namespaces, checkpoint ids, channel names and versions are
plaintext too (they are keys). Nothing of the state goes there, so no plaintext of the
state appears anywhere, as this test checks byte for byte.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, interrupt

from langgraph_unified_store import UnifiedStoreError
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.core.serde import SafeSerializer

from ..support import ALL_BACKENDS
from . import raw
from .hostile import sandboxed_saver
from .private_servers import PrivateRedis
from .serde_configs import UserCipher

PASSPHRASE = "tr0ub4dor&3-encryption-passphrase"


CHACHA_KEY = ChaCha20Poly1305.generate_key()


def encryption_options(mode: str) -> dict[str, Any]:
    if mode == "encryption_key":
        return {"encryption_key": PASSPHRASE}
    if mode == "EncryptedSerializer":
        return {"serde": EncryptedSerializer(UserCipher(CHACHA_KEY), SafeSerializer())}
    return {}


class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    notes: str
    profile: dict[str, Any]


def build_graph(saver: UnifiedCheckpointSaver, secret: str) -> Any:
    def chat(state: ChatState) -> dict[str, Any]:
        return {
            "messages": [AIMessage(content=f"the launch code is {secret}")],
            "notes": f"note about {secret}",
            "profile": {"ssn": secret, "history": [secret] * 3},
        }

    def ask(state: ChatState) -> dict[str, Any]:
        answer = interrupt(f"confirm {secret}?")
        return {"notes": f"answered {answer}"}

    builder = StateGraph(ChatState)
    builder.add_node("chat", chat)
    builder.add_node("ask", ask)
    builder.add_edge(START, "chat")
    builder.add_edge("chat", "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver)


async def run_graph(saver: UnifiedCheckpointSaver, secret: str, thread_id: str) -> dict[str, Any]:
    graph = build_graph(saver, secret)
    config = {"configurable": {"thread_id": thread_id}}
    # Many messages, so the list is stored as items and segments.
    first = [HumanMessage(content=f"hello {i} {secret}") for i in range(20)]
    await graph.ainvoke({"messages": first, "notes": "", "profile": {}}, config)
    state = await graph.aget_state(config)
    assert state.next == ("ask",), "the graph should wait at its interrupt"
    # A pending write stored directly, next to the interrupt's own.
    tup = await saver.aget_tuple(config)
    assert tup is not None
    await saver.aput_writes(tup.config, [("notes", f"pending {secret}")], "task-direct")
    return config


def _secrets_in(dump: bytes, secret: str) -> list[str]:
    token = secret.split("-", 1)[1]
    return [s for s in (secret, token[:16], token[-16:]) if s.encode() in dump]


@pytest.mark.parametrize("mode", ["encryption_key", "EncryptedSerializer"])
@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_no_plaintext_at_rest(
    backend: str, mode: str, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    secret = f"TOPSECRET-{uuid.uuid4().hex}"
    async with sandboxed_saver(backend, tmp_path, sandbox_redis, **encryption_options(mode)) as saver:
        config = await run_graph(saver, secret, "encrypted-thread")
        dump = await raw.dump(saver)
        assert len(dump) > 1000, "the raw dump saw nothing"
        assert not _secrets_in(dump, secret), f"{backend}: plaintext of the state found at rest"
        # The graph reads everything back, pending writes included, and resumes.
        graph = build_graph(saver, secret)
        state = await graph.aget_state(config)
        assert state.values["profile"]["ssn"] == secret
        assert any(secret in str(m.content) for m in state.values["messages"])
        tup = await saver.aget_tuple(config)
        assert tup is not None
        assert ("notes", f"pending {secret}") in [(c, v) for _, c, v in tup.pending_writes]
        assert any(secret in str(v) for _, c, v in tup.pending_writes if c == "__interrupt__")
        result = await graph.ainvoke(Command(resume=f"yes {secret}"), config)
        assert result["notes"] == f"answered yes {secret}"
        assert len(result["messages"]) == 21
        dump = await raw.dump(saver)
        assert not _secrets_in(dump, secret), f"{backend}: plaintext found after resuming"
        # The blocking API reads the same, from a plain thread.
        listed = await asyncio.to_thread(lambda: list(saver.list(config)))
        assert listed[0].checkpoint["channel_values"]["notes"] == f"answered yes {secret}"


@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_unencrypted_control_shows_plaintext(
    backend: str, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    """The same dump without encryption finds the plaintext: the dump itself works."""
    secret = f"TOPSECRET-{uuid.uuid4().hex}"
    async with sandboxed_saver(backend, tmp_path, sandbox_redis) as saver:
        await run_graph(saver, secret, "plain-thread")
        assert _secrets_in(await raw.dump(saver), secret)


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
async def test_wrong_key_fails_clearly_and_never_shows_a_key(
    backend: str, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    secret = f"TOPSECRET-{uuid.uuid4().hex}"
    from ..support import open_saver

    async with sandboxed_saver(backend, tmp_path, sandbox_redis, encryption_key=PASSPHRASE) as saver:
        config = await run_graph(saver, secret, "keyed-thread")
        location = {
            "sqlite": lambda: saver.backend.path,  # type: ignore[attr-defined]
            "postgres": lambda: saver.backend.schema,  # type: ignore[attr-defined]
            "redis": lambda: saver.backend.prefix,  # type: ignore[attr-defined]
        }[backend]()
        extra = {"url": sandbox_redis.url} if backend == "redis" else {}
        wrong = open_saver(backend, location, encryption_key="not the right passphrase", **extra)
        try:
            with pytest.raises(UnifiedStoreError) as caught:
                await wrong.aget_tuple(config)
            message = str(caught.value)
            assert "keyed-thread" in message, message
            assert PASSPHRASE not in message and "not the right passphrase" not in message
            assert PASSPHRASE not in repr(saver) and PASSPHRASE not in repr(saver.serde)
        finally:
            await wrong.aclose()
