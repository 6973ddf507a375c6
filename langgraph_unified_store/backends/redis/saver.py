"""RedisSaver: the public LangGraph checkpointer on a RedisBackend."""

from __future__ import annotations

from typing import Any

from ...core.saver import UnifiedCheckpointSaver
from ...registry import DEFAULT_PREFIX, DEFAULT_SOCKET_TIMEOUT, check_backend_options
from .backend import RedisBackend
from .client import RedisConn


class RedisSaver(UnifiedCheckpointSaver):
    """A LangGraph checkpointer on plain Redis (no modules): Redis 6.2+, Valkey, clusters.

    ``RedisSaver("redis://localhost:6379/0")`` works with sync and async graphs alike.
    ``ttl`` (seconds, a saver option) makes a thread expire that long after its last write
    (or read, with ``refresh_on_read``, here also by its earlier name
    ``refresh_ttl_on_read``); all its keys expire together, natively. ``cluster=True`` (or passing a
    ``redis.asyncio.RedisCluster``) talks to Redis Cluster. A call that cannot reach the
    server raises ``BackendUnavailableError`` after about ``socket_timeout`` per attempt.
    """

    backend: RedisBackend

    def __init__(
        self,
        conn: RedisConn,
        *,
        prefix: str = DEFAULT_PREFIX,
        refresh_ttl_on_read: bool = False,
        cluster: bool = False,
        socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
        **options: Any,
    ) -> None:
        earlier = check_backend_options("redis", {"refresh_ttl_on_read": refresh_ttl_on_read})
        if earlier["refresh_ttl_on_read"]:
            options["refresh_on_read"] = True
        backend = RedisBackend(
            conn, prefix=prefix, cluster=cluster, socket_timeout=socket_timeout
        )
        super().__init__(backend, **options)

    @classmethod
    def from_conn_string(cls, url: str, **options: Any) -> RedisSaver:
        """A saver on ``url`` (``redis://``, ``rediss://`` or ``unix://``); enter it with
        ``with`` or ``async with`` to close its connections afterwards."""
        return cls(url, **options)
