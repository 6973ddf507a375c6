"""create_saver(url) (and create_store, create_cache): every scheme, the environment
variable, the embedded default, and options named when one is not taken."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from langgraph_unified_store import (
    MemorySaver,
    SQLiteSaver,
    create_cache,
    create_saver,
    create_store,
)
from langgraph_unified_store.errors import InvalidConfigError
from langgraph_unified_store.factory import DEFAULT_SQLITE_FILE, ENV_URL

from .support import POSTGRES_DSN, REDIS_URL


def test_memory_url() -> None:
    assert isinstance(create_saver("memory://"), MemorySaver)


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = create_saver("sqlite:///relative.db")
    assert isinstance(relative, SQLiteSaver) and relative.backend.path == "relative.db"
    absolute = create_saver(f"sqlite:///{tmp_path}/abs.db")
    assert absolute.backend.path == f"{tmp_path}/abs.db"  # type: ignore[attr-defined]
    assert create_saver("sqlite://").backend.path == ":memory:"  # type: ignore[attr-defined]


def test_default_is_a_local_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_URL, raising=False)
    with create_saver() as saver:
        assert isinstance(saver, SQLiteSaver)
        saver.save_state("w", __import__("langgraph_unified_store").UnifiedWorkflowState())
    assert (tmp_path / DEFAULT_SQLITE_FILE).is_file()


def test_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_URL, "memory://")
    assert isinstance(create_saver(), MemorySaver)


def test_server_urls_build_their_savers() -> None:
    from langgraph_unified_store import PostgresSaver, RedisSaver

    assert isinstance(create_saver(POSTGRES_DSN), PostgresSaver)
    assert isinstance(create_saver(POSTGRES_DSN.replace("postgresql://", "postgres://", 1)), PostgresSaver)
    assert isinstance(create_saver(REDIS_URL), RedisSaver)


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'mysql'.*memory://.*sqlite:///.*postgresql://.*redis://"):
        create_saver("mysql://localhost/db")


@pytest.mark.parametrize("url", ["memory://", "sqlite://", REDIS_URL])
def test_an_unknown_option_is_named_with_the_accepted_ones(url: str) -> None:
    with pytest.raises(InvalidConfigError, match=r"'unknown_option' is not an option of the \w+ saver; it takes: .*serde.*encryption_key"):
        create_saver(url, unknown_option=1)


def test_unknown_options_are_named_together_and_the_default_file_checks_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_URL, raising=False)
    with pytest.raises(InvalidConfigError, match=r"'nope', 'neither' are not options of the sqlite saver; it takes: busy_timeout, synchronous"):
        create_saver(nope=1, neither=2)
    assert not (tmp_path / DEFAULT_SQLITE_FILE).exists()  # refused before anything was made
    with pytest.raises(InvalidConfigError, match=r"'prefix' is not an option of the postgres saver.*schema.*ssl"):
        create_saver(POSTGRES_DSN, prefix="x")


def test_accepted_options_still_reach_the_saver() -> None:
    with create_saver("memory://", max_threads=3, ttl=60) as saver:
        assert isinstance(saver, MemorySaver)


@pytest.mark.parametrize("make", [create_store, create_cache], ids=["store", "cache"])
@pytest.mark.parametrize(
    ("url", "backend", "own"),
    [("memory://", "memory", "clock"), ("sqlite://", "sqlite", "busy_timeout"),
     (POSTGRES_DSN, "postgres", "schema"), (REDIS_URL, "redis", "prefix")],
    ids=["memory", "sqlite", "postgres", "redis"],
)
def test_store_and_cache_name_an_unknown_option_with_the_accepted_ones(
    make: Callable[..., Any], url: str, backend: str, own: str
) -> None:
    kind = "store" if make is create_store else "cache"
    with pytest.raises(InvalidConfigError) as raised:
        make(url, unknown_option=1)
    message = str(raised.value)
    assert message.startswith(f"create_{kind}: 'unknown_option' is not an option of the {backend} {kind}; it takes: ")
    accepted = message.rpartition("it takes: ")[2].split(", ")
    assert own in accepted and "clock" in accepted
    assert ("index" in accepted) == (kind == "store") and ("serde" in accepted) == (kind == "cache")
    assert "conn" not in accepted and "path" not in accepted  # the URL gives the connection


def test_store_options_are_checked_before_the_default_file_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_URL, raising=False)
    with pytest.raises(InvalidConfigError, match=r"'nope', 'neither' are not options of the sqlite store"):
        create_store(nope=1, neither=2)
    with pytest.raises(InvalidConfigError, match=r"'encryption_key' is not an option of the sqlite cache"):
        create_cache(encryption_key=b"k" * 32)
    assert not (tmp_path / DEFAULT_SQLITE_FILE).parent.exists()  # refused before anything was made


def test_accepted_store_and_cache_options_still_reach_them() -> None:
    with create_store("memory://", clock=lambda: 5.0) as store:
        assert store.now() == 5.0
    with create_cache("sqlite://", busy_timeout=1.5) as cache:
        assert cache.backend.busy_timeout == 1.5
