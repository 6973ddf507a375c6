"""Every backend in one table: URL schemes, module, saver class and options.

``create_saver``, the package's lazy imports, the benchmarks and the tests all read this
table, and each backend checks its options through it (``check_backend_options``), once,
with ``core.options``. It depends on the core only and names backends by module path, so
that importing it never needs a driver, and a backend may import it.

Options common to every saver (``serde``, ``encryption_key``, ``close_timeout``,
``read_limits``) are ``SAVER_OPTIONS``; the saver core checks them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .core.lifecycle import ttl_option
from .core.options import (
    Option,
    anything,
    check_options,
    count_from,
    count_or_none,
    flag,
    one_of,
    seconds,
    seconds_or_none,
    seconds_or_zero,
)
from .core.sync import DEFAULT_CLOSE_TIMEOUT
from .core.validate import show
from .errors import InvalidConfigError

if TYPE_CHECKING:
    from .core.saver import UnifiedCheckpointSaver

PACKAGE: Final = __name__.rpartition(".")[0]

# -- defaults (the backends take theirs from here) ------------------------------------------

DEFAULT_BUSY_TIMEOUT: Final = 30.0
DEFAULT_SYNCHRONOUS: Final = "NORMAL"
DEFAULT_SCHEMA: Final = "public"
DEFAULT_MIN_SIZE: Final = 1
DEFAULT_MAX_SIZE: Final = 10
DEFAULT_MAX_QUERIES: Final = 50000
DEFAULT_MAX_INACTIVE_LIFETIME: Final = 300.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_COMMAND_TIMEOUT: Final = 60.0
DEFAULT_PREFIX: Final = "lus"
DEFAULT_SOCKET_TIMEOUT: Final = 5.0
MAX_TTL_SECONDS: Final = 10**10
"""Redis: longest ttl, about 317 years (far beyond, milliseconds overflow)."""

POSTGRES_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


# -- checks only one backend needs ----------------------------------------------------------


def postgres_schema(name: str, value: Any) -> str:
    """A plain PostgreSQL identifier that is not reserved (it is spliced, quoted, into DDL)."""
    if not isinstance(value, str) or not POSTGRES_IDENTIFIER.fullmatch(value):
        raise InvalidConfigError(
            f"{name} must be a plain identifier (letters, digits, underscores; at most 63 "
            f"characters, not starting with a digit), not {show(value)}"
        )
    if value.lower().startswith("pg_"):
        raise InvalidConfigError(f"{name} {value!r}: names starting with 'pg_' are reserved")
    return value


def redis_prefix(name: str, value: Any) -> str:
    """Non-empty, without braces (they would break the per-thread hash tag)."""
    if not isinstance(value, str) or not value or "{" in value or "}" in value:
        raise InvalidConfigError(
            f"{name} must be a non-empty string without '{{' or '}}' "
            f"(they would break the per-thread hash tag), not {show(value)}"
        )
    return value


def _postgres_pool_sizes(options: Mapping[str, Any]) -> None:
    if options["min_size"] > options["max_size"]:
        raise InvalidConfigError(
            f"min_size must be <= max_size (got min_size={options['min_size']}, "
            f"max_size={options['max_size']})"
        )


# -- the table ------------------------------------------------------------------------------


SAVER_OPTIONS: Final[tuple[Option, ...]] = (
    Option("serde", "SerializerProtocol or None", None, anything, "how values are serialized"),
    Option("encryption_key", "bytes, str or None", None, anything, "encrypt every stored value"),
    Option("close_timeout", "seconds >= 0", DEFAULT_CLOSE_TIMEOUT, seconds_or_zero,
           "how long close lets calls in flight finish"),
    Option("read_limits", "ReadLimits or None", None, anything, "bounds on decoding stored data"),
    Option("ttl", "seconds, timedelta or None", None, ttl_option,
           "threads expire this long after their last write (the saver checks it against "
           "the backend's longest)"),
    Option("refresh_on_read", "bool", False, flag, "reads also restart the ttl"),
    Option("clock", "callable or None", None, anything, "epoch seconds; time.time by default"),
    Option("sweep_interval", "seconds or None", None, seconds_or_none,
           "sweep expired threads on a background thread this often"),
)


@dataclass(frozen=True)
class BackendEntry:
    """One backend: where it lives and what its saver takes."""

    name: str
    schemes: tuple[str, ...]
    """URL schemes that open it (``create_saver``)."""
    example_url: str
    module: str
    saver: str
    """The saver class's name, exported by the package and by ``module``."""
    backend: str
    """The ``core.backend.Backend`` subclass's name in ``module``."""
    options: tuple[Option, ...]
    """Keyword options of the saver besides ``SAVER_OPTIONS``."""
    conn_of_url: Callable[[str], Any] | None = None
    """The saver's first argument, from a URL of this backend (None: it takes none)."""
    check_together: Callable[[Mapping[str, Any]], None] | None = None
    """A rule across options (checked after each one is)."""
    namespace_option: str | None = None
    """The option that keeps one saver's data apart from others' in the same database or
    server (tests and benchmarks give each their own)."""
    store_module: str = ""
    """Where the long-term memory store and the node cache of this backend live."""
    store: str = ""
    """The ``core.store.UnifiedStore`` subclass's name in ``store_module``."""
    cache: str = ""
    """The ``core.cache.UnifiedCache`` subclass's name in ``store_module``."""

    def store_class(self) -> Callable[..., Any]:
        """The store class (same first argument as the saver's)."""
        return getattr(importlib.import_module(self.store_module), self.store)  # type: ignore[no-any-return]

    def cache_class(self) -> Callable[..., Any]:
        """The node cache class (same first argument as the saver's)."""
        return getattr(importlib.import_module(self.store_module), self.cache)  # type: ignore[no-any-return]

    def saver_class(self) -> Callable[..., UnifiedCheckpointSaver]:
        """The saver class (imports the backend module and with it its driver); typed as
        a callable, since each takes its own first argument."""
        saver: Callable[..., UnifiedCheckpointSaver] = getattr(
            importlib.import_module(self.module), self.saver
        )
        return saver

    def option(self, name: str) -> Option:
        for option in (*self.options, *SAVER_OPTIONS):
            if option.name == name:
                return option
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        return {option.name: option.default for option in self.options}

    def alias_urls(self) -> list[str]:
        """Example URLs of the other schemes (``unix://`` is a socket path, not shown)."""
        return [f"{scheme}://..." for scheme in self.schemes[1:] if scheme != "unix"]


def _sqlite_path(url: str) -> str:
    """``sqlite:///relative.db`` -> relative.db; ``sqlite:////abs/path.db`` -> /abs/path.db;
    ``sqlite://`` -> an in-memory database."""
    path = url[len("sqlite://") :]
    if (path.startswith("/") and not path.startswith("//")) or path.startswith("//"):
        path = path[1:]
    return path or ":memory:"


def _same_url(url: str) -> str:
    return url


BACKENDS: Final[tuple[BackendEntry, ...]] = (
    BackendEntry(
        name="memory",
        schemes=("memory",),
        example_url="memory://",
        module=f"{PACKAGE}.backends.memory",
        store_module=f"{PACKAGE}.backends.memory_store",
        store="MemoryStore",
        cache="MemoryCache",
        saver="MemorySaver",
        backend="MemoryBackend",
        options=(
            Option("max_threads", "int >= 1 or None", None, count_or_none(1),
                   "keep at most this many threads, evicting the least recently used"),
        ),
    ),
    BackendEntry(
        name="sqlite",
        schemes=("sqlite",),
        example_url="sqlite:///path",
        module=f"{PACKAGE}.backends.sqlite",
        store_module=f"{PACKAGE}.backends.sqlite.store",
        store="SQLiteStore",
        cache="SQLiteCache",
        saver="SQLiteSaver",
        backend="SQLiteBackend",
        options=(
            Option("busy_timeout", "seconds >= 0", DEFAULT_BUSY_TIMEOUT, seconds_or_zero,
                   "how long a write waits for another connection's lock"),
            Option("synchronous", "OFF, NORMAL, FULL or EXTRA", DEFAULT_SYNCHRONOUS,
                   one_of("OFF", "NORMAL", "FULL", "EXTRA"), "SQLite's durability mode"),
        ),
        conn_of_url=_sqlite_path,
    ),
    BackendEntry(
        name="postgres",
        schemes=("postgresql", "postgres"),
        example_url="postgresql://...",
        module=f"{PACKAGE}.backends.postgres",
        store_module=f"{PACKAGE}.backends.postgres.store",
        store="PostgresStore",
        cache="PostgresCache",
        saver="PostgresSaver",
        backend="PostgresBackend",
        options=(
            Option("schema", "identifier", DEFAULT_SCHEMA, postgres_schema, "schema of the tables"),
            Option("prepared_statements", "bool", True, flag, "False behind PgBouncer"),
            Option("min_size", "int >= 0", DEFAULT_MIN_SIZE, count_from(0), "pool size"),
            Option("max_size", "int >= 1", DEFAULT_MAX_SIZE, count_from(1), "pool size"),
            Option("max_queries", "int >= 1", DEFAULT_MAX_QUERIES, count_from(1),
                   "queries before a connection is replaced"),
            Option("max_inactive_connection_lifetime", "seconds >= 0",
                   DEFAULT_MAX_INACTIVE_LIFETIME, seconds_or_zero, "idle connections close after"),
            Option("connect_timeout", "seconds", DEFAULT_CONNECT_TIMEOUT, seconds,
                   "to open a connection"),
            Option("command_timeout", "seconds or None", DEFAULT_COMMAND_TIMEOUT, seconds_or_none,
                   "per statement"),
            Option("synchronous_commit", "bool", True, flag, "False: commit without a WAL flush"),
        ),
        conn_of_url=_same_url,
        check_together=_postgres_pool_sizes,
        namespace_option="schema",
    ),
    BackendEntry(
        name="redis",
        schemes=("redis", "rediss", "unix"),
        example_url="redis://...",
        module=f"{PACKAGE}.backends.redis",
        store_module=f"{PACKAGE}.backends.redis.store",
        store="RedisStore",
        cache="RedisCache",
        saver="RedisSaver",
        backend="RedisBackend",
        options=(
            Option("prefix", "str without braces", DEFAULT_PREFIX, redis_prefix, "of every key"),
            Option("refresh_ttl_on_read", "bool", False, flag,
                   "the saver's refresh_on_read, by its earlier name"),
            Option("cluster", "bool", False, flag, "talk to Redis Cluster"),
            Option("socket_timeout", "seconds or None", DEFAULT_SOCKET_TIMEOUT, seconds_or_none,
                   "per attempt to reach the server"),
        ),
        conn_of_url=_same_url,
        namespace_option="prefix",
    ),
)

BY_NAME: Final[dict[str, BackendEntry]] = {entry.name: entry for entry in BACKENDS}
BY_SCHEME: Final[dict[str, BackendEntry]] = {
    scheme: entry for entry in BACKENDS for scheme in entry.schemes
}
SAVER_MODULES: Final[dict[str, str]] = {
    **{entry.saver: entry.module for entry in BACKENDS},
    **{entry.store: entry.store_module for entry in BACKENDS},
    **{entry.cache: entry.store_module for entry in BACKENDS},
}
"""Saver, store and cache class name -> module, for the package's lazy imports."""


def backend_named(name: str) -> BackendEntry:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BY_NAME)}") from None


def backend_for_scheme(scheme: str) -> BackendEntry:
    """The backend a URL scheme opens; ValueError listing the known ones."""
    entry = BY_SCHEME.get(scheme.lower())
    if entry is None:
        known = ", ".join(url for e in BACKENDS for url in (e.example_url, *e.alias_urls()))
        raise ValueError(f"unknown saver URL scheme {scheme!r}; known: {known}")
    return entry


def check_backend_options(backend: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every option of ``backend``: the given ones checked, the rest their defaults.
    The one check of backend options; each backend's constructor calls it."""
    entry = backend_named(backend)
    options = check_options(entry.options, given)
    if entry.check_together is not None:
        entry.check_together(options)
    return options
