"""The public PostgreSQL saver: options in, a PostgresBackend under the shared core."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

from ...core.lifecycle import Clock
from ...core.limits import ReadLimits
from ...core.saver import UnifiedCheckpointSaver
from ...core.sync import DEFAULT_CLOSE_TIMEOUT
from ...registry import DEFAULT_COMMAND_TIMEOUT, DEFAULT_SCHEMA
from .backend import PostgresBackend
from .database import open_database


class PostgresSaver(UnifiedCheckpointSaver):
    """A LangGraph checkpointer on PostgreSQL (asyncpg), for sync and async graphs.

    ``PostgresSaver("postgresql://user@host/db")`` (or ``PostgresSaver.from_conn_string``)
    opens a connection pool per event loop on first use: one for the async API on your
    loop, one for the blocking API on the saver's private I/O loop. Calls from different
    threads or tasks run side by side on the pool; there is no saver-wide lock. Use it with
    ``with`` / ``async with`` (setup on entry, pools closed on exit), or call ``close()``.

    Options:

    - ``schema``: the PostgreSQL schema for the tables (created if missing), so several
      applications can share one database. Tables are named ``lus_*``, so even "public"
      never collides with LangGraph's own saver.
    - ``prepared_statements=False`` for PgBouncer (or any pooler) in *transaction* or
      *statement* pooling mode, which cannot keep named prepared statements: it sets
      asyncpg's ``statement_cache_size=0``. Listing pages by key and every lock is
      transaction-scoped, so nothing else needs a session. Pass ``server_settings`` only
      if the pooler accepts them (PgBouncer: ``ignore_startup_parameters``).
    - ``min_size``, ``max_size``, ``max_queries``, ``max_inactive_connection_lifetime``:
      each pool's size and recycling (asyncpg pool options).
    - ``connect_timeout`` (seconds to open a connection) and ``command_timeout`` (seconds
      per statement, None for no limit): a call that cannot reach the server raises
      ``BackendUnavailableError`` within them. A connection the server dropped (restart,
      ``pg_terminate_backend``, failover) is replaced and the call retried.
    - ``synchronous_commit=False`` makes each write commit without waiting for its WAL
      flush (PostgreSQL's ``synchronous_commit = off``, for this saver's transactions
      only): writes get several times faster where a disk flush is slow, and a *server*
      crash may lose the last fraction of a second of checkpoints (never corrupting
      anything). The default keeps every returned write durable.
    - ``ssl`` and any other ``asyncpg.connect`` option (``password``, ``server_settings``,
      ``direct_tls``, ...) as keyword arguments; ``sslmode`` in the URL works too.
    - ``serde`` / ``encryption_key`` / ``close_timeout`` / ``read_limits`` / ``ttl`` /
      ``refresh_on_read`` / ``clock`` / ``sweep_interval``: as for every saver of this
      library (a thread's times and expiry live in the ``threads`` table).

    Built from an existing ``asyncpg.Pool`` instead, the saver uses only that pool, which
    stays yours to close, with the pool's own timeouts. A pool belongs to the event loop
    that made it: async calls on that loop use it directly; calls made elsewhere (the
    blocking API from a worker thread, another thread's loop) are handed to that loop, so
    it must be running. A blocking call on the pool's own loop thread is refused, as it
    would stall the loop. For a blocking-only program, pass a connection string.

    Errors name the host, database and user, never the password.
    """

    backend: PostgresBackend

    def __init__(
        self,
        conn: str | Any,
        *,
        schema: str = DEFAULT_SCHEMA,
        prepared_statements: bool = True,
        min_size: int | None = None,
        max_size: int | None = None,
        max_queries: int | None = None,
        max_inactive_connection_lifetime: float | None = None,
        connect_timeout: float | None = None,
        command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
        synchronous_commit: bool = True,
        ssl: Any = None,
        serde: SerializerProtocol | None = None,
        encryption_key: bytes | str | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        read_limits: ReadLimits | None = None,
        ttl: float | timedelta | None = None,
        refresh_on_read: bool = False,
        clock: Clock | None = None,
        sweep_interval: float | None = None,
        **connect_options: Any,
    ) -> None:
        backend = open_database(PostgresBackend, conn, "saver", locals())
        super().__init__(
            backend,
            serde=serde,
            encryption_key=encryption_key,
            close_timeout=close_timeout,
            read_limits=read_limits,
            ttl=ttl,
            refresh_on_read=refresh_on_read,
            clock=clock,
            sweep_interval=sweep_interval,
        )

    @classmethod
    def from_conn_string(cls, conn_string: str, **options: Any) -> PostgresSaver:
        """A saver on ``conn_string``; enter it with ``with`` or ``async with``."""
        return cls(conn_string, **options)
