"""An encrypted source exports ciphertext (sealed for its place in the file) unless
asked to decrypt; only a target with the same key imports it, and reads back equal."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from langgraph_unified_store.errors import CorruptDataError, InvalidConfigError
from langgraph_unified_store.transfer import (
    ExportDecryptError,
    ExportFormatError,
    ExportKeyError,
    acopy,
    aexport_to,
    aimport_from,
)

from ..support import saver_for
from .histories import CHAT, build_history, thread_view

KEY = b"k" * 32


def typed_values(data: bytes) -> list[tuple[str, bytes]]:
    """Every (type, bytes) value of an export."""
    found: list[tuple[str, bytes]] = []
    pending: list[Any] = [orjson.loads(line) for line in data.splitlines()]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            if set(current) == {"type", "data"}:
                found.append((current["type"], base64.b64decode(current["data"])))
            else:
                pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)
    return found
PASSPHRASE = "a passphrase, stretched by scrypt"


@pytest.mark.parametrize(
    ("source_backend", "target_backend", "key"),
    [("sqlite", "memory", KEY), ("memory", "postgres", PASSPHRASE), ("redis", "sqlite", KEY)],
)
async def test_encrypted_export_holds_ciphertext_and_imports_with_the_key(
    source_backend: str, target_backend: str, key: bytes | str, tmp_path: Path
) -> None:
    async with saver_for(source_backend, tmp_path, encryption_key=key) as source:
        threads = await build_history(source, turns=2)
        exported = io.BytesIO()
        await aexport_to(exported, source)
        data = exported.getvalue()
        assert b'"encrypted":true' in data.splitlines()[0]
        values = typed_values(data)
        assert values and all(type_.startswith("lus2:") for type_, _ in values)
        assert not any(b"turn 0" in raw or b"reviewed" in raw for _, raw in values)
        assert b'"checkpoint":' not in data  # skeletons are sealed too
        async with saver_for(target_backend, tmp_path, encryption_key=key) as target:
            exported.seek(0)
            await aimport_from(exported, target, verify=True)
            for thread_id in threads:
                assert await thread_view(target, thread_id) == await thread_view(source, thread_id)
        async with saver_for(target_backend, tmp_path) as plain_target:
            exported.seek(0)
            with pytest.raises(InvalidConfigError, match="encrypted") as no_key:
                await aimport_from(exported, plain_target)
            assert isinstance(no_key.value, ExportKeyError) and "decrypt=True" in str(no_key.value)
            assert [t async for t in plain_target.alist(None)] == []
        async with saver_for(target_backend, tmp_path, encryption_key=b"w" * 32) as wrong:
            exported.seek(0)
            with pytest.raises(ExportFormatError, match=r"line \d+: .*cannot be decrypted") as not_its_key:
                await aimport_from(exported, wrong)
            assert isinstance(not_its_key.value, ExportDecryptError)
            assert [t async for t in wrong.alist(None)] == []


async def test_decrypted_export_and_a_copy_to_a_new_key(tmp_path: Path) -> None:
    async with saver_for("sqlite", tmp_path, encryption_key=KEY) as source:
        await build_history(source, turns=2)
        exported = io.BytesIO()
        await aexport_to(exported, source, decrypt=True)
        assert b'"encrypted":false' in exported.getvalue()
        assert any(b"turn 0" in raw for _, raw in typed_values(exported.getvalue()))
        async with saver_for("memory", tmp_path) as plain:
            exported.seek(0)
            await aimport_from(exported, plain, verify=True)
            assert await thread_view(plain, CHAT) == await thread_view(source, CHAT)
        async with saver_for("sqlite", tmp_path, encryption_key=b"n" * 32) as rekeyed:
            summary = await acopy(source, rekeyed)
            assert summary.verified and summary.threads == 5
            assert await thread_view(rekeyed, CHAT) == await thread_view(source, CHAT)


async def test_a_sealed_value_moved_to_another_place_in_the_file_does_not_open(tmp_path: Path) -> None:
    async with saver_for("memory", tmp_path, encryption_key=KEY) as source:
        await build_history(source, turns=2)
        exported = io.BytesIO()
        await aexport_to(exported, source, threads=[CHAT])
        lines = exported.getvalue().splitlines()
        blobs = [i for i, line in enumerate(lines) if line.startswith(b'{"kind":"blob"')]
        first, second = blobs[0], blobs[1]
        moved = orjson.loads(lines[second])
        moved.pop("extends", None)
        moved.pop("append", None)
        moved["value"] = orjson.loads(lines[first])["value"]  # another blob's ciphertext
        lines[second] = orjson.dumps(moved)
        async with saver_for("memory", tmp_path, encryption_key=KEY) as target:
            with pytest.raises(CorruptDataError, match=f"line {second + 1}"):
                await aimport_from(io.BytesIO(b"\n".join(lines) + b"\n"), target)
            assert [t async for t in target.alist(None)] == []
