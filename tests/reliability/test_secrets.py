"""Connection strings, passwords and encryption keys never appear in logs, reprs or
exception messages: not in ``repr(saver)`` or ``repr(saver.backend)``, not in any error
(nor anything it was raised from, nor its formatted traceback), and not in any log record
at DEBUG level, whether the server is up, refuses the password, or is unreachable.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from langgraph_unified_store import create_saver
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import ALL_BACKENDS, open_saver
from .hostile import put_state, sandboxed_saver
from .private_servers import PrivateRedis, free_port

PG_PASSWORD = "Pg-S3cret-Passw0rd!"
REDIS_PASSWORD = "Rd-S3cret-Passw0rd"
ENCRYPTION_KEY = "Enc-S3cret-Key-Material-0123456789"
SECRETS = (PG_PASSWORD, REDIS_PASSWORD, ENCRYPTION_KEY, "S3cret")


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        for form in {secret, quote(secret, safe=""), repr(secret.encode())[2:-1]}:
            assert form not in text, f"{where} shows a secret: {text[:500]}"


def assert_error_clean(exc: BaseException, where: str) -> None:
    """The error, everything chained to it, and its formatted traceback."""
    seen: BaseException | None = exc
    while seen is not None:
        assert_clean(str(seen), f"{where}: str({type(seen).__name__})")
        assert_clean(repr(seen), f"{where}: repr({type(seen).__name__})")
        seen = seen.__cause__ or seen.__context__
    assert_clean("".join(traceback.format_exception(exc)), f"{where}: traceback")


def assert_saver_clean(saver: UnifiedCheckpointSaver, where: str) -> None:
    assert_clean(repr(saver), f"{where}: repr(saver)")
    assert_clean(repr(saver.backend), f"{where}: repr(saver.backend)")
    assert_clean(str(saver), f"{where}: str(saver)")
    assert_clean(repr(saver.serde), f"{where}: repr(saver.serde)")


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record of every logger, at DEBUG; checked clean after the test."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    for record in caplog.records:
        text = record.getMessage() + (
            "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else ""
        )
        assert_clean(text, f"log record of {record.name}")


async def _fails(call: Any, where: str) -> BaseException:
    with pytest.raises(Exception) as caught:
        await call()
    assert_error_clean(caught.value, where)
    return caught.value


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dsn_form",
    [
        "postgresql://postgres:{pw}@127.0.0.1:{port}/test",
        "postgres://postgres:{pw}@127.0.0.1:{port}/test?sslmode=disable",
        "postgresql://postgres@127.0.0.1:{port}/test?password={pw}",
    ],
)
async def test_postgres_password_never_shown(dsn_form: str, all_logs: pytest.LogCaptureFixture) -> None:
    password = quote(PG_PASSWORD, safe="")
    # The shared server trusts loopback, so the password is accepted (and ignored).
    dsn = dsn_form.format(pw=password, port=5432)
    saver = open_saver("postgres", f"lus_secret_{uuid.uuid4().hex[:8]}", dsn=dsn,
                       encryption_key=ENCRYPTION_KEY)
    try:
        assert_saver_clean(saver, "postgres")
        await saver.asetup()
        config = await put_state(saver, "t", {"x": 1})
        assert await saver.aget_tuple(config) is not None
        assert_saver_clean(saver, "postgres after use")
        await _fails(lambda: put_state(saver, "t", {"x": lambda: 1}), "postgres bad value")
        await _fails(lambda: saver.aget_tuple({"configurable": {}}), "postgres bad config")
    finally:
        drop = getattr(saver.backend, "drop_all", None)
        if drop is not None:
            await drop()
        await saver.aclose()
    assert_clean(repr(create_saver(dsn)), "create_saver(dsn)")
    # Unreachable, and a database that does not exist: the errors say so, without secrets.
    for bad in (dsn_form.format(pw=password, port=free_port()),
                dsn.replace("/test", "/no_such_database_here")):
        broken = open_saver("postgres", "lus_secret", dsn=bad, connect_timeout=5.0)
        try:
            assert_saver_clean(broken, "broken postgres")
            await _fails(broken.asetup, "postgres unreachable/missing database")
        finally:
            await broken.aclose()


# -- Redis --------------------------------------------------------------------------------


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis", password=REDIS_PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_redis_password_never_shown(
    redis_with_password: PrivateRedis, all_logs: pytest.LogCaptureFixture
) -> None:
    port = redis_with_password.port
    for url in (
        f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0",
        f"redis://default:{REDIS_PASSWORD}@127.0.0.1:{port}/0",
    ):
        saver = open_saver("redis", f"lus_secret_{uuid.uuid4().hex[:8]}", url=url,
                           encryption_key=ENCRYPTION_KEY)
        try:
            assert_saver_clean(saver, "redis")
            await saver.asetup()
            config = await put_state(saver, "t", {"x": 1})
            assert await saver.aget_tuple(config) is not None
            assert_saver_clean(saver, "redis after use")
            await _fails(lambda s=saver: put_state(s, "t", {"x": lambda: 1}), "redis bad value")
        finally:
            await saver.backend.drop_all()  # type: ignore[attr-defined]
            await saver.aclose()
        assert_clean(repr(create_saver(url)), "create_saver(url)")
    for url, why in (
        (f"redis://:Wrong-{REDIS_PASSWORD}@127.0.0.1:{port}/0", "wrong password"),
        (f"redis://127.0.0.1:{port}/0", "no password"),
        (f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0", "unreachable"),
    ):
        broken = open_saver("redis", "lus_secret", url=url, socket_timeout=2.0)
        try:
            assert_saver_clean(broken, f"redis {why}")
            error = await _fails(broken.asetup, f"redis {why}")
            assert isinstance(error, ConnectionError) or "auth" in str(error).lower(), repr(error)
        finally:
            await broken.aclose()


# -- the encryption key, on every backend -------------------------------------------------


@pytest.mark.parametrize("backend", ALL_BACKENDS)
async def test_encryption_key_never_shown(
    backend: str, tmp_path: Path, sandbox_redis: PrivateRedis, all_logs: pytest.LogCaptureFixture
) -> None:
    async with sandboxed_saver(backend, tmp_path, sandbox_redis, encryption_key=ENCRYPTION_KEY) as saver:
        assert_saver_clean(saver, backend)
        config = await put_state(saver, "t", {"messages": [{"m": "x" * 100}] * 20, "n": 1})
        await _fails(lambda: put_state(saver, "t", {"x": [{"key": lambda: 1}]}), f"{backend} bad value")
        assert await saver.aget_tuple(config) is not None
        # Reading with another key fails, naming the checkpoint, showing neither key.
        wrong = UnifiedCheckpointSaver(saver.backend, encryption_key="Other-S3cret-Key")
        await _fails(lambda: wrong.aget_tuple(config), f"{backend} wrong key")
        assert_saver_clean(wrong, f"{backend} wrong key")
