"""The backend registry: every option of every backend is checked the same way, whether
the saver comes from ``create_saver`` or from its class, and the table agrees with the
savers' signatures. Building a saver opens no connection, so no server is needed."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from typing import Any

import pytest

from langgraph_unified_store import InvalidConfigError, create_saver
from langgraph_unified_store.core import options as checks
from langgraph_unified_store.registry import (
    BACKENDS,
    MAX_TTL_SECONDS,
    SAVER_MODULES,
    SAVER_OPTIONS,
    BackendEntry,
    backend_for_scheme,
    backend_named,
    check_backend_options,
    postgres_schema,
    redis_prefix,
)

from .support import POSTGRES_DSN, REDIS_URL

URLS = {"memory": "memory://", "sqlite": "sqlite://", "postgres": POSTGRES_DSN, "redis": REDIS_URL}
CONNS: dict[str, tuple[Any, ...]] = {
    "memory": (),
    "sqlite": (":memory:",),
    "postgres": (POSTGRES_DSN,),
    "redis": (REDIS_URL,),
}

NAN, INF = math.nan, math.inf
TIMEOUT_BAD = [0, -1, True, False, NAN, INF, "5"]
# Values each option must refuse, by option name (the same name means the same rule).
# PostgresSaver takes None for its pool options and connect_timeout: "the default".
BAD: dict[str, list[Any]] = {
    "close_timeout": [-1, True, NAN, INF, "5", None],
    "busy_timeout": [-1, True, NAN, INF, "5", None],
    "synchronous": ["fast", "", 1, None],
    "schema": ["1abc", "a-b", "pg_catalog", "x" * 64, "", 1, None],
    "prepared_statements": [1, 0, "yes", None],
    "min_size": [-1, True, 1.5, "1"],
    "max_size": [0, True, 1.5, "10"],
    "max_queries": [0, True, 2.5],
    "max_inactive_connection_lifetime": [-1, True, NAN, INF],
    "connect_timeout": TIMEOUT_BAD,
    "command_timeout": TIMEOUT_BAD,
    "synchronous_commit": [1, "no", None],
    "prefix": ["", "a{b", "a}b", 7, None],
    "ttl": [0, -1, True, NAN, INF, MAX_TTL_SECONDS * 10, "60"],
    "refresh_ttl_on_read": [1, "yes", None],
    "refresh_on_read": [1, "yes", None],
    "sweep_interval": [0, -1, True, NAN, INF, "5"],
    "max_threads": [0, -1, True, 1.5, "10"],
    "cluster": [1, "yes", None],
    "socket_timeout": TIMEOUT_BAD,
}
# A value each option accepts besides its default, what the saver keeps of it, and where.
def _pool(name: str) -> Any:
    return lambda saver: getattr(saver.backend._connections.settings, name)


def _on_backend(name: str) -> Any:
    return lambda saver: getattr(saver.backend, name)


GOOD: dict[str, tuple[Any, Any, Any]] = {
    "close_timeout": (0, 0.0, lambda saver: saver.close_timeout),
    "busy_timeout": (0.5, 0.5, _on_backend("busy_timeout")),
    "synchronous": ("full", "FULL", _on_backend("synchronous")),
    "schema": ("lus_registry", "lus_registry", _on_backend("schema")),
    "prepared_statements": (False, False, _on_backend("prepared_statements")),
    "min_size": (0, 0, _pool("min_size")),
    "max_size": (3, 3, _pool("max_size")),
    "max_queries": (7, 7, _pool("max_queries")),
    "max_inactive_connection_lifetime": (0, 0.0, _pool("max_inactive_connection_lifetime")),
    "connect_timeout": (2, 2.0, _on_backend("connect_timeout")),
    "command_timeout": (None, None, _on_backend("command_timeout")),
    "synchronous_commit": (False, False, _on_backend("synchronous_commit")),
    "prefix": ("lus_registry", "lus_registry", _on_backend("prefix")),
    "ttl": (60, 60.0, lambda saver: saver.backend.lifecycle.ttl),
    "refresh_ttl_on_read": (True, True, lambda saver: saver.backend.lifecycle.refresh_on_read),
    "refresh_on_read": (True, True, lambda saver: saver.backend.lifecycle.refresh_on_read),
    "sweep_interval": (30, True, lambda saver: saver._sweeper is not None),
    "max_threads": (100, 100, _on_backend("max_threads")),
    "cluster": (False, False, _on_backend("cluster")),
    "socket_timeout": (None, None, lambda saver: saver.backend._connection.socket_timeout),
}


def _checked_options(entry: BackendEntry) -> Iterator[str]:
    for option in (*entry.options, *SAVER_OPTIONS):
        if option.check is not checks.anything:
            yield option.name


CASES = [(entry.name, name) for entry in BACKENDS for name in _checked_options(entry)]
BAD_CASES = [(backend, name, value) for backend, name in CASES for value in BAD[name]]


def test_every_checked_option_has_test_values() -> None:
    names = {name for _, name in CASES}
    assert names == set(BAD) == set(GOOD)


@pytest.mark.parametrize(("backend", "name", "value"), BAD_CASES)
def test_a_bad_value_is_refused_through_create_saver(backend: str, name: str, value: Any) -> None:
    with pytest.raises(InvalidConfigError, match=name):
        create_saver(URLS[backend], **{name: value})


@pytest.mark.parametrize(("backend", "name", "value"), BAD_CASES)
def test_a_bad_value_is_refused_by_the_saver_class(backend: str, name: str, value: Any) -> None:
    saver_class = backend_named(backend).saver_class()
    with pytest.raises(InvalidConfigError, match=name):
        saver_class(*CONNS[backend], **{name: value})


@pytest.mark.parametrize(("backend", "name"), CASES)
def test_a_good_value_is_kept_both_ways(backend: str, name: str) -> None:
    given, kept, read = GOOD[name]
    for saver in (
        create_saver(URLS[backend], **{name: given}),
        backend_named(backend).saver_class()(*CONNS[backend], **{name: given}),
    ):
        try:
            assert read(saver) == kept
        finally:
            saver.close()


def test_postgres_and_redis_refuse_true_as_a_timeout_alike() -> None:
    """Once, Redis refused ``True`` as a timeout and PostgreSQL took it as 1 second."""
    with pytest.raises(InvalidConfigError, match="command_timeout"):
        create_saver(POSTGRES_DSN, command_timeout=True)
    with pytest.raises(InvalidConfigError, match="socket_timeout"):
        create_saver(REDIS_URL, socket_timeout=True)


def test_pool_sizes_are_checked_together() -> None:
    with pytest.raises(InvalidConfigError, match="min_size must be <= max_size"):
        create_saver(POSTGRES_DSN, min_size=5, max_size=2)
    with pytest.raises(InvalidConfigError, match="min_size must be <= max_size"):
        check_backend_options("postgres", {"min_size": 11})


def test_unknown_options_are_named() -> None:
    with pytest.raises(InvalidConfigError, match="no_such"):
        check_backend_options("redis", {"no_such": 1})
    with pytest.raises(InvalidConfigError, match="no_such"):
        create_saver(REDIS_URL, no_such=1)


@pytest.mark.parametrize("entry", BACKENDS, ids=lambda e: e.name)
def test_the_table_matches_the_savers_signatures(entry: BackendEntry) -> None:
    """Each saver takes each of its options, with the table's default (or None, meaning it)."""
    parameters = inspect.signature(entry.saver_class().__init__).parameters
    for option in (*entry.options, *SAVER_OPTIONS):
        if entry.name == "memory" and option in SAVER_OPTIONS:
            continue  # MemorySaver passes **options on to the core
        assert option.name in parameters or entry.name != "postgres", option.name
        if option.name in parameters:
            assert parameters[option.name].default in (option.default, None), option.name
    assert check_backend_options(entry.name, {}) == entry.defaults()


def test_schemes_and_lazy_imports_come_from_the_table() -> None:
    import langgraph_unified_store as package

    for entry in BACKENDS:
        for scheme in entry.schemes:
            assert backend_for_scheme(scheme.upper()) is entry
        assert SAVER_MODULES[entry.saver] == entry.module
        assert getattr(package, entry.saver) is entry.saver_class()
    with pytest.raises(ValueError, match="'mysql'"):
        backend_for_scheme("mysql")


def test_backend_specific_checks_name_the_option() -> None:
    assert postgres_schema("schema", "Lus_1") == "Lus_1"
    assert redis_prefix("prefix", "app:lus") == "app:lus"
    with pytest.raises(InvalidConfigError, match="reserved"):
        postgres_schema("schema", "PG_x")
