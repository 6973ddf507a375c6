"""Where PostgresBackend's statements run: pools, retries and error translation.

There is one pool per event loop (``LoopLocal``) because asyncpg pools belong to a loop;
our own pools skip asyncpg's per-release reset query and keep cached generic plans. A
given ``asyncpg.Pool`` is used as it is, on its own loop (``core.sync.UserClient``,
``ForeignLoop.HAND_OFF``). Every
operation is idempotent, so one whose connection the server dropped (restart,
pg_terminate_backend, a pooler recycling its server side) is retried on a fresh one.
Errors name the server, never the password. Behind a transaction-pooling PgBouncer,
``prepared_statements=False`` turns asyncpg's statement cache off; nothing else here
needs a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from ...core.backend import LoopLocal
from ...core.observability import CONNECTION_LOST, CONNECTION_RECOVERED, emit
from ...core.sync import ForeignLoop, UserClient
from ...errors import (
    BackendUnavailableError,
    CorruptDataError,
    InvalidConfigError,
    SaverClosedError,
)
from ...registry import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_INACTIVE_LIFETIME,
    DEFAULT_MAX_QUERIES,
    DEFAULT_MAX_SIZE,
    DEFAULT_MIN_SIZE,
)
from .sql import GENERIC_PLANS

try:
    import asyncpg
except ImportError:  # pragma: no cover - exercised only without the extra
    asyncpg = None


T = TypeVar("T")
Connection = Any  # asyncpg.Connection (asyncpg ships no type hints)
Operation = Callable[[Connection], Awaitable[T]]
SchemaSetup = Callable[[bool], Awaitable[None]]
"""Makes sure the schema exists before an operation; ``True`` when its tables vanished."""

# Tries per operation when the server dropped the connection under us.
CONNECTION_ATTEMPTS: Final = 3
POOL_CLOSE_TIMEOUT: Final = 5.0
# PostgreSQL's btree holds an index entry of at most this many bytes (a third of a page,
# after compressing each column): the thread id and the row key together must fit.
BTREE_ENTRY_MAX: Final = 2704


@dataclasses.dataclass(frozen=True)
class PoolSettings:
    """How each pool this library opens is sized, recycled and timed out (asyncpg pool
    options), as the registry checked them; its defaults are the registry's. A given
    asyncpg.Pool keeps its own."""

    min_size: int = DEFAULT_MIN_SIZE
    max_size: int = DEFAULT_MAX_SIZE
    max_queries: int = DEFAULT_MAX_QUERIES
    max_inactive_connection_lifetime: float = DEFAULT_MAX_INACTIVE_LIFETIME
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT

    @classmethod
    def of(cls, checked: dict[str, Any]) -> PoolSettings:
        """The pool settings among a backend's checked options."""
        return cls(**{f.name: checked[f.name] for f in dataclasses.fields(cls)})


def pool_settings_for(
    conn: Any,
    what: str,
    *,
    prepared_statements: bool,
    command_timeout: float | None,
    connect_options: dict[str, Any],
    **sizes: float | None,
) -> PoolSettings:
    """The PoolSettings of the pool options a caller set (None, or command_timeout's
    default, is "not set"; the rest keep the registry's defaults). Built on an existing
    asyncpg.Pool, ``what`` (a saver, a store, a cache) takes none of them."""
    chosen = {name: value for name, value in sizes.items() if value is not None}
    if asyncpg is not None and isinstance(conn, asyncpg.Pool):
        set_here = sorted(
            [
                *chosen,
                *([] if command_timeout == DEFAULT_COMMAND_TIMEOUT else ["command_timeout"]),
                *(name for name, value in connect_options.items() if value is not None),
                *([] if prepared_statements else ["prepared_statements"]),
            ]
        )
        if set_here:
            raise InvalidConfigError(
                f"{', '.join(set_here)} configure pools this {what} makes; a {what} built "
                "on an existing asyncpg.Pool uses that pool's own settings"
            )
    return PoolSettings(command_timeout=command_timeout, **chosen)  # type: ignore[arg-type]


class Dsn:
    """What a connection string may show: where it points, never its password."""

    def __init__(self, dsn: str) -> None:
        if not isinstance(dsn, str) or not re.match(r"postgres(ql)?://", dsn):
            raise InvalidConfigError(
                "the connection string must be a postgresql:// URL "
                "(e.g. postgresql://user@127.0.0.1:5432/mydb)"
            )
        parts = urlsplit(dsn)
        netloc = parts.netloc
        credentials, _, hosts = netloc.rpartition("@")
        user, _, password = credentials.partition(":")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.hosts = query.get("host") or unquote(hosts) or "localhost"
        if query.get("port"):
            self.hosts = f"{self.hosts}:{query['port']}"
        self.database = query.get("dbname") or query.get("database") or unquote(
            parts.path.lstrip("/")
        )
        self.user = query.get("user") or unquote(user)
        self.secrets = [s for s in {password, unquote(password), query.get("password", "")} if s]
        self.secrets.append(dsn)

    def describe(self) -> str:
        where = f"PostgreSQL at {self.hosts}"
        if self.database:
            where += f", database {self.database!r}"
        if self.user:
            where += f", user {self.user!r}"
        return where

    def scrub(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


async def _prefer_generic_plans(connection: Connection) -> None:
    await connection.execute(GENERIC_PLANS)


async def _keep_session(connection: Connection) -> None:
    """Pool reset hook: we leave no session state behind, so skip asyncpg's reset query
    (a round trip on every release). asyncpg still rolls back an unfinished transaction."""


def connection_lost(exc: BaseException, connection: Connection | None) -> bool:
    """Did this error come from the server or network dropping the connection?"""
    if isinstance(exc, (OSError, asyncpg.PostgresConnectionError)):
        return True
    if isinstance(
        exc,
        (
            asyncpg.AdminShutdownError,
            asyncpg.CrashShutdownError,
            asyncpg.CannotConnectNowError,
            asyncpg.InvalidCachedStatementError,
        ),
    ):
        return True
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        # The server's goodbye (e.g. pg_terminate_backend) arrived on an idle connection
        # and left asyncpg's protocol out of step: that connection is done for.
        return True
    if isinstance(exc, asyncpg.InterfaceError) and connection is not None:
        try:
            return bool(connection.is_closed())
        except asyncpg.InterfaceError:
            return True  # asyncpg already took the closed connection back from us
    return False


def _discard(connection: Connection) -> None:
    """Make sure a broken connection is never handed out again."""
    with contextlib.suppress(Exception):
        connection.terminate()


def _terminate_pool(pool: Any) -> None:
    """Drop a pool whose event loop has stopped (nothing can close it politely)."""
    with contextlib.suppress(Exception):
        pool.terminate()


async def fetch_stored(conn: Connection, statement: str, args: Sequence[Any], where: str) -> list[Any]:
    """Rows of a read; a stored value the server itself cannot process (a planted
    channel_versions key holding \\u0000, which json_each_text refuses) is
    CorruptDataError, not a driver error."""
    try:
        return list(await conn.fetch(statement, *args))
    except asyncpg.exceptions.DataError as exc:
        if not isinstance(exc, asyncpg.PostgresError):
            raise  # a client-side argument error: bad input, handled by Connections.run
        raise CorruptDataError(f"{where}: PostgreSQL cannot read a stored row ({exc})") from None


def too_long(
    operation: str, exc: BaseException, named: Iterable[tuple[str, str | None]]
) -> InvalidConfigError:
    """The error for a key PostgreSQL cannot index, naming the longest id that went in."""
    sizes = sorted(
        ((len(value.encode()), what) for what, value in named if value),
        reverse=True,
    )
    what, size = (sizes[0][1], sizes[0][0]) if sizes else ("key", 0)
    return InvalidConfigError(
        f"{operation}: the {what} is too long for PostgreSQL ({size} bytes; a btree index "
        f"entry holds at most {BTREE_ENTRY_MAX} bytes after compression, for the thread id "
        f"and the row's key together): use a shorter {what} ({str(exc).splitlines()[0]})"
    )


class Connections:
    """A given asyncpg.Pool, or a pool per event loop opened from a connection string."""

    def __init__(
        self,
        conn: str | Any,
        *,
        prepared_statements: bool,
        pool_settings: PoolSettings,
        connect_options: dict[str, Any],
    ) -> None:
        self.external: Any = None
        self._user_pool: UserClient[Any] | None = None
        self.dsn: Dsn | None = None
        self.conn_string: str | None = None
        if isinstance(conn, asyncpg.Pool):
            self.external = conn
            self._user_pool = UserClient(
                conn, ForeignLoop.HAND_OFF, home=getattr(conn, "_loop", None),
                kind="an asyncpg pool",
            )
        elif isinstance(conn, str):
            self.dsn = Dsn(conn)
            self.conn_string = conn
        else:
            raise InvalidConfigError(
                f"conn must be a postgresql:// connection string or an asyncpg.Pool, "
                f"not {type(conn).__name__}"
            )
        options = dict(connect_options)
        known = set(inspect.signature(asyncpg.connect).parameters) - {"dsn", "loop"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidConfigError(f"unknown PostgreSQL connection option(s): {', '.join(unknown)}")
        if self.dsn is not None and options.get("password"):
            self.dsn.secrets.append(str(options["password"]))
        self.prepared_statements = prepared_statements
        self.settings = pool_settings
        self._connect_options = options
        self._pools: LoopLocal[Any] = LoopLocal(self._open_pool, self._close_pool, _terminate_pool)
        self.owner = "PostgresBackend"
        """What SaverClosedError names (the backend sets its repr)."""

    def where(self) -> str:
        return "PostgreSQL (the given pool)" if self.dsn is None else self.dsn.describe()

    def _scrub(self, text: str) -> str:
        return text if self.dsn is None else self.dsn.scrub(text)

    def _unavailable(self, doing: str, exc: BaseException) -> BackendUnavailableError:
        reason = self._scrub(str(exc)) or type(exc).__name__
        return BackendUnavailableError(f"{doing} {self.where()}: {type(exc).__name__}: {reason}")

    async def _open_pool(self) -> Any:
        s = self.settings
        try:
            return await asyncpg.create_pool(
                self.conn_string,
                statement_cache_size=100 if self.prepared_statements else 0,
                timeout=float(s.connect_timeout),
                command_timeout=s.command_timeout,
                reset=_keep_session,
                init=_prefer_generic_plans if self.prepared_statements else None,
                min_size=s.min_size,
                max_size=s.max_size,
                max_queries=s.max_queries,
                max_inactive_connection_lifetime=s.max_inactive_connection_lifetime,
                **self._connect_options,
            )
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise self._unavailable("cannot connect to", exc) from None
        except (ValueError, TypeError) as exc:
            raise InvalidConfigError(f"bad PostgreSQL connection settings: {self._scrub(str(exc))}") from None

    @staticmethod
    async def _close_pool(pool: Any) -> None:
        try:
            await asyncio.wait_for(pool.close(), POOL_CLOSE_TIMEOUT)
        except Exception:
            pool.terminate()

    async def aclose(self) -> None:
        await self._pools.aclose()

    async def run(self, operation: Operation[T], setup: SchemaSetup | None) -> T:
        """Run one operation on a pooled connection, after ``setup(False)``, retrying on
        a fresh connection if the server dropped it, and naming the server (never the
        password). If the tables vanished under us (another process's drop_all, a DBA),
        ``setup(True)`` sets the schema up again, once, and the operation is retried."""
        if self._user_pool is not None and not self._user_pool.at_home():
            return await self._user_pool.run_at_home(self.run(operation, setup))
        if setup is not None:
            await setup(False)
        recreated = False
        lost_at: float | None = None
        for attempt in range(1, CONNECTION_ATTEMPTS + 1):
            pool = self.external if self.external is not None else await self._pools.get()
            try:
                connection = await pool.acquire()
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                raise self._unavailable("cannot connect to", exc) from None
            except asyncpg.InterfaceError as exc:  # "pool is closing" / "pool is closed"
                if self.external is None:  # our pools close only when the saver does
                    raise SaverClosedError(self.owner) from None
                raise self._unavailable("cannot use the given pool for", exc) from None
            tables_gone = False
            try:
                result = await operation(connection)
                if lost_at is not None:
                    emit(
                        CONNECTION_RECOVERED, "postgres", server=self.where(), attempt=attempt,
                        duration_ms=round((time.perf_counter() - lost_at) * 1000, 3),
                    )
                return result
            except TimeoutError as exc:
                raise BackendUnavailableError(
                    f"{self.where()} did not answer within command_timeout="
                    f"{self.settings.command_timeout}s"
                ) from exc
            except asyncpg.UndefinedTableError:
                if setup is None or recreated:
                    raise
                tables_gone = True
            except asyncpg.exceptions.DataError as exc:
                if not str(exc).startswith("invalid input for query argument"):
                    raise
                # asyncpg's client-side refusal to encode an argument: bad input.
                raise InvalidConfigError(f"PostgreSQL cannot take this value: {exc}") from None
            except Exception as exc:
                if not connection_lost(exc, connection):
                    raise
                _discard(connection)
                await pool.expire_connections()  # its siblings were most likely dropped too
                if lost_at is None:
                    lost_at = time.perf_counter()
                # The error's type only: its message may quote a statement's arguments.
                emit(
                    CONNECTION_LOST, "postgres", server=self.where(), attempt=attempt,
                    error=type(exc).__name__, retrying=attempt < CONNECTION_ATTEMPTS,
                )
                if attempt == CONNECTION_ATTEMPTS:
                    # Every kind of lost connection, asyncpg's protocol left out of step
                    # by a terminated backend included, ends as the saver's own error.
                    raise self._unavailable("lost the connection to", exc) from None
            finally:
                with contextlib.suppress(Exception):
                    await pool.release(connection)
            if tables_gone and setup is not None:
                recreated = True
                await setup(True)
        raise AssertionError("unreachable")  # pragma: no cover
