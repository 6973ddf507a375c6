"""One Redis keyspace (a server or a cluster, under one prefix) as a backend uses it,
shared by the saver's backend and the store's: the options checked once, one
``client.RedisConnection``, closed once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from redis import exceptions as redis_errors

from ...core.health import BackendProbe, elapsed_ms
from ...errors import BackendUnavailableError
from ...registry import DEFAULT_PREFIX, DEFAULT_SOCKET_TIMEOUT, check_backend_options
from .client import RedisConn, RedisConnection, plain


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def module_names(answer: Any) -> tuple[str, ...]:
    """The names in MODULE LIST's answer: a map per module (RESP3, or redis-py's parsing)
    or a flat list of name/value pairs (RESP2)."""
    names: list[str] = []
    for module in answer or ():
        if isinstance(module, Mapping):
            fields = {_text(k): v for k, v in module.items()}
        else:
            pairs = list(module)
            fields = {_text(k): v for k, v in zip(pairs[::2], pairs[1::2], strict=False)}
        if "name" in fields:
            names.append(_text(fields["name"]))
    return tuple(sorted(names))


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

    async def probe(self, timeout: float) -> BackendProbe:
        """A PING (timed), the server's version, whether it runs as a cluster and the
        modules it loaded, and what ``setup`` would still upgrade; reads only. A command
        the server refuses (INFO or MODULE LIST on a managed Redis) leaves its answer
        unknown, with a note, and is no failure."""
        try:
            return await asyncio.wait_for(self._look(), timeout)
        except TimeoutError:
            raise BackendUnavailableError(
                f"Redis at {self._connection.where} did not answer within {timeout:g} s"
            ) from None

    async def _look(self) -> BackendProbe:
        notes: list[str] = []
        await self._connection.execute_one("health", plain("PING"))  # connects, if need be
        started = time.perf_counter()
        await self._connection.execute_one("health", plain("PING"))
        round_trip = elapsed_ms(started)
        server = await self._answer_or_note(notes, "INFO", "server")
        version: str | None = None
        if isinstance(server, Mapping):
            if "valkey_version" in server:
                version = f"valkey {_text(server['valkey_version'])}"
            elif "redis_version" in server:
                version = _text(server["redis_version"])
        cluster_info = await self._answer_or_note(notes, "INFO", "cluster")
        cluster = (
            bool(int(cluster_info.get("cluster_enabled", 0)))
            if isinstance(cluster_info, Mapping)
            else None
        )
        listed = await self._answer_or_note(notes, "MODULE", "LIST")
        try:
            pending = await self._pending_upgrades()
        except redis_errors.ResponseError as exc:  # e.g. MOVED: a cluster, cluster=False
            pending = ()
            notes.append(f"could not look for pending upgrades ({exc})")
        return BackendProbe(
            location=f"{self._connection.where}, prefix {self.prefix!r}",
            round_trip_ms=round_trip,
            server_version=version,
            pending_upgrades=pending,
            modules=None if listed is None else module_names(listed),
            cluster=cluster,
            cluster_configured=self.cluster,
            notes=tuple(notes),
        )

    async def _answer_or_note(self, notes: list[str], *command: str) -> Any:
        """The server's answer to a read-only command, or None with a note when it
        refuses it (unknown command, no permission)."""
        try:
            return await self._connection.execute_one("health", plain(*command))
        except redis_errors.ResponseError as exc:
            notes.append(f"{' '.join(command)} refused by the server ({exc}): unknown")
            return None

    async def _pending_upgrades(self) -> tuple[str, ...]:
        """What ``setup`` would still upgrade in this keyspace (read only); none here."""
        return ()
