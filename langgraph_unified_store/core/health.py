"""Health: whether a saver's or a store's storage answers, how fast, and whether its schema
is the one this code expects, in one report for every backend.

Each backend only gathers facts (``probe``, giving a ``BackendProbe``); what counts as a
problem is decided here, once (``judge``). A health check never sets anything up,
migrates or creates anything, so it may run before ``setup()``; it never raises a
driver's exception: storage that cannot be reached is a report with ``reachable=False``
and the reason among its ``problems``. ``ahealth`` holds the logic and ``health`` runs
it through the same runner as every other blocking call (``core.sync``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, runtime_checkable

from ..errors import BackendUnavailableError, SaverClosedError
from .blocking import BlockingTwins
from .guards import guarded
from .options import seconds

if TYPE_CHECKING:
    from .backend import Backend

T = TypeVar("T")

DEFAULT_HEALTH_TIMEOUT: Final = 5.0
"""Seconds a health check waits for its storage before it reports it unreachable."""


@dataclass(frozen=True, slots=True)
class BackendProbe:
    """What a backend found out about its storage, without judging any of it."""

    location: str | None = None
    """Where the storage is (a file, a server and schema or prefix), without secrets."""
    round_trip_ms: float | None = None
    """One trivial request and its answer (None: no server to ask)."""
    server_version: str | None = None
    schema_version: int | None = None
    """The stored schema's version, 0 before the first migration; None: this storage
    keeps no version (Memory, Redis)."""
    expected_schema_version: int | None = None
    """The version this code's migrations bring a schema to."""
    pending_upgrades: tuple[str, ...] = ()
    """Upgrades ``setup()`` would make besides numbered migrations (Redis re-indexes
    threads an earlier release indexed only by expiry)."""
    modules: tuple[str, ...] | None = None
    """Server modules loaded (Redis); None: not applicable, or the server would not say."""
    cluster: bool | None = None
    """Whether the server runs as a cluster (Redis)."""
    cluster_configured: bool | None = None
    """Whether the saver or store was made to talk to a cluster (Redis)."""
    notes: tuple[str, ...] = ()
    """Facts worth showing that are no problem (a command the server refused to answer)."""


@dataclass(frozen=True, slots=True)
class HealthReport:
    """One health check of a saver's or a store's storage; ``ok`` sums it up."""

    backend: str
    reachable: bool
    location: str | None = None
    round_trip_ms: float | None = None
    server_version: str | None = None
    schema_version: int | None = None
    expected_schema_version: int | None = None
    pending_migrations: tuple[int | str, ...] = ()
    """The migration numbers (and named upgrades) ``setup()`` would apply."""
    modules: tuple[str, ...] | None = None
    cluster: bool | None = None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Reachable, nothing pending, and no problem."""
        return self.reachable and not self.problems and not self.pending_migrations

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON types (lists for tuples), ``ok`` included, for orjson."""
        fields = {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)
            for value in [getattr(self, field.name)]
        }
        return {**fields, "ok": self.ok}


def judge(backend: str, probe: BackendProbe) -> HealthReport:
    """The rules of health, for storage that answered: a schema behind the code's
    (migrations pending), one ahead of it (written by a newer release), an upgrade
    ``setup()`` has still to make, or a cluster the client does not expect (or the
    reverse) is each a problem."""
    problems: list[str] = []
    pending: list[int | str] = []
    current, expected = probe.schema_version, probe.expected_schema_version
    if current is not None and expected is not None:
        if current < expected:
            pending.extend(range(current + 1, expected + 1))
            steps = f"{current + 1}" if current + 1 == expected else f"{current + 1} to {expected}"
            state = "is not set up" if current == 0 else f"is at version {current}"
            problems.append(
                f"the schema {state}, this code expects version {expected}: setup() "
                f"applies migration(s) {steps}"
            )
        elif current > expected:
            problems.append(
                f"the schema is at version {current}, newer than this code knows "
                f"({expected}): a newer release wrote it; upgrade langgraph-unified-store "
                "before using it"
            )
    for upgrade in probe.pending_upgrades:
        pending.append(upgrade)
        problems.append(f"setup() has an upgrade to make: {upgrade}")
    if probe.cluster is not None and probe.cluster_configured is not None:
        if probe.cluster and not probe.cluster_configured:
            problems.append("the server runs in cluster mode, but this client was made with cluster=False")
        elif probe.cluster_configured and not probe.cluster:
            problems.append("this client was made with cluster=True, but the server is not a cluster")
    return HealthReport(
        backend=backend,
        reachable=True,
        location=probe.location,
        round_trip_ms=probe.round_trip_ms,
        server_version=probe.server_version,
        schema_version=current,
        expected_schema_version=expected,
        pending_migrations=tuple(pending),
        modules=probe.modules,
        cluster=probe.cluster,
        problems=tuple(problems),
        notes=probe.notes,
    )


@runtime_checkable
class Probed(Protocol):
    """Storage that can look at itself: every backend but the in-process ones."""

    async def probe(self, timeout: float) -> BackendProbe: ...


async def check_health(backend: object, timeout: float) -> HealthReport:
    """The health of ``backend``'s storage: its probe (none for in-process storage),
    judged; unreachable storage, or a probe that failed, is a report, never an error."""
    timeout = seconds("health: timeout", timeout)
    name = str(getattr(backend, "name", type(backend).__name__))
    if not isinstance(backend, Probed):
        return judge(name, BackendProbe())
    try:
        found = await backend.probe(timeout)
    except SaverClosedError:
        raise
    except BackendUnavailableError as exc:
        return HealthReport(name, reachable=False, problems=(str(exc),))
    except Exception as exc:  # whatever the driver raised: reported, not raised
        return HealthReport(
            name, reachable=False, problems=(f"health check failed: {type(exc).__name__}: {exc}",)
        )
    return judge(name, found)


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()``), for round trips."""
    return round((time.perf_counter() - started) * 1000.0, 3)


# -- the methods, on the savers and the stores -----------------------------------------------


class SaverHealth(BlockingTwins):
    """``ahealth`` / ``health`` of the saver (a base of ``UnifiedCheckpointSaver``)."""

    backend: Backend

    @guarded
    async def ahealth(self, *, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> HealthReport:
        """Whether the storage answers (and how fast), its server's version, and its
        schema against this code's; sets nothing up, so it may run before ``setup()``."""
        return await check_health(self.backend, timeout)

    def health(self, *, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> HealthReport:
        return self._block("health", self.ahealth(timeout=timeout))


class _StoreClient(Protocol):
    """What ``StoreHealth`` needs of the store or cache it is mixed into
    (``core.store.BackendClient``)."""

    _closed: bool

    @property
    def backend(self) -> object: ...

    def _closed_error(self) -> SaverClosedError: ...

    def _run(self, method: str, coro: Coroutine[Any, Any, T]) -> T: ...


class StoreHealth:
    """``ahealth`` / ``health`` of the store and the node cache (a base of
    ``core.store.BackendClient``), as on the savers."""

    async def ahealth(self: _StoreClient, *, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> HealthReport:
        """Whether the storage answers (and how fast), its server's version, and its
        schema against this code's; sets nothing up, so it may run before ``setup()``."""
        if self._closed:
            raise self._closed_error()
        return await check_health(self.backend, timeout)

    def health(self: _StoreClient, *, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> HealthReport:
        return self._run("health", StoreHealth.ahealth(self, timeout=timeout))
