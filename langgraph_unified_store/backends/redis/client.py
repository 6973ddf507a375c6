"""Connection handling: one redis-py client per event loop (plain or cluster), retries,
one round trip per batch of calls, and server errors translated to the library's own.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlsplit

from ...core.backend import LoopLocal
from ...core.observability import CONNECTION_LOST, CONNECTION_RECOVERED, emit
from ...core.sync import ForeignLoop, UserClient
from ...errors import BackendUnavailableError, InvalidConfigError, missing_extra

try:
    import redis.asyncio as aioredis
    from redis import exceptions as redis_errors
    from redis.asyncio.cluster import ClusterNode, RedisCluster
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_extra("redis", "redis") from exc

if TYPE_CHECKING:
    from .scripts import LuaScript

RedisClient = aioredis.Redis | RedisCluster
# What a saver may be given to connect with: a URL, or a client of the user's.
RedisConn = str | aioredis.Redis | RedisCluster

# Retries after a dropped connection; every script is idempotent, so a retry is safe.
CONNECT_RETRIES: Final = 2
RETRY_BACKOFF_BASE: Final = 0.05
RETRY_BACKOFF_CAP: Final = 0.5
# How a script's own refusal of its arguments (raised before it writes) begins
# (lua/lib/expiry.lua raises one).
SCRIPT_REFUSAL: Final = "lus refused: "

# What a server that cannot be reached raises.
UNAVAILABLE: Final = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterError,
    redis_errors.TryAgainError,
    redis_errors.SlotNotCoveredError,
    OSError,
    TimeoutError,
)

T = TypeVar("T")
ScriptArg = str | bytes | int | float
Command = Callable[[Any], Any]


def command(*args: Any) -> Command:
    """A plain command, applied later to a client (awaited) or a pipeline (queued).
    Always through execute_command: redis-py's cluster pipeline turns some command
    methods (exists, unlink, evalsha) into coroutines or refuses them."""
    return lambda target: target.execute_command(*args)


@dataclass(frozen=True, slots=True)
class Call:
    """One command of a batch: a script with its KEYS and ARGV, or a plain command."""

    script: LuaScript | None = None
    keys: Sequence[str | bytes] = ()
    args: Sequence[ScriptArg] = ()
    command: Command | None = None


def plain(*args: Any) -> Call:
    """A batch entry running one plain command."""
    return Call(command=command(*args))


def safe_location(url: str) -> str:
    """``redis://host:port/db`` with any user name and password left out."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "redis (unparsable URL)"
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    credentials = "***@" if parts.username or parts.password else ""
    return f"{parts.scheme}://{credentials}{host}{port}{parts.path}"


def url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


class ObservedRetry(Retry):
    """redis-py's retry of a dropped connection, telling each loss and each recovery as
    an event (``core.observability``); ``server`` is the password-free location."""

    def __init__(self, backoff: ExponentialWithJitterBackoff, retries: int, server: str) -> None:
        super().__init__(backoff, retries)
        self.server = server

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[[Exception], Any] | Callable[[Exception, int], Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        lost: list[float] = []

        async def noting(error: Exception, *count: int) -> Any:
            lost.append(time.perf_counter())
            # The error's type only: its message may quote a command's arguments.
            emit(
                CONNECTION_LOST, "redis", server=self.server, attempt=len(lost),
                error=type(error).__name__, retrying=len(lost) <= self._retries,
            )
            return await fail(error, *count)

        try:
            result = await super().call_with_retry(do, noting, is_retryable, with_failure_count)
        except Exception as exc:
            if lost and not isinstance(exc, self._supported_errors):
                self._recovered(lost[0], len(lost))  # answered: a script it lost, say
            raise
        if lost:
            self._recovered(lost[0], len(lost))
        return result

    def _recovered(self, lost_at: float, failures: int) -> None:
        emit(
            CONNECTION_RECOVERED, "redis", server=self.server, attempt=failures + 1,
            duration_ms=round((time.perf_counter() - lost_at) * 1000, 3),
        )


def _refuse_decoding(kwargs: dict[str, Any]) -> None:
    if kwargs.get("decode_responses"):
        raise InvalidConfigError(
            "the Redis client decodes responses (decode_responses=True); "
            "checkpoints are bytes, so pass a client made with decode_responses=False"
        )


class RedisConnection:
    """The clients of one backend: made from a URL, or the client the user passed in
    (and, on the blocking API's private I/O loop, a sibling with its settings: the
    user-supplied client policy in ``core.sync``)."""

    def __init__(
        self,
        conn: RedisConn,
        *,
        cluster: bool,
        socket_timeout: float | None,
    ) -> None:
        self.socket_timeout = socket_timeout
        self.url: str | None = None
        self.given: aioredis.Redis | RedisCluster | None = None
        self._password: str | None = None
        if isinstance(conn, str):
            self.url = conn
            self._password = url_password(conn)
            self.cluster = bool(cluster)
            self.where = safe_location(conn)
        elif isinstance(conn, RedisCluster):
            self.given = conn
            self.cluster = True
            kwargs = conn.get_connection_kwargs()
            self._password = kwargs.get("password")
            nodes = conn.get_nodes()
            self.where = (
                f"redis cluster at {nodes[0].host}:{nodes[0].port}" if nodes else "redis cluster"
            )
            _refuse_decoding(kwargs)
        elif isinstance(conn, aioredis.Redis):
            if cluster:
                raise InvalidConfigError("cluster=True needs a URL or a redis.asyncio.RedisCluster")
            self.given = conn
            self.cluster = False
            kwargs = conn.connection_pool.connection_kwargs
            self._password = kwargs.get("password")
            self.where = f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
            _refuse_decoding(kwargs)
        else:
            raise InvalidConfigError(
                "conn must be a redis:// URL, a redis.asyncio.Redis or a "
                f"redis.asyncio.RedisCluster, not {type(conn).__name__}"
            )
        self._clients: LoopLocal[RedisClient] = LoopLocal(self._make_client, self._close_client)
        self._user_client: UserClient[RedisClient] | None = (
            None if self.given is None else UserClient(self.given, ForeignLoop.SIBLING)
        )

    def _client_options(self) -> dict[str, Any]:
        return {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_timeout,
            "retry": ObservedRetry(
                ExponentialWithJitterBackoff(base=RETRY_BACKOFF_BASE, cap=RETRY_BACKOFF_CAP),
                CONNECT_RETRIES,
                self.where,
            ),
            "decode_responses": False,
        }

    async def _make_client(self) -> RedisClient:
        if self._user_client is not None and self._user_client.at_home():
            return self._user_client.client
        given = self.given
        try:
            if isinstance(given, RedisCluster):
                # Same nodes and options; only what the constructor accepts carries over.
                accepted = inspect.signature(RedisCluster.__init__).parameters
                kwargs: dict[str, Any] = {
                    k: v
                    for k, v in given.get_connection_kwargs().items()
                    if k in accepted and k not in ("host", "port", "startup_nodes")
                }
                kwargs["retry"] = given.retry
                nodes = [ClusterNode(str(n.host), int(n.port)) for n in given.get_nodes()]
                return RedisCluster(startup_nodes=nodes, **kwargs)
            if isinstance(given, aioredis.Redis):
                pool = given.connection_pool
                return aioredis.Redis(
                    connection_pool=aioredis.ConnectionPool(
                        connection_class=pool.connection_class, **pool.connection_kwargs
                    )
                )
            assert self.url is not None
            if self.cluster:
                return RedisCluster.from_url(self.url, **self._client_options())
            return aioredis.Redis.from_url(self.url, **self._client_options())
        except (ValueError, TypeError, redis_errors.RedisClusterException) as exc:
            raise InvalidConfigError(
                f"cannot make a Redis client for {self.where}: {self.scrub(str(exc))}"
            ) from None

    async def _close_client(self, client: RedisClient) -> None:
        if client is not self.given:
            await client.aclose()

    async def aclose(self) -> None:
        await self._clients.aclose()

    def scrub(self, text: str) -> str:
        """``text`` without the password or the full URL in it."""
        if self._password:
            text = text.replace(self._password, "***")
        if self.url:
            text = text.replace(self.url, self.where)
        return text

    def unavailable(self, operation: str, exc: BaseException) -> BackendUnavailableError:
        detail = self.scrub(f"{type(exc).__name__}: {exc}")
        return BackendUnavailableError(f"Redis at {self.where} is unavailable ({operation}): {detail}")

    async def client(self, operation: str) -> RedisClient:
        """This loop's client."""
        try:
            return await self._clients.get()
        except UNAVAILABLE as exc:
            raise self.unavailable(operation, exc) from None

    async def execute(self, operation: str, calls: Sequence[Call]) -> list[Any]:
        """Run calls in one round trip (a pipeline when several), mapping connection
        failures to BackendUnavailableError. Scripts the server lost are sent whole."""
        client = await self.client(operation)
        try:
            if len(calls) == 1:
                return [await self._run_one(client, calls[0])]
            pipe = client.pipeline(transaction=False)
            for call in calls:
                if call.script is not None:
                    # execute_command: redis-py's cluster pipeline refuses its evalsha()
                    # method, though a script whose keys share one slot is routed fine.
                    pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
                else:
                    assert call.command is not None
                    call.command(pipe)
            results: list[Any] = await pipe.execute(raise_on_error=False)
            for position, result in enumerate(results):
                if isinstance(result, redis_errors.NoScriptError):
                    results[position] = await self._run_one(client, calls[position])
                elif isinstance(result, BaseException):
                    raise result
            return results
        except UNAVAILABLE as exc:
            raise self.unavailable(operation, exc) from None
        except redis_errors.RedisClusterException as exc:
            if "connect" in str(exc).lower():
                raise self.unavailable(operation, exc) from None
            raise
        except redis_errors.ResponseError as exc:
            if SCRIPT_REFUSAL in str(exc):
                # A script refused its arguments before writing anything (see deadline).
                raise InvalidConfigError(
                    f"{operation}: {str(exc).split(SCRIPT_REFUSAL, 1)[1].split(' script:')[0]}"
                ) from None
            raise

    async def execute_one(self, operation: str, call: Call) -> Any:
        """The result of one call."""
        return (await self.execute(operation, [call]))[0]

    @staticmethod
    async def _run_one(client: RedisClient, call: Call) -> Any:
        if call.script is None:
            assert call.command is not None
            return await call.command(client)
        try:
            return await client.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        except redis_errors.NoScriptError:
            return await client.eval(call.script.source, len(call.keys), *call.keys, *call.args)

    async def unlink_matching(self, operation: str, pattern: str, batch_size: int) -> None:
        """UNLINK every key matching ``pattern`` (SCANs: for tests and tear-down only)."""
        client = await self.client(operation)
        try:
            batch: list[bytes] = []
            async for key in client.scan_iter(match=pattern, count=500):
                batch.append(key)
                if len(batch) >= batch_size:
                    await self._unlink(client, batch)
                    batch = []
            if batch:
                await self._unlink(client, batch)
        except UNAVAILABLE as exc:
            raise self.unavailable(operation, exc) from None

    @staticmethod
    async def _unlink(client: RedisClient, keys: list[bytes]) -> None:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("UNLINK", key)  # one key per command: any slot
        await pipe.execute()
