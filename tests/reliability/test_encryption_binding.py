"""Encryption fails closed and binds every value to its place, on every backend.

An attacker with write access but without the key plants, by raw SQL / raw Redis
commands, unencrypted values (checkpoint skeleton, blob, write, item, segment) and
ciphertexts copied from another thread, checkpoint or channel. Every read, through the
async and the blocking API, raises ``CorruptDataError`` naming thread, namespace,
checkpoint and channel. Also: a passphrase goes through scrypt, salted, with the salt in
the data and derived keys cached; ``copy_thread`` of an encrypted thread reads back
exactly while a raw copy of its rows is refused; and data encrypted by release 0.1
(``tests/fixtures/encrypted_v1.json``) reads back with ``read_legacy=True``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import ormsgpack
import pytest
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from langgraph_unified_store import CorruptDataError
from langgraph_unified_store.core import encryption as encryption_module
from langgraph_unified_store.core.records import (
    ITEM_LIST_TYPE,
)
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.core.serde import AesGcmCipher

from ..support import ALL_BACKENDS
from . import raw
from .encrypted_v1 import FIXTURE, decode_field, plant_records
from .hostile import put_state, reader_of, sandboxed_saver, thread_tuples
from .private_servers import PrivateRedis
from .serde_configs import CONFIGS

MODES = ("encryption_key", "encryption_key-raw", "EncryptedSerializer-user-cipher")


@asynccontextmanager
async def other_reader(saver: UnifiedCheckpointSaver, **options: Any) -> AsyncIterator[UnifiedCheckpointSaver]:
    """A fresh reader with other serde options; for Memory (no other view of its data), a
    clone of the saver with the other serde."""
    if saver.backend.name != "memory":
        async with reader_of(saver, **options) as reader:
            yield reader
        return
    clone = copy.copy(saver)
    clone.serde = type(saver)(**options).serde
    clone._codec = None
    yield clone


def _cases() -> list[Any]:
    return [pytest.param(b, m, id=f"{b}-{m}") for b in ALL_BACKENDS for m in MODES]


async def _every_read(reader: UnifiedCheckpointSaver, config: Any, thread_id: str) -> list[Any]:
    outcomes: list[Any] = []
    listing = {"configurable": {"thread_id": thread_id}}
    for read in (
        lambda: reader.aget_tuple(config),
        lambda: thread_tuples(reader, thread_id),
        lambda: asyncio.to_thread(reader.get_tuple, config),
        lambda: asyncio.to_thread(lambda: list(reader.list(listing))),
    ):
        try:
            outcomes.append(await read())
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


async def _thread(saver: UnifiedCheckpointSaver, thread_id: str, parent: str | None = None) -> Any:
    config = await put_state(
        saver, thread_id,
        {
            "messages": [{"content": f"element {i} " + "z" * 80} for i in range(12)],
            "title": "a title",
            "notes": "some notes",
        },
        parent=parent,
    )
    await saver.aput_writes(
        config, [("messages", [{"content": "w" * 100}]), ("notes", "pending")], "task-1"
    )
    return config


def _assert_refused(outcomes: list[Any], thread_id: str, checkpoint_id: str, channel: str | None,
                    reason: str) -> None:
    for outcome in outcomes:
        assert isinstance(outcome, CorruptDataError), f"read without error: {outcome!r:.300}"
        message = str(outcome)
        assert f"thread {thread_id!r}" in message, message
        assert "namespace ''" in message, message
        assert f"checkpoint {checkpoint_id!r}" in message, message
        if channel is not None:
            assert repr(channel) in message, message
        assert reason in message, message


PLAINTEXT = ormsgpack.packb({"content": "forged by someone without the key"})
TARGETS = {
    # target: (the channel the error must name, or None for the checkpoint itself)
    "checkpoint": None,
    "blob:messages": "messages",
    "blob:notes": "notes",
    "write:messages": "messages",
    "item": "messages",
    "segment": "messages",
}


@pytest.mark.parametrize(("backend", "mode"), _cases())
async def test_unencrypted_values_are_refused_naming_their_place(
    backend: str, mode: str, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    async with sandboxed_saver(backend, tmp_path, sandbox_redis, **CONFIGS[mode]()) as saver:
        planted = []
        for target, channel in TARGETS.items():
            for type_ in ("msgpack", "json", "lus.segment" if target == "segment" else ITEM_LIST_TYPE):
                thread_id = f"forged-{target}-{type_}"
                config = await _thread(saver, thread_id)
                data = orjson.dumps({"forged": 1}) if type_ == "json" else PLAINTEXT
                await raw.overwrite(saver, thread_id, target, data, type_)
                planted.append((thread_id, config, channel))
            # A planted type of the old format (no binding) is refused too, without read_legacy.
            thread_id = f"forged-{target}-legacy"
            config = await _thread(saver, thread_id)
            await raw.overwrite(saver, thread_id, target, b"\x00" * 40, "msgpack+aesgcm")
            planted.append((thread_id, config, channel))
        async with reader_of(saver, **CONFIGS[mode]()) as reader:
            for thread_id, config, channel in planted:
                reason = "release 0.1" if thread_id.endswith("legacy") else "not encrypted"
                _assert_refused(await _every_read(reader, config, thread_id), thread_id,
                                config["configurable"]["checkpoint_id"], channel, reason)


async def _sealed(saver: UnifiedCheckpointSaver, thread_id: str) -> Any:
    """What the backend holds for a thread's latest checkpoint (encrypted records)."""
    stored = await saver.backend.get_checkpoint(thread_id, "", None)
    assert stored is not None
    return stored


@pytest.mark.parametrize(("backend", "mode"), _cases())
async def test_ciphertext_moved_to_another_place_fails_to_decrypt(
    backend: str, mode: str, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    async with sandboxed_saver(backend, tmp_path, sandbox_redis, **CONFIGS[mode]()) as saver:
        source = await _sealed(saver, (await _thread(saver, "source"))["configurable"]["thread_id"])
        planted = []

        async def victim(name: str) -> tuple[str, Any]:
            config = await _thread(saver, name)
            return name, config

        # Another thread's skeleton, blob, write and item.
        moves: list[tuple[str, str, Any, str | None]] = [
            ("checkpoint", "checkpoint", source.record, None),
            ("blob:messages", "blob:messages", source.blobs["messages"], "messages"),
            ("blob:notes", "blob:notes", source.blobs["notes"], "notes"),
            ("write:messages", "write:messages",
             next(w for w in source.writes if w.channel == "messages"), "messages"),
            ("item", "item", next(iter(source.items.values())), "messages"),
        ]
        for label, target, record, channel in moves:
            thread_id, config = await victim(f"cross-thread-{label}")
            await raw.overwrite(saver, thread_id, target, bytes(record.data), record.type)
            planted.append((thread_id, config, channel))
        # Another channel of the same thread: notes gets title's ciphertext; a write's
        # ciphertext moved to another write of the same checkpoint.
        thread_id, config = await victim("cross-channel")
        own = await _sealed(saver, thread_id)
        await raw.overwrite(saver, thread_id, "blob:notes", bytes(own.blobs["title"].data),
                            own.blobs["title"].type)
        planted.append((thread_id, config, "notes"))
        thread_id, config = await victim("cross-write")
        own = await _sealed(saver, thread_id)
        notes_write = next(w for w in own.writes if w.channel == "notes")
        await raw.overwrite(saver, thread_id, "write:messages", bytes(notes_write.data),
                            notes_write.type)
        planted.append((thread_id, config, "messages"))
        # Another checkpoint of the same thread: the child gets its parent's skeleton and
        # its parent's writes.
        first = await _thread(saver, "cross-checkpoint")
        parent = await _sealed(saver, "cross-checkpoint")
        child = await _thread(saver, "cross-checkpoint", parent=first["configurable"]["checkpoint_id"])
        await raw.overwrite(saver, "cross-checkpoint", "checkpoint", bytes(parent.record.data),
                            parent.record.type)
        planted.append(("cross-checkpoint", child, None))
        first = await _thread(saver, "cross-checkpoint-write")
        parent = await _sealed(saver, "cross-checkpoint-write")
        child = await _thread(saver, "cross-checkpoint-write",
                              parent=first["configurable"]["checkpoint_id"])
        parent_write = next(w for w in parent.writes if w.channel == "messages")
        await raw.overwrite(saver, "cross-checkpoint-write", "write:messages",
                            bytes(parent_write.data), parent_write.type)
        planted.append(("cross-checkpoint-write", child, "messages"))
        async with reader_of(saver, **CONFIGS[mode]()) as reader:
            for thread_id, config, channel in planted:
                _assert_refused(await _every_read(reader, config, thread_id), thread_id,
                                config["configurable"]["checkpoint_id"], channel,
                                "wrong key or tampered data")
            # The source itself still reads.
            assert (await reader.aget_tuple({"configurable": {"thread_id": "source"}})) is not None


@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_wrong_key_says_wrong_key_or_tampered_data(
    backend: str, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    async with sandboxed_saver(backend, tmp_path, sandbox_redis, encryption_key="right") as saver:
        config = await _thread(saver, "keyed")
        for wrong in ({"encryption_key": "wrong"}, {"encryption_key": bytes(32)}):
            async with other_reader(saver, **wrong) as reader:
                outcomes = await _every_read(reader, config, "keyed")
            _assert_refused(outcomes, "keyed", config["configurable"]["checkpoint_id"], None,
                            "wrong key or tampered data")


# -- the passphrase's key derivation ------------------------------------------------------


@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_passphrase_goes_through_salted_scrypt_once_per_salt(
    backend: str, tmp_path: Path, sandbox_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bytes] = []
    real = hashlib.scrypt

    def counting(password: bytes, **kwargs: Any) -> bytes:
        calls.append(kwargs["salt"])
        return real(password, **kwargs)

    monkeypatch.setattr(encryption_module.hashlib, "scrypt", counting)
    async with sandboxed_saver(backend, tmp_path, sandbox_redis, encryption_key="a passphrase") as saver:
        config = await _thread(saver, "kdf")
        for _ in range(20):
            config = await _thread(saver, "kdf", parent=config["configurable"]["checkpoint_id"])
        assert len(calls) == 1, "the writer derives its key once"
        stored = await _sealed(saver, "kdf")
        header = bytes(stored.record.data)
        assert header[0] == 1 and len(header) > 1 + 16 + 12, "scrypt id and salt lead the data"
        assert header[1:17] == calls[0], "the salt is stored with the data"
        assert stored.record.type.startswith("lus2:")
        if backend != "memory":
            calls.clear()
            async with reader_of(saver, encryption_key="a passphrase") as reader:
                tuples = await thread_tuples(reader, "kdf")
                assert len(tuples) == 21
                await asyncio.to_thread(lambda: list(reader.list({"configurable": {"thread_id": "kdf"}})))
                # A fresh process derives once for the stored salt, and writes with it.
                await _thread(reader, "kdf-2")
            assert calls == [header[1:17]], calls
    calls.clear()
    async with sandboxed_saver(backend, tmp_path, sandbox_redis, encryption_key=bytes(32)) as saver:
        await _thread(saver, "raw-key")
        stored = await _sealed(saver, "raw-key")
        assert bytes(stored.record.data)[0] == 0, "a 32-byte key is used as it is"
        assert calls == []


# -- copy_thread --------------------------------------------------------------------------


def _comparable(tuples: list[Any]) -> list[Any]:
    return [
        (t.checkpoint, t.metadata, t.pending_writes,
         t.parent_config and t.parent_config["configurable"]["checkpoint_id"],
         t.config["configurable"]["checkpoint_ns"])
        for t in tuples
    ]


@pytest.mark.parametrize(("backend", "mode"), _cases())
async def test_copy_of_an_encrypted_thread_reads_back_exactly(
    backend: str, mode: str, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    async with sandboxed_saver(backend, tmp_path, sandbox_redis, **CONFIGS[mode]()) as saver:
        config = await _thread(saver, "original")
        for _ in range(3):
            config = await _thread(saver, "original", parent=config["configurable"]["checkpoint_id"])
        await put_state(saver, "original", {"sub": "a child namespace value"}, checkpoint_ns="child")
        await saver.acopy_thread("original", "copy-async")
        await asyncio.to_thread(saver.copy_thread, "original", "copy-sync")
        async with reader_of(saver, **CONFIGS[mode]()) as reader:
            original = _comparable(await thread_tuples(reader, "original"))
            assert len(original) == 5
            for copy_id in ("copy-async", "copy-sync"):
                assert _comparable(await thread_tuples(reader, copy_id)) == original
                assert (await reader.aget_tuple({"configurable": {"thread_id": copy_id}})) is not None
        # A raw copy of the rows (what a backend-level copy, or an attacker, would do) is
        # refused: every value is bound to its thread.
        await saver.backend.copy_thread("original", "raw-copy")
        for outcome in await _every_read(saver, {"configurable": {"thread_id": "raw-copy"}}, "raw-copy"):
            assert isinstance(outcome, CorruptDataError), outcome
            assert "thread 'raw-copy'" in str(outcome) and "wrong key or tampered data" in str(outcome)


# -- release 0.1's format -----------------------------------------------------------------


def _key(fixture: dict[str, Any], thread: str) -> bytes | str:
    return fixture["passphrase"] if thread == "passphrase" else decode_field(fixture["raw_key"])


@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_data_encrypted_by_release_0_1_stays_readable(
    backend: str, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    fixture = orjson.loads(FIXTURE.read_bytes())
    old = JsonPlusSerializer()
    for thread, records in fixture["threads"].items():
        key = _key(fixture, thread)
        legacy = {"serde": EncryptedSerializer(AesGcmCipher(key, read_legacy=True))}
        async with sandboxed_saver(backend, tmp_path, sandbox_redis, **legacy) as saver:
            await plant_records(saver, thread, records)
            expected = [
                (old.loads_typed(("msgpack", decode_field(e["checkpoint"]))),
                 old.loads_typed(("msgpack", decode_field(e["pending_writes"]))))
                for e in fixture["expected"][thread]
            ]
            got = [(t.checkpoint, [tuple(w) for w in t.pending_writes])
                   for t in await thread_tuples(saver, thread)]
            assert got == [(c, [tuple(w) for w in p]) for c, p in expected]
            listing = {"configurable": {"thread_id": thread}}
            synced = await asyncio.to_thread(lambda: list(saver.list(listing)))  # noqa: B023
            assert [t.checkpoint for t in synced] == [c for c, _ in expected]
            # Going on from legacy data writes format v2, which reads back too.
            latest = await saver.aget_tuple({"configurable": {"thread_id": thread}})
            assert latest is not None
            child = dict(latest.checkpoint)
            child["id"] = "1f000000-0000-6000-8000-000000000009"
            version = saver.get_next_version(latest.checkpoint["channel_versions"]["notes"])
            child["channel_versions"] = dict(latest.checkpoint["channel_versions"], notes=version)
            child["channel_values"] = dict(latest.checkpoint["channel_values"], notes="new")
            await saver.aput(latest.config, child, {"source": "loop", "step": 1},  # type: ignore[arg-type]
                             {"notes": version})
            newest = await saver.aget_tuple({"configurable": {"thread_id": thread}})
            assert newest is not None and newest.checkpoint["channel_values"]["notes"] == "new"
            assert newest.checkpoint["channel_values"]["messages"] == \
                latest.checkpoint["channel_values"]["messages"]
            # Without read_legacy the old format is refused, saying how to read it.
            async with other_reader(saver, encryption_key=key) as strict:
                config = {"configurable": {"thread_id": thread,
                                           "checkpoint_id": latest.config["configurable"]["checkpoint_id"]}}
                for outcome in await _every_read(strict, config, thread):
                    assert isinstance(outcome, CorruptDataError), outcome
                    assert "read_legacy=True" in str(outcome) and thread in str(outcome)
            # Even with read_legacy, plaintext planted into a legacy thread is refused.
            for tamper in ("inline-element", "plaintext-leaf"):
                tampered = f"{thread}-{tamper}"
                await plant_records(saver, tampered, records, tamper=tamper)
                config = {"configurable": {"thread_id": tampered}}
                for outcome in await _every_read(saver, config, tampered):
                    assert isinstance(outcome, CorruptDataError), f"{tamper}: {outcome!r:.200}"
                    assert tampered in str(outcome)
