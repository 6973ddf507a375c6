"""One Redis keyspace (a server or a cluster, under one prefix) as a backend uses it,
shared by the saver's backend and the store's: the options checked once, one
``client.RedisConnection``, closed once."""

from __future__ import annotations

from ...registry import DEFAULT_PREFIX, DEFAULT_SOCKET_TIMEOUT, check_backend_options
from .client import RedisConn, RedisConnection


class RedisDatabase:
    """The connection to the server, and the prefix every key of this backend starts with."""

    def __init__(
        self,
        conn: RedisConn,
        *,
        prefix: str = DEFAULT_PREFIX,
        cluster: bool = False,
        socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
    ) -> None:
        checked = check_backend_options(
            "redis", {"prefix": prefix, "cluster": cluster, "socket_timeout": socket_timeout}
        )
        self.prefix = prefix
        self._connection = RedisConnection(conn, cluster=cluster, socket_timeout=checked["socket_timeout"])
        self.cluster = self._connection.cluster
        self._name_keys(prefix)

    def _name_keys(self, prefix: str) -> None:
        """Set the names of the fixed keys the subclass's scripts work on."""

    @property
    def _url(self) -> str | None:
        """The URL the backend was made from (tests open raw clients on it)."""
        return self._connection.url

    async def aclose(self) -> None:
        await self._connection.aclose()
