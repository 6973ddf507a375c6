"""RedisBackend: the storage contract (core/backend.py) on the layout the package
docstring describes, one Lua script per operation on a thread."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from typing import Any, ClassVar, Final

import orjson

from ...core import rules
from ...core.backend import Backend
from ...core.codec import Codec
from ...core.records import (
    BlobRecord,
    CheckpointRecord,
    FilterScalar,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
)
from ...errors import BlobsMissingError, ItemsMissingError
from ...registry import DEFAULT_PREFIX, DEFAULT_SOCKET_TIMEOUT, check_backend_options
from .client import Call, RedisConn, RedisConnection, plain
from .keys import (
    RUN_COUNTER_FIELD,
    ThreadKey,
    blob_field,
    by_id_entry,
    checkpoint_key,
    escape,
    hex_of,
    run_index_key,
    split_index_member,
    text_of,
    thread_base_key,
    thread_key,
    threads_index_key,
    utf8,
)
from .scripts import (
    FetchBy,
    ListIndex,
    PutOutcome,
    RetainMode,
    ThreadIndexEntry,
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
from .values import (
    blob_value,
    checkpoint_value,
    decode_assembled,
    decode_record,
    item_value,
    write_match_key,
    write_value,
)

# Checkpoints assembled per script call when listing one thread.
LIST_PAGE: Final = 16
# Index entries one list call examines before handing back a cursor (bounds script time).
LIST_SCAN_BUDGET: Final = 2000
# Threads (or checkpoints) per pipeline when a call spans many threads.
PIPELINE_CHUNK: Final = 128
# Expired threads stay in the global index this long before readers purge them
# (scores use the client's clock; the keys expire on the server's).
INDEX_PURGE_GRACE_MS: Final = 60_000
# Lua numbers are doubles: beyond this a filter value may compare equal to a neighbour,
# so such filters are re-checked here and the script gets no limit.
LUA_EXACT_INT: Final = 2**53
# Where snapshot.lua puts the B:r hash among its sections (B:i, B:c, B:m, B:r, ...).
SNAPSHOT_RUNS_SECTION: Final = 3


def filter_is_exact_in_lua(flt: dict[str, FilterScalar]) -> bool:
    """Whether Lua's double comparison agrees with Python's for every value."""
    for value in flt.values():
        if isinstance(value, (bool, str)):
            continue
        if isinstance(value, float) and (value != value or abs(value) == float("inf")):
            return False
        if abs(value) >= LUA_EXACT_INT:
            return False
    return True


def metadata_matches(metadata: bytes, flt: dict[str, FilterScalar], where: str) -> bool:
    """What list.lua checks, in Python (``core.rules.metadata_matches``), for filters
    Lua's doubles cannot compare exactly and for records the script could not parse."""
    return rules.metadata_matches(Codec.load_metadata(metadata, where), flt)


class RedisBackend(Backend):
    """Checkpoint records in plain Redis; see the package docstring for the key layout."""

    name: ClassVar[str] = "redis"

    def __init__(
        self,
        conn: RedisConn,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: float | None = None,
        refresh_ttl_on_read: bool = False,
        cluster: bool = False,
        socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
    ) -> None:
        checked = check_backend_options(
            "redis",
            {
                "prefix": prefix,
                "ttl": ttl,
                "refresh_ttl_on_read": refresh_ttl_on_read,
                "cluster": cluster,
                "socket_timeout": socket_timeout,
            },
        )
        self.ttl: float | None = checked["ttl"]
        socket_timeout = checked["socket_timeout"]
        self.prefix = prefix
        self._ttl_ms = 0 if self.ttl is None else max(1, int(self.ttl * 1000))
        self.refresh_ttl_on_read = bool(refresh_ttl_on_read)
        self._read_ttl_ms = self._ttl_ms if refresh_ttl_on_read else 0
        self._connection = RedisConnection(conn, cluster=cluster, socket_timeout=socket_timeout)
        self.cluster = self._connection.cluster
        self._threads_key = threads_index_key(prefix)

    @property
    def _url(self) -> str | None:
        """The URL the backend was made from (tests open raw clients on it)."""
        return self._connection.url

    def __repr__(self) -> str:
        return (
            f"RedisBackend({self._connection.where!r}, prefix={self.prefix!r}, "
            f"ttl={self.ttl!r}, cluster={self.cluster!r})"
        )


    async def _execute(self, operation: str, calls: Sequence[Call]) -> list[Any]:
        return await self._connection.execute(operation, calls)

    async def _execute_one(self, operation: str, call: Call) -> Any:
        return await self._connection.execute_one(operation, call)

    # -- keys and the global indexes --------------------------------------------------------

    def _base(self, thread_id: str) -> str:
        return thread_base_key(self.prefix, thread_id)

    def _index_score(self) -> float:
        if not self._ttl_ms:
            return float("inf")
        return time.time() * 1000 + self._ttl_ms

    def _index_thread(self, thread_id: str, run_ids: Iterable[str] = ()) -> list[Call]:
        member = utf8(thread_id)
        calls = [plain("ZADD", self._threads_key, "GT", self._index_score(), member)]
        if not self._ttl_ms:
            # With a TTL, runs are found by walking the thread index instead: a run set
            # cannot expire together with every thread it names.
            for run_id in dict.fromkeys(run_ids):
                calls.append(plain("SADD", run_index_key(self.prefix, run_id), member))
        return calls

    def _refresh_index_on_read(self, thread_id: str) -> list[Call]:
        if not self._read_ttl_ms:
            return []
        score = self._index_score()
        return [plain("ZADD", self._threads_key, "XX", "GT", score, utf8(thread_id))]

    def _unindex(self, thread_id: str, run_ids: Iterable[str], *, thread_gone: bool) -> list[Call]:
        member = utf8(thread_id)
        calls: list[Call] = []
        if thread_gone:
            calls.append(plain("ZREM", self._threads_key, member))
        for run_id in dict.fromkeys(run_ids):
            calls.append(plain("SREM", run_index_key(self.prefix, run_id), member))
        return calls

    async def _indexed_threads(self, operation: str) -> list[str]:
        """Every thread id in the global index (a hint: some may have expired or gone)."""
        purge_below = time.time() * 1000 - INDEX_PURGE_GRACE_MS
        _, members = await self._execute(
            operation,
            [
                plain("ZREMRANGEBYSCORE", self._threads_key, "-inf", f"({purge_below}"),
                plain("ZRANGE", self._threads_key, 0, -1),
            ],
        )
        return [text_of(member) for member in members]

    # -- lifecycle -------------------------------------------------------------------------

    async def setup(self) -> None:
        """Nothing to create in Redis; checks the server answers."""
        await self._execute_one("setup", plain("PING"))

    async def aclose(self) -> None:
        await self._connection.aclose()

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
        runs = () if record.run_id is None else (record.run_id,)
        index_calls: list[Call] = []
        index_entry: ThreadIndexEntry | None = None
        if self.cluster:
            index_calls = self._index_thread(record.thread_id, runs)
        else:
            run_key = (
                run_index_key(self.prefix, record.run_id)
                if record.run_id is not None and not self._ttl_ms
                else None
            )
            index_entry = ThreadIndexEntry(
                self._threads_key, self._index_score(), utf8(record.thread_id), run_key
            )
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
            index_entry=index_entry,
            inherited_fields=list(inherited_fields),
            blobs=[(blob_field(ns_hex, b.channel, b.version), blob_value(b)) for b in blobs],
            items=[(item.ref, item_value(item)) for item in items],
        )
        # The index goes first: a reader may see a thread it then finds empty, never the reverse.
        *_, stored = await self._execute("put", [*index_calls, put])
        if stored == PutOutcome.STORED:
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
        call = put_writes_call(
            base=self._base(thread_id),
            replace=replace,
            ttl_ms=self._ttl_ms,
            checkpoint_key=checkpoint_key(checkpoint_ns, checkpoint_id),
            writes=[(write_match_key(w), write_value(w)) for w in writes],
            items=[(item.ref, item_value(item)) for item in items],
        )
        await self._execute_one("put_writes", call)

    # -- reading ---------------------------------------------------------------------------

    def _stored(self, thread_id: str, assembled: Sequence[Any]) -> StoredCheckpoint:
        return decode_assembled(thread_id, assembled, self.read_limits)

    async def get_checkpoint(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> StoredCheckpoint | None:
        base = self._base(thread_id)
        if checkpoint_id is None:
            fetch = fetch_call(
                base=base, by=FetchBy.LATEST, target=hex_of(checkpoint_ns), ttl_ms=self._read_ttl_ms
            )
        else:
            fetch = fetch_call(
                base=base,
                by=FetchBy.ID,
                target=checkpoint_key(checkpoint_ns, checkpoint_id),
                ttl_ms=self._read_ttl_ms,
            )
        found = (await self._execute("get_tuple", [fetch, *self._refresh_index_on_read(thread_id)]))[0]
        return None if found is None else self._stored(thread_id, found)

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
                ttl_ms=self._read_ttl_ms,
            )
            calls = [walk, *self._refresh_index_on_read(thread_id)]
            cursor, found = (await self._execute("list", calls))[0]
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
                    ttl_ms=0,
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
                    base=self._base(thread_id), by=FetchBy.MEMBER, target=member, ttl_ms=self._read_ttl_ms
                )
                for _, thread_id, _, member in page
            ]
            refreshes = [
                call
                for thread_id in dict.fromkeys(t for _, t, _, _ in page)
                for call in self._refresh_index_on_read(thread_id)
            ]
            results = await self._execute("list", [*fetches, *refreshes])
            for (_, thread_id, _, _), assembled in zip(page, results[: len(fetches)], strict=True):
                if assembled is not None:
                    yield self._stored(thread_id, assembled)

    async def checkpoint_heads(self, thread_id: str) -> list[CheckpointRecord]:
        heads = await self._execute_one("prune", heads_call(base=self._base(thread_id)))
        return [
            decode_record(thread_id, member, stored_record, metadata, run_id, self.read_limits)
            for member, stored_record, metadata, run_id in heads
            if stored_record is not None
        ]

    async def list_thread_ids(self) -> list[str]:
        threads = await self._indexed_threads("list_workflows")
        alive: list[str] = []
        for start in range(0, len(threads), PIPELINE_CHUNK):
            chunk = threads[start : start + PIPELINE_CHUNK]
            calls = [plain("EXISTS", thread_key(self._base(t), ThreadKey.INDEX)) for t in chunk]
            exists = await self._execute("list_workflows", calls)
            alive.extend(t for t, present in zip(chunk, exists, strict=True) if present)
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
                cleanup.extend(
                    self._unindex(thread_id, [text_of(r) for r in runs], thread_gone=bool(gone))
                )
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
        snapshot = await self._execute_one(
            "copy_thread", snapshot_call(base=self._base(source_thread_id))
        )
        if not any(snapshot):
            return
        calls = [restore_call(base=self._base(target_thread_id), ttl_ms=self._ttl_ms, sections=snapshot)]
        if snapshot[0]:
            # Run ids are the values of the copied B:r hash, but for its counter of
            # checkpoint numbers.
            stored_runs = snapshot[SNAPSHOT_RUNS_SECTION]
            runs = [
                text_of(run)
                for field, run in zip(stored_runs[::2], stored_runs[1::2], strict=True)
                if field != RUN_COUNTER_FIELD
            ]
            calls = [*self._index_thread(target_thread_id, runs), *calls]
        await self._execute("copy_thread", calls)
