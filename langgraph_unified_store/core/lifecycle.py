"""The data lifecycle, written once: TTL, keep-last-N, age-based retention, erasure.

The policy lives here; each backend provides the storage primitives of
``core.backend.Backend`` (``thread_page``, ``remove_threads``, ``set_thread_ttl``,
``thread_residue``) and keeps, for every thread, when it was first and last written and
when it expires (see ``ThreadClock``).

Times are seconds since the epoch, read from the saver's ``clock`` (``time.time`` unless
a test injects another): every backend stamps writes and judges expiry by that one clock.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from ..errors import InvalidConfigError, SaverClosedError
from .records import FilterScalar
from .validate import check_text, show, text_problem

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Seconds since the epoch, as ``time.time`` gives them."""

PINNED: Final = 0.0
"""The per-thread TTL a backend stores for a thread pinned by ``set_ttl(thread_id, None)``:
it never expires, whatever the saver's ttl (0 is no valid ttl, so it cannot clash)."""

THREAD_BATCH: Final = 500
"""Threads found and removed per batch by sweep, delete_threads and forget."""

LIST_THREADS_MAX: Final = 10_000
"""The largest page ``list_threads`` returns."""

ERASURE_ROUNDS: Final = 3
"""How often ``forget`` looks again for matching threads written while it erased."""

TTL_MAX_DATETIME: Final = 1_000 * 365.25 * 86_400
"""The longest ttl on storage that keeps seconds as a float: a thousand years, so that
every expiry is a ``datetime`` (year 9999 at most) whatever the clock says."""


@dataclass(frozen=True, slots=True)
class ThreadClock:
    """What a backend needs to stamp and expire threads; set on it by the saver.

    A thread's expiry is ``touched + ttl``: ``touched`` is its last write (or read, with
    ``refresh_on_read``), ``ttl`` its own (``set_ttl``) or else the saver's. A thread
    whose expiry has passed is gone to every read at once, whether or not storage has
    removed it yet.
    """

    ttl: float | None = None
    refresh_on_read: bool = False
    clock: Clock = time.time

    def now(self) -> float:
        return float(self.clock())

    def expiry(self, touched: float, own_ttl: float | None) -> float | None:
        """When a thread touched at ``touched`` expires (None: never)."""
        ttl = self.ttl if own_ttl is None else own_ttl
        if ttl is None or ttl == PINNED:
            return None
        return touched + ttl


@dataclass(slots=True)
class ThreadQuery:
    """Which threads ``Backend.thread_page`` returns: at most ``limit``, sorted by thread
    id after ``after`` (a listing), or in any order the backend finds them fastest
    (``ordered=False``: a removal, which asks again until nothing is left)."""

    limit: int = THREAD_BATCH
    after: str | None = None
    """Only thread ids that sort strictly after this one (a page's cursor)."""
    filter: dict[str, FilterScalar] = field(default_factory=dict)
    """Only threads with at least one checkpoint whose metadata has all these keys equal
    to these JSON scalars (type-exact, as ``list``'s filter)."""
    updated_after: float | None = None
    """Only threads last written strictly after this time."""
    updated_before: float | None = None
    """Only threads last written strictly before this time."""
    expired_at: float | None = None
    """Only threads that have expired at this time (for a sweep)."""
    everything: bool = False
    """Also threads that have expired or hold no checkpoint (removals see all that is
    stored; a listing shows only what reads would find)."""
    with_stats: bool = True
    """Fill namespaces, counts and bytes (a removal needs only the ids)."""
    ordered: bool = True


@dataclass(slots=True)
class ThreadInfo:
    """One thread, as ``list_threads`` shows it to an operator."""

    thread_id: str
    namespaces: tuple[str, ...] = ()
    checkpoints: int = 0
    first_write: float = 0.0
    last_write: float = 0.0
    expires_at: float | None = None
    stored_bytes: int | None = None
    """What the thread's rows or keys take in storage, where the backend can tell."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601 UTC."""
        return {
            "thread_id": self.thread_id,
            "namespaces": list(self.namespaces),
            "checkpoints": self.checkpoints,
            "first_write": iso(self.first_write),
            "last_write": iso(self.last_write),
            "expires_at": None if self.expires_at is None else iso(self.expires_at),
            "stored_bytes": self.stored_bytes,
        }


@dataclass(slots=True)
class RemovalGuard:
    """What ``Backend.remove_threads`` re-checks under its lock before removing a thread,
    so that a thread written since it was found is kept."""

    written_before: float | None = None
    """Remove only if last written strictly before this time."""
    expired_at: float | None = None
    """Remove only if expired at this time."""


@dataclass(slots=True)
class Removed:
    """What a removal took out of storage: the threads, and their rows or keys by kind."""

    thread_ids: list[str] = field(default_factory=list)
    checkpoints: int = 0
    writes: int = 0
    blobs: int = 0
    items: int = 0

    def add(self, other: Removed) -> None:
        self.thread_ids.extend(other.thread_ids)
        self.checkpoints += other.checkpoints
        self.writes += other.writes
        self.blobs += other.blobs
        self.items += other.items

    def as_dict(self) -> dict[str, Any]:
        return {
            "thread_ids": list(self.thread_ids),
            "checkpoints": self.checkpoints,
            "writes": self.writes,
            "blobs": self.blobs,
            "items": self.items,
        }


@dataclass(slots=True)
class ThreadPage:
    """One page of ``list_threads``; pass ``next_cursor`` back for the next (None: last)."""

    threads: list[ThreadInfo]
    next_cursor: str | None


@dataclass(slots=True)
class ErasureReceipt(Removed):
    """What ``forget`` erased, and the re-check made after it."""

    filter: dict[str, FilterScalar] = field(default_factory=dict)
    verified: bool = False
    """True when, after erasing, no thread matches the filter and no row or key of an
    erased thread is left."""
    remaining: list[str] = field(default_factory=list)
    """Threads the re-check still found (matching, or with rows left); empty if verified."""

    def as_dict(self) -> dict[str, Any]:
        return {
            **Removed.as_dict(self),
            "filter": dict(self.filter),
            "verified": self.verified,
            "remaining": list(self.remaining),
        }


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


# -- checking what callers pass ----------------------------------------------------------------


def check_ttl(name: str, value: Any, maximum: float, backend: str) -> float | None:
    """A ttl in seconds (a number or a ``timedelta``), or None for no expiry."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)):
        raise InvalidConfigError(
            f"{name} must be a number of seconds, a timedelta or None, not {show(value)}"
        )
    seconds = float(value)
    if not (0 < seconds < math.inf):
        raise InvalidConfigError(f"{name} must be a positive, finite duration, not {show(value)}")
    if seconds > maximum:
        raise InvalidConfigError(
            f"{name} of {seconds:.6g} s is beyond what {backend} can store "
            f"(at most {maximum:.6g} s)"
        )
    return seconds


def ttl_option(name: str, value: Any) -> float | None:
    """The ``ttl`` option as the registry checks it; the saver checks it again against
    its backend's ``max_ttl``."""
    return check_ttl(name, value, TTL_MAX_DATETIME, "any backend")


def check_clock(value: Any) -> Clock:
    """The saver's clock: a callable returning epoch seconds (``time.time`` for None)."""
    if value is None:
        return time.time
    if not callable(value):
        raise InvalidConfigError(f"clock must be a callable returning epoch seconds, not {show(value)}")
    return value  # type: ignore[no-any-return]


def check_thread_filter(value: Any, operation: str, *, required: bool = False) -> dict[str, FilterScalar]:
    """A metadata filter for thread operations: string keys, scalar JSON values."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise InvalidConfigError(f"{operation}: filter must be a mapping, not {show(value)}")
    checked: dict[str, FilterScalar] = {}
    for key, entry in value.items():
        if not isinstance(key, str):
            raise InvalidConfigError(f"{operation}: filter keys must be strings, not {show(key)}")
        check_text(key, "filter key", operation)
        if isinstance(entry, float) and not math.isfinite(entry):
            raise InvalidConfigError(f"{operation}: filter value of {key!r} must be finite")
        if isinstance(entry, float) and abs(entry) >= 2**53:
            # Backends compare such a float with a stored number differently (decimals,
            # floats, exact ints), and a thread filter has no exact fallback. An int of
            # any size is compared exactly everywhere.
            raise InvalidConfigError(
                f"{operation}: a float filter value of {key!r} must be below 2**53 in "
                f"magnitude (use an int), not {show(entry)}"
            )
        if isinstance(entry, str):
            check_text(entry, f"filter value of {key!r}", operation)
        elif not isinstance(entry, (bool, int, float)):
            raise InvalidConfigError(
                f"{operation}: filter value of {key!r} must be a string, number or boolean, "
                f"not {show(entry)}"
            )
        checked[key] = entry
    if required and not checked:
        raise InvalidConfigError(
            f"{operation}: filter must name at least one metadata key (an empty filter "
            "would match every thread)"
        )
    return checked


def check_count(name: str, value: Any, minimum: int) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
        raise InvalidConfigError(f"{name} must be an integer >= {minimum}, not {show(value)}")
    return value


def check_limit(name: str, value: Any) -> int | None:
    """A positive count, or None for no limit."""
    return None if value is None else check_count(name, value, 1)


def timestamp(name: str, value: Any) -> float | None:
    """An aware ``datetime`` (or None) as epoch seconds."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidConfigError(f"{name} must be a timezone-aware datetime, not {show(value)}")
    return value.timestamp()


def point_in_time(name: str, value: Any, now: float, *, age_allowed: bool) -> float | None:
    """A time as epoch seconds: an aware ``datetime``, or (``age_allowed``) an age before
    ``now`` as a ``timedelta`` or seconds. Never in the future."""
    if value is None:
        return None
    at: float | None
    if isinstance(value, datetime):
        at = timestamp(name, value)
    elif age_allowed and isinstance(value, timedelta):
        at = now - value.total_seconds()
    elif age_allowed and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InvalidConfigError(f"{name} must be a finite number of seconds, not {show(value)}")
        at = now - float(value)
    else:
        kinds = "a timezone-aware datetime, a timedelta or seconds" if age_allowed else (
            "a timezone-aware datetime"
        )
        raise InvalidConfigError(f"{name} must be {kinds}, not {show(value)}")
    assert at is not None
    if at > now:
        raise InvalidConfigError(f"{name} is in the future ({iso(at)}); nothing would be older")
    return at


# -- list_threads cursors ----------------------------------------------------------------------


def encode_cursor(thread_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(["t", thread_id])).decode("ascii")


def decode_cursor(cursor: Any) -> str | None:
    """The thread id a cursor from ``encode_cursor`` holds; InvalidConfigError otherwise."""
    if cursor is None:
        return None
    try:
        kind, thread_id = orjson.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        # An id no backend can store (a NUL, a lone surrogate) names no thread: refused
        # here, before a database driver would fail on it.
        if kind == "t" and isinstance(thread_id, str) and text_problem(thread_id) is None:
            return thread_id
    except Exception:
        pass
    raise InvalidConfigError(f"list_threads: cursor {show(cursor)} is not one list_threads returned")


class BackgroundSweeper:
    """Calls ``sweep`` (a saver's or a store's blocking sweep) every ``interval`` seconds
    on a daemon thread; ``stop`` ends it (their close does), never waiting for more than
    the sweep in flight."""

    def __init__(self, sweep: Callable[[], Any], interval: float, owner: str) -> None:
        self._sweep = sweep
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{owner}-sweeper", daemon=True)
        self.sweeps = 0
        """Sweeps completed (for tests and health checks)."""

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread() and self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                removed = self._sweep()
            except SaverClosedError:
                return
            except Exception:
                logger.exception("background sweep failed; retrying in %.3gs", self._interval)
                continue
            self.sweeps += 1
            count = len(removed.thread_ids) if isinstance(removed, Removed) else removed
            if count:
                logger.info("swept %s expired thread(s) or item(s)", count)
