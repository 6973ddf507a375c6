"""One PostgreSQL schema as a backend uses it, shared by the saver's backend and the
store's: the options checked once, the connections (``connection.Connections``), the
versioned migrations run once before the first operation (and again if the tables
vanished), and the public classes' options turned into a backend in one place."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final, Generic, TypeVar

from ...core.health import BackendProbe, elapsed_ms
from ...errors import BackendUnavailableError, missing_extra
from ...registry import DEFAULT_SCHEMA, check_backend_options
from .connection import Connection, Connections, Operation, PoolSettings, pool_settings_for
from .migrations import SCHEMA_VERSION, migrate, quote_schema, stored_version

try:
    import asyncpg
except ImportError:  # pragma: no cover - exercised only without the extra
    asyncpg = None

T = TypeVar("T")
S = TypeVar("S")
D = TypeVar("D", bound="PostgresDatabase[Any]")

POOL_OPTIONS: Final = (
    "min_size",
    "max_size",
    "max_queries",
    "max_inactive_connection_lifetime",
    "connect_timeout",
)
"""The pool options of the public classes' signatures (None: the registry's default)."""

# A health check's statements: one round trip by the simple query protocol (nothing to
# prepare first), then the server's version.
PING: Final = "SELECT 1"
SHOW_SERVER_VERSION: Final = "SHOW server_version"


class PostgresDatabase(Generic[S]):
    """The connections to one schema, set up on first use, closed once; ``S`` is the
    subclass's own statements, bound to the schema."""

    statements_class: ClassVar[Callable[..., Any]]
    """Makes ``S`` from the quoted schema and ``synchronous_commit=``."""
    _statements: S

    def __init__(
        self,
        conn: str | Any,
        *,
        schema: str = DEFAULT_SCHEMA,
        prepared_statements: bool = True,
        pool_settings: PoolSettings | None = None,
        synchronous_commit: bool = True,
        connect_options: dict[str, Any] | None = None,
    ) -> None:
        if asyncpg is None:
            raise missing_extra("postgres", "asyncpg")
        checked = check_backend_options(
            "postgres",
            {
                "schema": schema,
                "prepared_statements": prepared_statements,
                "synchronous_commit": synchronous_commit,
                **dataclasses.asdict(pool_settings or PoolSettings()),
            },
        )
        pool_settings = PoolSettings.of(checked)
        self.schema = schema
        self._quoted = quote_schema(schema)
        self._connections = Connections(
            conn,
            prepared_statements=prepared_statements,
            pool_settings=pool_settings,
            connect_options=connect_options or {},
        )
        self._connections.owner = repr(self)
        self.prepared_statements = prepared_statements
        self.connect_timeout = float(pool_settings.connect_timeout)
        self.command_timeout = pool_settings.command_timeout
        self.synchronous_commit = synchronous_commit
        self._ready = False
        self._statements = self.statements_class(self._quoted, synchronous_commit=synchronous_commit)

    def __repr__(self) -> str:
        dsn = self._connections.dsn
        if dsn is None:
            return f"{type(self).__name__}(pool=<asyncpg.Pool>, schema={self.schema!r})"
        return (
            f"{type(self).__name__}(hosts={dsn.hosts!r}, database={dsn.database!r}, "
            f"schema={self.schema!r})"
        )

    async def _run(self, operation: Operation[T], *, setup: bool = True) -> T:
        """Run one operation (``connection.Connections.run``), with the schema set up
        first (and again, once, if its tables vanished) unless ``setup`` is False."""
        return await self._connections.run(operation, self._set_up if setup else None)

    async def _set_up(self, tables_gone: bool) -> None:
        if tables_gone:
            self._ready = False
        if not self._ready:
            await self.setup()

    async def setup(self) -> None:
        """Create or upgrade the schema: the saver's tables and the store's, one set of
        versioned migrations (idempotent; concurrent processes queue on an advisory lock).
        Also runs by itself before the first operation."""
        if self._ready:
            return
        await self._run(self._migrate, setup=False)
        self._ready = True

    async def _migrate(self, conn: Connection) -> None:
        await migrate(conn, self.schema)

    async def aclose(self) -> None:
        await self._connections.aclose()

    async def probe(self, timeout: float) -> BackendProbe:
        """A round trip, the server's version and the schema's, on a pooled connection
        without setting the schema up (nothing is created or migrated)."""

        async def look(conn: Connection) -> tuple[float, str, int]:
            started = time.perf_counter()
            await conn.execute(PING)
            round_trip = elapsed_ms(started)
            version = await conn.fetchval(SHOW_SERVER_VERSION)
            return round_trip, str(version), await stored_version(conn, self.schema)

        try:
            round_trip, version, schema = await asyncio.wait_for(self._run(look, setup=False), timeout)
        except TimeoutError:
            raise BackendUnavailableError(
                f"{self._connections.where()} did not answer within {timeout:g} s"
            ) from None
        return BackendProbe(
            location=f"{self._connections.where()}, schema {self.schema!r}",
            round_trip_ms=round_trip,
            server_version=version,
            schema_version=schema,
            expected_schema_version=SCHEMA_VERSION,
        )


def open_database(cls: type[D], conn: str | Any, what: str, options: Mapping[str, Any]) -> D:
    """A ``cls`` from the options of a public class (a saver, a store, a cache), given as
    the constructor's own keyword arguments (``locals()``: ``schema``,
    ``prepared_statements``, the pool options, ``command_timeout``,
    ``synchronous_commit``, ``ssl`` and the ``connect_options`` dict), checked as
    ``connection.pool_settings_for`` does."""
    if asyncpg is None:
        raise missing_extra("postgres", "asyncpg")
    connect_options: dict[str, Any] = options["connect_options"]
    if options["ssl"] is not None:
        connect_options["ssl"] = options["ssl"]
    prepared_statements: bool = options["prepared_statements"]
    pool_settings = pool_settings_for(
        conn,
        what,
        prepared_statements=prepared_statements,
        command_timeout=options["command_timeout"],
        connect_options=connect_options,
        **{name: options[name] for name in POOL_OPTIONS},
    )
    return cls(
        conn,
        schema=options["schema"],
        prepared_statements=prepared_statements,
        pool_settings=pool_settings,
        synchronous_commit=options["synchronous_commit"],
        connect_options=connect_options,
    )
