"""RedisBackend: the storage contract (core/backend.py) on the layout the package
docstring describes, one Lua script per operation on a thread. What works on whole
threads (the global indexes, the lifecycle primitives) it inherits from ``threads.py``."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any, ClassVar, Final

import orjson

from ...core.observability import MIGRATED, emit
from ...core.records import (
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
)
from ...errors import BlobsMissingError, ItemsMissingError
from ...registry import (
    MAX_TTL_SECONDS,
)
from .client import Call, plain
from .database import RedisDatabase
from .keys import (
    RUN_COUNTER_FIELD,
    blob_field,
    by_id_entry,
    checkpoint_key,
    escape,
    hex_of,
    names_index_key,
    run_index_key,
    split_index_member,
    text_of,
    threads_index_key,
    utf8,
    written_index_key,
)
from .scripts import (
    FetchBy,
    ListIndex,
    PutOutcome,
    ReadClock,
    RetainMode,
    ThreadIndexEntry,
    adopt_call,
    delete_thread_call,
    fetch_call,
    heads_call,
    list_call,
    put_checkpoint_call,
    put_writes_call,
    restore_call,
    retain_call,
    snapshot_call,
)
from .threads import PIPELINE_CHUNK, ThreadIndexes
from .values import (
    blob_value,
    checkpoint_value,
    decode_assembled,
    decode_record,
    filter_is_exact_in_lua,
    item_value,
    metadata_matches,
    write_match_key,
    write_value,
)

# Checkpoints assembled per script call when listing one thread.
LIST_PAGE: Final = 16
# Index entries one list call examines before handing back a cursor (bounds script time).
LIST_SCAN_BUDGET: Final = 2000
# Where snapshot.lua puts the B:r hash among its sections (B:i, B:c, B:m, B:r, ...).
SNAPSHOT_RUNS_SECTION: Final = 3


class RedisBackend(RedisDatabase, ThreadIndexes):
    """Checkpoint records in plain Redis; see the package docstring for the key layout."""

    name: ClassVar[str] = "redis"
    max_ttl: ClassVar[float] = float(MAX_TTL_SECONDS)

    def _name_keys(self, prefix: str) -> None:
        self._threads_key = threads_index_key(prefix)
        self._names_key = names_index_key(prefix)
        self._written_key = written_index_key(prefix)

    @property
    def ttl(self) -> float | None:
        """The saver's ttl (``lifecycle.ttl``), in seconds."""
        return self.lifecycle.ttl

    def __repr__(self) -> str:
        return (
            f"RedisBackend({self._connection.where!r}, prefix={self.prefix!r}, "
            f"ttl={self.ttl!r}, cluster={self.cluster!r})"
        )

    async def _execute(self, operation: str, calls: Sequence[Call]) -> list[Any]:
        return await self._connection.execute(operation, calls)

    async def _execute_one(self, operation: str, call: Call) -> Any:
        return await self._connection.execute_one(operation, call)

    # -- the clock -------------------------------------------------------------------------

    @property
    def _ttl_ms(self) -> int:
        """The saver's ttl in ms, 0 for none."""
        ttl = self.lifecycle.ttl
        return 0 if ttl is None else max(1, round(ttl * 1000))

    def _now_ms(self) -> int:
        return math.floor(self.lifecycle.now() * 1000)

    def _read_clock(self) -> ReadClock:
        return ReadClock(self._now_ms(), self.lifecycle.refresh_on_read, self._ttl_ms)

    # -- lifecycle -------------------------------------------------------------------------

    async def setup(self) -> None:
        """Checks the server answers, and adopts the threads an earlier release indexed
        only by expiry: indexed by id and by last write, and stamped as written now, the
        upgrade (idempotent; skipped once every thread is indexed by id)."""
        _, threads, names = await self._execute(
            "setup",
            [plain("PING"), plain("ZCARD", self._threads_key), plain("ZCARD", self._names_key)],
        )
        if names >= threads:
            return
        started = time.perf_counter()
        adopted = 0
        now = self._now_ms()
        for start in range(0, int(threads), PIPELINE_CHUNK):
            members = await self._execute_one(
                "setup", plain("ZRANGE", self._threads_key, start, start + PIPELINE_CHUNK - 1)
            )
            if not members:
                break
            await self._execute(
                "setup", [adopt_call(base=self._base(text_of(m)), now_ms=now) for m in members]
            )
            await self._execute(
                "setup",
                [
                    plain("ZADD", self._names_key, "NX", *[p for m in members for p in (0, m)]),
                    plain("ZADD", self._written_key, "NX", *[p for m in members for p in (now, m)]),
                ],
            )
            adopted += len(members)
        emit(
            MIGRATED, "redis", count=adopted,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    async def _pending_upgrades(self) -> tuple[str, ...]:
        """The threads an earlier release indexed only by expiry, which ``setup`` adopts."""
        threads, names = await self._execute(
            "health", [plain("ZCARD", self._threads_key), plain("ZCARD", self._names_key)]
        )
        if names >= threads:
            return ()
        return (f"index {threads - names} thread(s) an earlier release indexed only by expiry",)

    async def drop_all(self) -> None:
        """Delete every key under this prefix (SCANs: for tests and tear-down only)."""
        pattern = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in self.prefix) + ":*"
        await self._connection.unlink_matching("drop_all", pattern, PIPELINE_CHUNK)

    # -- writing ---------------------------------------------------------------------------

    async def put_checkpoint(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        items: Sequence[ItemRecord],
        inherited: Collection[str] = (),
    ) -> None:
        base = self._base(record.thread_id)
        ns_hex = hex_of(record.checkpoint_ns)
        now_ms = self._now_ms()
        runs = () if record.run_id is None else (record.run_id,)
        index_calls: list[Call] = []
        index_entry: ThreadIndexEntry | None = None
        if self.cluster:
            index_calls = self._index_thread(record.thread_id, now_ms, runs)
        else:
            run_key = (
                run_index_key(self.prefix, record.run_id)
                if record.run_id is not None and not self._ttl_ms
                else None
            )
            index_entry = self._index_entry(record.thread_id, run_key)
        inherited_fields = {
            blob_field(ns_hex, c, record.channel_versions[c]): c for c in inherited
        }
        put = put_checkpoint_call(
            base=base,
            checkpoint_key=checkpoint_key(record.checkpoint_ns, record.checkpoint_id),
            by_id_entry=by_id_entry(record.checkpoint_ns, record.checkpoint_id) if ns_hex else None,
            record=checkpoint_value(record),
            metadata=record.metadata,
            run_id=None if record.run_id is None else utf8(record.run_id),
            ttl_ms=self._ttl_ms,
            now_ms=now_ms,
            index_entry=index_entry,
            inherited_fields=list(inherited_fields),
            blobs=[(blob_field(ns_hex, b.channel, b.version), blob_value(b)) for b in blobs],
            items=[(item.ref, item_value(item)) for item in items],
        )
        # The index goes first: a reader may see a thread it then finds empty, never the reverse.
        *_, stored = await self._execute("put", [*index_calls, put])
        if stored[0] == PutOutcome.STORED:
            if self.cluster:
                fix = self._fix_score(record.thread_id, now_ms, stored[1])
                if fix:
                    await self._execute("put", fix)
            return
        if stored[0] == PutOutcome.BLOBS_MISSING:
            raise BlobsMissingError(
                record.thread_id,
                record.checkpoint_ns,
                record.checkpoint_id,
                [inherited_fields.get(bytes(f), repr(bytes(f))) for f in stored[1:]],
            )
        raise ItemsMissingError(
            record.thread_id,
            f"the new checkpoint names list item {bytes(stored[1]).hex()}, which is not "
            "stored (the thread expired or was deleted meanwhile)",
        )

    async def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[WriteRecord],
        items: Sequence[ItemRecord],
        *,
        replace: bool,
    ) -> None:
        now_ms = self._now_ms()
        call = put_writes_call(
            base=self._base(thread_id),
            replace=replace,
            ttl_ms=self._ttl_ms,
            now_ms=now_ms,
            index_entry=None if self.cluster else self._index_entry(thread_id),
            checkpoint_key=checkpoint_key(checkpoint_ns, checkpoint_id),
            writes=[(write_match_key(w), write_value(w)) for w in writes],
            items=[(item.ref, item_value(item)) for item in items],
        )
        if not self.cluster:
            await self._execute_one("put_writes", call)
            return
        *_, expiry = await self._execute(
            "put_writes", [*self._index_thread(thread_id, now_ms), call]
        )
        fix = self._fix_score(thread_id, now_ms, expiry)
        if fix:
            await self._execute("put_writes", fix)

    # -- reading ---------------------------------------------------------------------------

    def _stored(self, thread_id: str, assembled: Sequence[Any]) -> StoredCheckpoint:
        return decode_assembled(thread_id, assembled, self.read_limits)

    async def get_checkpoint(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> StoredCheckpoint | None:
        base = self._base(thread_id)
        if checkpoint_id is None:
            fetch = fetch_call(
                base=base, by=FetchBy.LATEST, target=hex_of(checkpoint_ns), clock=self._read_clock()
            )
        else:
            fetch = fetch_call(
                base=base,
                by=FetchBy.ID,
                target=checkpoint_key(checkpoint_ns, checkpoint_id),
                clock=self._read_clock(),
            )
        found = await self._execute_one("get_tuple", fetch)
        if found is None:
            return None
        await self._refresh_index_on_read("get_tuple", [thread_id])
        return self._stored(thread_id, found)

    @staticmethod
    def _bounds(query: ListQuery) -> tuple[ListIndex, bytes | str, bytes | str]:
        """Which index to walk and its lexical max and min (ZREVRANGEBYLEX bounds)."""
        if query.checkpoint_ns is not None:
            ns_hex = hex_of(query.checkpoint_ns)
            one = ListIndex.ONE_NAMESPACE
            if query.checkpoint_id is not None:
                key = checkpoint_key(query.checkpoint_ns, query.checkpoint_id)
                return one, b"(" + key + b"\x01", b"[" + key + b"\x00"
            if query.before is not None:
                return one, b"(" + checkpoint_key(query.checkpoint_ns, query.before), f"[{ns_hex}:"
            return one, f"({ns_hex};", f"[{ns_hex}:"
        every = ListIndex.ALL_NAMESPACES
        if query.checkpoint_id is not None:
            escaped = escape(query.checkpoint_id)
            return every, b"(" + escaped + b"\x01", b"[" + escaped + b"\x00"
        return every, b"(" + escape(query.before) if query.before is not None else "+", "-"

    async def list_checkpoints(self, query: ListQuery) -> AsyncIterator[StoredCheckpoint]:
        if (
            query.checkpoint_id is not None
            and query.before is not None
            and not query.checkpoint_id < query.before
        ):
            return
        if query.limit == 0:
            return
        exact = filter_is_exact_in_lua(query.filter)
        filter_json = orjson.dumps(query.filter) if query.filter else b""
        if query.thread_id is not None:
            stream = self._list_thread(query.thread_id, query, filter_json, exact)
        else:
            stream = self._list_all(query, filter_json, exact)
        remaining = query.limit
        async for stored in stream:
            if query.filter and not metadata_matches(
                stored.record.metadata, query.filter, f"thread {stored.record.thread_id!r}, "
                f"checkpoint {stored.record.checkpoint_id!r}"
            ):
                continue
            yield stored
            if remaining is not None:
                remaining -= 1
                if remaining <= 0:
                    return

    async def _list_thread(
        self, thread_id: str, query: ListQuery, filter_json: bytes, exact: bool
    ) -> AsyncIterator[StoredCheckpoint]:
        base = self._base(thread_id)
        index, top, bottom = self._bounds(query)
        wanted = query.limit if exact else None
        refreshed = False
        while True:
            page = LIST_PAGE if wanted is None else min(LIST_PAGE, wanted)
            walk = list_call(
                base=base,
                index=index,
                max_bound=top,
                min_bound=bottom,
                want=page,
                scan_budget=LIST_SCAN_BUDGET,
                filter_json=filter_json,
                with_data=True,
                clock=self._read_clock(),
            )
            cursor, found = await self._execute_one("list", walk)
            if found and not refreshed:
                refreshed = True
                await self._refresh_index_on_read("list", [thread_id])
            for assembled in found:
                yield self._stored(thread_id, assembled)
            if wanted is not None:
                wanted -= len(found)
                if wanted <= 0:
                    return
            if not cursor:
                return
            top = b"(" + cursor

    async def _list_all(
        self, query: ListQuery, filter_json: bytes, exact: bool
    ) -> AsyncIterator[StoredCheckpoint]:
        index, top, bottom = self._bounds(query)
        want = query.limit if exact and query.limit is not None else 0
        # (checkpoint id, thread id, namespace, B:i member): sorted, newest id first.
        found: list[tuple[str, str, str, bytes]] = []
        threads = await self._indexed_threads("list")
        clock = ReadClock(self._now_ms())
        for start in range(0, len(threads), PIPELINE_CHUNK):
            chunk = threads[start : start + PIPELINE_CHUNK]
            calls = [
                list_call(
                    base=self._base(thread_id),
                    index=index,
                    max_bound=top,
                    min_bound=bottom,
                    want=want,
                    scan_budget=0,
                    filter_json=filter_json,
                    with_data=False,
                    clock=clock,
                )
                for thread_id in chunk
            ]
            for thread_id, (_, members) in zip(chunk, await self._execute("list", calls), strict=True):
                for member in members:
                    checkpoint_ns, checkpoint_id = split_index_member(member)
                    found.append((checkpoint_id, thread_id, checkpoint_ns, member))
        found.sort(reverse=True)
        if want:
            found = found[:want]
        for start in range(0, len(found), LIST_PAGE):
            page = found[start : start + LIST_PAGE]
            fetches = [
                fetch_call(
                    base=self._base(thread_id),
                    by=FetchBy.MEMBER,
                    target=member,
                    clock=self._read_clock(),
                )
                for _, thread_id, _, member in page
            ]
            results = await self._execute("list", fetches)
            await self._refresh_index_on_read(
                "list", (t for (_, t, _, _), found in zip(page, results, strict=True) if found is not None)
            )
            for (_, thread_id, _, _), assembled in zip(page, results, strict=True):
                if assembled is not None:
                    yield self._stored(thread_id, assembled)

    async def checkpoint_heads(self, thread_id: str) -> list[CheckpointRecord]:
        heads = await self._execute_one(
            "prune", heads_call(base=self._base(thread_id), clock=self._read_clock())
        )
        return [
            decode_record(thread_id, member, stored_record, metadata, run_id, self.read_limits)
            for member, stored_record, metadata, run_id in heads
            if stored_record is not None
        ]

    async def list_thread_ids(self) -> list[str]:
        threads = await self._indexed_threads("list_workflows")
        now_ms = self._now_ms()
        alive: list[str] = []
        for start in range(0, len(threads), PIPELINE_CHUNK):
            probes = await self._probe("list_workflows", threads[start : start + PIPELINE_CHUNK])
            alive.extend(
                p.thread_id
                for p in probes
                if p.checkpoints and (p.expires is None or p.expires > now_ms)
            )
            await self._drop_stale("list_workflows", [p for p in probes if self._stale(p, now_ms)])
        return sorted(alive)

    # -- deleting and copying --------------------------------------------------------------

    async def delete_thread(self, thread_id: str) -> None:
        runs = await self._execute_one("delete_thread", delete_thread_call(base=self._base(thread_id)))
        await self._execute(
            "delete_thread", self._unindex(thread_id, [text_of(r) for r in runs], thread_gone=True)
        )

    async def _retain(
        self, operation: str, thread_ids: Sequence[str], mode: RetainMode, values: Sequence[bytes]
    ) -> None:
        for start in range(0, len(thread_ids), PIPELINE_CHUNK):
            chunk = thread_ids[start : start + PIPELINE_CHUNK]
            calls = [retain_call(base=self._base(t), mode=mode, values=values) for t in chunk]
            cleanup: list[Call] = []
            for thread_id, (gone, _deleted, *runs) in zip(
                chunk, await self._execute(operation, calls), strict=True
            ):
                names = [text_of(r) for r in runs]
                if gone and mode == RetainMode.RUNS:
                    names.extend(text_of(v) for v in values)  # a gone thread leaves its run sets
                cleanup.extend(self._unindex(thread_id, names, thread_gone=bool(gone)))
            if cleanup:
                await self._execute(operation, cleanup)

    async def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        runs = list(dict.fromkeys(run_ids))
        if self._ttl_ms:
            candidates = await self._indexed_threads("delete_for_runs")
        else:
            calls = [plain("SMEMBERS", run_index_key(self.prefix, r)) for r in runs]
            members = await self._execute("delete_for_runs", calls)
            candidates = sorted({text_of(m) for found in members for m in found})
        await self._retain("delete_for_runs", candidates, RetainMode.RUNS, [utf8(r) for r in runs])

    async def retain(self, thread_id: str, keep: Collection[tuple[str, str]]) -> None:
        keys = [checkpoint_key(ns, checkpoint_id) for ns, checkpoint_id in keep]
        await self._retain("prune", [thread_id], RetainMode.KEEP, keys)

    async def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        now_ms = self._now_ms()
        snapshot = await self._execute_one(
            "copy_thread", snapshot_call(base=self._base(source_thread_id), now_ms=now_ms)
        )
        if not any(snapshot):
            return
        calls = [
            restore_call(
                base=self._base(target_thread_id),
                ttl_ms=self._ttl_ms,
                now_ms=now_ms,
                sections=snapshot,
            )
        ]
        runs: list[str] = []
        if snapshot[0]:
            # Run ids are the values of the copied B:r hash, but for its counter of
            # checkpoint numbers.
            stored_runs = snapshot[SNAPSHOT_RUNS_SECTION]
            runs = [
                text_of(run)
                for field, run in zip(stored_runs[::2], stored_runs[1::2], strict=True)
                if field != RUN_COUNTER_FIELD
            ]
        calls = [*self._index_thread(target_thread_id, now_ms, runs), *calls]
        *_, expiry = await self._execute("copy_thread", calls)
        fix = self._fix_score(target_thread_id, now_ms, expiry)
        if fix:
            await self._execute("copy_thread", fix)
