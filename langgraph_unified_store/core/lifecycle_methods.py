"""The saver's data-lifecycle methods: sweep, set_ttl, prune, delete_threads, forget,
list_threads, and the opt-in background sweeper.

A base of ``UnifiedCheckpointSaver``, split from it because the lifecycle is a concern of
its own: the policy is ``core.lifecycle``, the storage primitives are the backend's.
Each async method holds the logic and its blocking twin runs it (``core.blocking``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from ..errors import CheckpointNotFoundError, InvalidConfigError
from .backend import Backend
from .blocking import BlockingTwins
from .delta_history import delta_chain
from .guards import guarded
from .lifecycle import (
    ERASURE_ROUNDS,
    LIST_THREADS_MAX,
    PINNED,
    THREAD_BATCH,
    BackgroundSweeper,
    ErasureReceipt,
    RemovalGuard,
    Removed,
    ThreadPage,
    ThreadQuery,
    check_count,
    check_limit,
    check_thread_filter,
    check_ttl,
    decode_cursor,
    encode_cursor,
    point_in_time,
    timestamp,
)
from .list_memos import ListMemos
from .observability import FORGOTTEN, PRUNED, SWEPT, THREADS_DELETED, observe
from .records import FilterScalar, ListQuery
from .validate import check_id_list, check_thread_id, show

logger = logging.getLogger(__name__)

PRUNE_STRATEGIES: Final = ("keep_latest", "keep_last", "delete")
Age = datetime | timedelta | float | int


class LifecycleMethods(BlockingTwins):
    """TTL, retention and erasure over the backend's lifecycle primitives."""

    backend: Backend
    _memos: ListMemos
    _sweeper: BackgroundSweeper | None = None

    # -- TTL ---------------------------------------------------------------------------------

    @guarded
    async def asweep(self, *, limit: int | None = None) -> Removed:
        """Remove from storage every thread whose TTL has run out (reads already miss
        them), at most ``limit``; returns what was removed. Redis removes expired keys
        itself: there the sweep takes the expired threads out of the global indexes."""
        limit = check_limit("sweep: limit", limit)
        now = self.backend.lifecycle.now()
        query = ThreadQuery(expired_at=now, everything=True, with_stats=False)
        with observe(SWEPT, self.backend.name) as op:
            removed = await self._remove_found(query, RemovalGuard(expired_at=now), limit)
            if op:
                op.note(**_removal_fields(removed))
            return removed

    @guarded
    async def aset_ttl(self, thread_id: str, ttl: float | timedelta | None) -> None:
        """Give one thread its own TTL (from its last write, or read with
        ``refresh_on_read``), or pin it forever with None; the saver's ttl no longer
        applies to it."""
        thread_id = check_thread_id(thread_id, "set_ttl")
        seconds = check_ttl("set_ttl: ttl", ttl, self.backend.max_ttl, self.backend.name)
        if not await self.backend.set_thread_ttl(thread_id, PINNED if seconds is None else seconds):
            raise CheckpointNotFoundError(f"set_ttl: thread {thread_id!r} has no checkpoint")

    # -- retention ---------------------------------------------------------------------------

    @guarded
    async def aprune(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep: int | None = None
    ) -> None:
        """Thin out threads: ``keep_last`` keeps the ``keep`` newest checkpoints of each
        namespace, ``keep_latest`` the newest one, ``delete`` nothing; kept checkpoints
        keep the parents a ``DeltaChannel`` still needs, and every blob and item."""
        if strategy not in PRUNE_STRATEGIES:
            raise InvalidConfigError(
                f"prune: unknown strategy {show(strategy)}; use one of {', '.join(PRUNE_STRATEGIES)}"
            )
        if strategy == "keep_last":
            newest = check_count("prune: keep", keep, 1)
        elif keep is not None:
            raise InvalidConfigError(f"prune: keep applies to strategy 'keep_last', not {strategy!r}")
        else:
            newest = 1
        unique_ids = list(dict.fromkeys(check_id_list(thread_ids, "thread id", "prune")))
        with observe(PRUNED, self.backend.name) as op:
            for thread_id in unique_ids:
                await self._prune_thread(thread_id, strategy, newest)
            op.note(
                thread_id=unique_ids[0] if len(unique_ids) == 1 else None,
                count=len(unique_ids),
                strategy=strategy,
            )

    async def _prune_thread(self, thread_id: str, strategy: str, newest: int) -> None:
        self._memos.forget(thread_id)
        if strategy == "delete":
            await self.backend.delete_thread(thread_id)
            return
        kept: set[tuple[str, str]] = set()
        for head in await self.backend.checkpoint_heads(thread_id):
            # The head as read, and the newest before it: a checkpoint put since is
            # newer than the head, and retain keeps it (core.rules.retained).
            chosen = [head]
            if newest > 1:
                query = ListQuery(
                    thread_id=thread_id,
                    checkpoint_ns=head.checkpoint_ns,
                    before=head.checkpoint_id,
                    limit=newest - 1,
                )
                chosen.extend([stored.record async for stored in self.backend.list_checkpoints(query)])
            for record in chosen:
                kept.update(await delta_chain(self.backend, record))
        await self.backend.retain(thread_id, kept)

    @guarded
    async def adelete_threads(
        self,
        older_than: Age | None = None,
        *,
        filter: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> Removed:
        """Delete whole threads last written before ``older_than`` (an aware datetime, or
        an age as a timedelta or seconds), only those with a checkpoint whose metadata
        match ``filter`` if given, at most ``limit``; returns what was deleted. Works in
        batches: a thread written after the cutoff, even meanwhile, is kept."""
        now = self.backend.lifecycle.now()
        cutoff = point_in_time("delete_threads: older_than", older_than, now, age_allowed=True)
        matching = check_thread_filter(filter, "delete_threads")
        limit = check_limit("delete_threads: limit", limit)
        if cutoff is None and not matching:
            raise InvalidConfigError(
                "delete_threads: give older_than, a filter, or both (with neither, every "
                "thread would go; use forget or delete_thread for that)"
            )
        query = ThreadQuery(
            filter=matching, updated_before=cutoff, everything=True, with_stats=False
        )
        with observe(THREADS_DELETED, self.backend.name) as op:
            removed = await self._remove_found(query, RemovalGuard(written_before=cutoff), limit)
            if op:
                op.note(**_removal_fields(removed))
            return removed

    @guarded
    async def aforget(self, filter: Mapping[str, Any]) -> ErasureReceipt:
        """Erase, for a data-subject request, every thread (all its namespaces, writes,
        blobs and items) with a checkpoint whose metadata match ``filter``; then look
        again. The receipt says what went and whether the re-check found anything left."""
        matching = check_thread_filter(filter, "forget", required=True)
        with observe(FORGOTTEN, self.backend.name) as op:
            receipt = await self._forget(matching)
            if op:
                op.note(**_removal_fields(receipt), verified=receipt.verified)
            return receipt

    async def _forget(self, matching: dict[str, FilterScalar]) -> ErasureReceipt:
        receipt = ErasureReceipt(filter=dict(matching))
        query = ThreadQuery(filter=matching, everything=True, with_stats=False)
        for _ in range(ERASURE_ROUNDS):
            removed = await self._remove_found(query, RemovalGuard(), None)
            receipt.add(removed)
            left = [t.thread_id for t in await self.backend.thread_page(
                ThreadQuery(filter=matching, everything=True, with_stats=False, limit=THREAD_BATCH)
            )]
            if not left:
                break
        erased = list(dict.fromkeys(receipt.thread_ids))
        residue: list[str] = []
        for start in range(0, len(erased), THREAD_BATCH):
            residue.extend(await self.backend.thread_residue(erased[start : start + THREAD_BATCH]))
        receipt.thread_ids = erased
        receipt.remaining = sorted(set(left) | set(residue))
        receipt.verified = not receipt.remaining
        return receipt

    async def _remove_found(self, query: ThreadQuery, guard: RemovalGuard, limit: int | None) -> Removed:
        """Find threads a batch at a time and remove each batch (re-checked under the
        backend's lock by ``guard``), until none is found; never more than a batch of ids
        in hand. A removed thread no longer matches, so each search starts afresh; one
        the guard kept is not tried twice."""
        total = Removed()
        query.ordered = False
        tried: set[str] = set()
        while limit is None or len(total.thread_ids) < limit:
            room = THREAD_BATCH if limit is None else min(THREAD_BATCH, limit - len(total.thread_ids))
            query.limit = room + len(tried)
            fresh = [t.thread_id for t in await self.backend.thread_page(query) if t.thread_id not in tried]
            if not fresh:
                break
            fresh = fresh[:room]
            tried.update(fresh)
            for thread_id in fresh:
                self._memos.forget(thread_id)
            removed = await self.backend.remove_threads(fresh, guard)
            tried.difference_update(removed.thread_ids)
            total.add(removed)
        return total

    # -- listing -----------------------------------------------------------------------------

    @guarded
    async def alist_threads(
        self,
        *,
        filter: Mapping[str, Any] | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ThreadPage:
        """One page of threads, sorted by id, with their namespaces, checkpoint count,
        first and last write, stored bytes (where the backend can tell) and expiry.
        Pass the page's ``next_cursor`` back for the next page."""
        size = check_count("list_threads: limit", limit, 1)
        if size > LIST_THREADS_MAX:
            raise InvalidConfigError(f"list_threads: limit must be at most {LIST_THREADS_MAX}, not {size}")
        query = ThreadQuery(
            limit=size + 1,
            after=decode_cursor(cursor),
            filter=check_thread_filter(filter, "list_threads"),
            updated_after=timestamp("list_threads: updated_after", updated_after),
            updated_before=timestamp("list_threads: updated_before", updated_before),
        )
        found = await self.backend.thread_page(query)
        more = len(found) > size
        found = found[:size]
        return ThreadPage(found, encode_cursor(found[-1].thread_id) if more else None)

    # -- the background sweeper --------------------------------------------------------------

    def start_sweeper(self, interval: float) -> None:
        """Sweep every ``interval`` seconds on a daemon thread until the saver closes."""
        if self._sweeper is None:
            self._sweeper = BackgroundSweeper(self.sweep, interval, type(self).__name__)
            self._sweeper.start()

    def _stop_sweeper(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.stop()

    # -- the blocking twins ------------------------------------------------------------------

    def sweep(self, *, limit: int | None = None) -> Removed:
        return self._block("sweep", self.asweep(limit=limit))

    def set_ttl(self, thread_id: str, ttl: float | timedelta | None) -> None:
        self._block("set_ttl", self.aset_ttl(thread_id, ttl))

    def prune(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep: int | None = None
    ) -> None:
        self._block("prune", self.aprune(thread_ids, strategy=strategy, keep=keep))

    def delete_threads(
        self,
        older_than: Age | None = None,
        *,
        filter: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> Removed:
        return self._block(
            "delete_threads", self.adelete_threads(older_than, filter=filter, limit=limit)
        )

    def forget(self, filter: Mapping[str, Any]) -> ErasureReceipt:
        return self._block("forget", self.aforget(filter))

    def list_threads(
        self,
        *,
        filter: Mapping[str, Any] | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ThreadPage:
        return self._block(
            "list_threads",
            self.alist_threads(
                filter=filter,
                updated_after=updated_after,
                updated_before=updated_before,
                limit=limit,
                cursor=cursor,
            ),
        )


def _removal_fields(removed: Removed) -> dict[str, Any]:
    """An event's fields for a removal: how much went (never which filter found it)."""
    return {
        "count": len(removed.thread_ids),
        "checkpoints": removed.checkpoints,
        "writes": removed.writes,
        "blobs": removed.blobs,
        "items": removed.items,
    }
