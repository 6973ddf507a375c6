"""The global thread indexes and the lifecycle primitives of RedisBackend, apart from
its checkpoint storage: what finds, probes, sweeps and removes whole threads."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from ...core.backend import Backend
from ...core.lifecycle import PINNED, RemovalGuard, Removed, ThreadInfo, ThreadQuery
from .client import Call, plain
from .keys import (
    ThreadKey,
    run_index_key,
    text_of,
    thread_base_key,
    thread_key,
    unhex,
    utf8,
)
from .scripts import (
    ListIndex,
    ReadClock,
    RemoveStatus,
    ThreadIndexEntry,
    list_call,
    namespaces_call,
    remove_thread_call,
    set_ttl_call,
)
from .values import filter_is_exact_in_lua, metadata_matches

# Threads (or checkpoints) per pipeline when a call spans many threads.
PIPELINE_CHUNK: Final = 128


def _ms(value: Any) -> int | None:
    """A time in ms as a script or HMGET returns it (None when absent)."""
    if value is None or value == b"":
        return None
    return int(float(value))


def _seconds(ms: int | None) -> float:
    return 0.0 if ms is None else ms / 1000


@dataclass(slots=True)
class _Probe:
    """What one pipelined look at a thread found: its B:h fields, its checkpoint count,
    and its score in the global expiry index."""

    thread_id: str
    first: int | None
    last: int | None
    expires: int | None
    checkpoints: int
    score: float | None

    @property
    def gone(self) -> bool:
        """Nothing of the thread is left (Redis expired it, or it was removed)."""
        return self.checkpoints == 0 and self.first is None and self.last is None


class ThreadIndexes(Backend):
    """The part of RedisBackend that works on whole threads (its base class): the global
    indexes each write keeps, and the lifecycle primitives of ``core.backend``."""

    # What RedisBackend provides (set in its __init__, or defined there).
    prefix: str
    cluster: bool
    _threads_key: str
    _names_key: str
    _written_key: str

    if TYPE_CHECKING:

        async def _execute(self, operation: str, calls: Sequence[Call]) -> list[Any]: ...

        async def _execute_one(self, operation: str, call: Call) -> Any: ...

        @property
        def _ttl_ms(self) -> int: ...

        def _now_ms(self) -> int: ...

    # -- keys and the global indexes --------------------------------------------------------

    def _base(self, thread_id: str) -> str:
        return thread_base_key(self.prefix, thread_id)

    def _index_entry(self, thread_id: str, run_key: str | None = None) -> ThreadIndexEntry:
        return ThreadIndexEntry(
            self._threads_key, self._names_key, self._written_key, utf8(thread_id), run_key
        )

    def _index_thread(self, thread_id: str, now_ms: int, run_ids: Iterable[str] = ()) -> list[Call]:
        """The global index entries of a write the caller sends itself (a cluster, or a
        copy): the expiry score is a guess from the saver's ttl, which ``_fix_score``
        corrects once the script has said the thread's own."""
        member = utf8(thread_id)
        score = now_ms + self._ttl_ms if self._ttl_ms else math.inf
        calls = [
            plain("ZADD", self._threads_key, score, member),
            plain("ZADD", self._names_key, 0, member),
            plain("ZADD", self._written_key, now_ms, member),
        ]
        if not self._ttl_ms:
            # With a TTL, runs are found by walking the thread index instead: a run set
            # cannot expire together with every thread it names.
            for run_id in dict.fromkeys(run_ids):
                calls.append(plain("SADD", run_index_key(self.prefix, run_id), member))
        return calls

    def _fix_score(self, thread_id: str, now_ms: int, expiry: Any) -> list[Call]:
        """The expiry index entry, when the script's expiry differs from ``_index_thread``'s guess."""
        expires = _ms(expiry)
        guess = now_ms + self._ttl_ms if self._ttl_ms else None
        if expires == guess:
            return []
        score = math.inf if expires is None else expires
        return [plain("ZADD", self._threads_key, "XX", score, utf8(thread_id))]

    async def _refresh_index_on_read(self, operation: str, thread_ids: Iterable[str]) -> None:
        """A read that found these threads live moved their expiry: move their index
        scores too (a guess from the saver's ttl, never lower: a removal corrects what it
        finds wrong). Only after the read found them, so a thread read after it expired
        keeps its score and the next sweep finds it."""
        if not (self.lifecycle.refresh_on_read and self._ttl_ms):
            return
        score = self._now_ms() + self._ttl_ms
        calls = [plain("ZADD", self._threads_key, "XX", "GT", score, utf8(t)) for t in dict.fromkeys(thread_ids)]
        if calls:
            await self._execute(operation, calls)

    def _unindex(self, thread_id: str, run_ids: Iterable[str], *, thread_gone: bool) -> list[Call]:
        member = utf8(thread_id)
        calls: list[Call] = []
        if thread_gone:
            for key in (self._threads_key, self._names_key, self._written_key):
                calls.append(plain("ZREM", key, member))
        for run_id in dict.fromkeys(run_ids):
            calls.append(plain("SREM", run_index_key(self.prefix, run_id), member))
        return calls

    async def _indexed_threads(self, operation: str) -> list[str]:
        """Every thread id in the global index (a hint: some may have expired or gone)."""
        members = await self._execute_one(operation, plain("ZRANGE", self._threads_key, 0, -1))
        return [text_of(member) for member in members]

    async def _probe(self, operation: str, thread_ids: Sequence[str]) -> list[_Probe]:
        """Each thread's lifecycle fields, checkpoint count and expiry score, pipelined."""
        if not thread_ids:
            return []
        calls: list[Call] = []
        for thread_id in thread_ids:
            base = self._base(thread_id)
            calls.append(plain("HMGET", thread_key(base, ThreadKey.LIFECYCLE), "f", "l", "e"))
            calls.append(plain("ZCARD", thread_key(base, ThreadKey.INDEX)))
        calls.append(plain("ZMSCORE", self._threads_key, *[utf8(t) for t in thread_ids]))
        *answers, scores = await self._execute(operation, calls)
        probes: list[_Probe] = []
        for i, thread_id in enumerate(thread_ids):
            first, last, expires = answers[2 * i]
            score = scores[i]
            probes.append(
                _Probe(
                    thread_id, _ms(first), _ms(last), _ms(expires), int(answers[2 * i + 1]),
                    None if score is None else float(score),
                )
            )
        return probes

    def _stale(self, probe: _Probe, now_ms: int) -> bool:
        """Whether a thread found gone is to leave the global indexes. On a cluster a put
        indexes a thread before its script stores it: only a thread whose expiry score
        has passed (Redis expired it) is dropped there."""
        if not probe.gone:
            return False
        return not self.cluster or (probe.score is not None and probe.score <= now_ms)

    async def _drop_stale(self, operation: str, probes: Sequence[_Probe]) -> None:
        """Take threads found gone out of the global indexes (their run sets, unknown
        now, keep them until a delete_for_runs finds them gone)."""
        calls = [c for p in probes for c in self._unindex(p.thread_id, (), thread_gone=True)]
        if calls:
            await self._execute(operation, calls)

    # -- the lifecycle primitives ----------------------------------------------------------

    async def _candidates(self, query: ThreadQuery) -> AsyncIterator[list[str]]:
        """Thread ids that may match, a chunk at a time, from the index that narrows them
        most: a removal by age or expiry walks the score index (any order), anything
        else the ids in order after ``query.after``."""
        if not query.ordered and (query.expired_at is not None or query.updated_before is not None):
            if query.expired_at is not None:
                key, top = self._threads_key, repr(query.expired_at * 1000)
            else:
                assert query.updated_before is not None
                key, top = self._written_key, f"({query.updated_before * 1000!r}"
            offset = 0
            while True:
                members = await self._execute_one(
                    "list_threads",
                    plain("ZRANGEBYSCORE", key, "-inf", top, "LIMIT", offset, PIPELINE_CHUNK),
                )
                if not members:
                    return
                yield [text_of(m) for m in members]
                if len(members) < PIPELINE_CHUNK:
                    return
                offset += len(members)
        low: bytes | str = "-" if query.after is None else b"(" + utf8(query.after)
        while True:
            members = await self._execute_one(
                "list_threads",
                plain("ZRANGEBYLEX", self._names_key, low, "+", "LIMIT", 0, PIPELINE_CHUNK),
            )
            if not members:
                return
            yield [text_of(m) for m in members]
            if len(members) < PIPELINE_CHUNK:
                return
            low = b"(" + bytes(members[-1])

    def _passes_times(self, probe: _Probe, query: ThreadQuery, now_ms: int) -> bool:
        """The query's conditions on a thread's times and state (not its metadata). A
        thread found gone passes the conditions on its (unknown) times when the query
        wants everything: removing it drops its index entries."""
        if probe.gone:
            return query.everything and not query.filter
        expired = probe.expires is not None and probe.expires <= now_ms
        if not query.everything and (expired or not probe.checkpoints):
            return False
        if query.expired_at is not None and not (
            probe.expires is not None and probe.expires <= query.expired_at * 1000
        ):
            return False
        last = probe.last or 0
        if query.updated_after is not None and not last > query.updated_after * 1000:
            return False
        return query.updated_before is None or last < query.updated_before * 1000

    async def _matching(self, probes: Sequence[_Probe], query: ThreadQuery, now_ms: int) -> list[_Probe]:
        """Those of ``probes`` with a checkpoint whose metadata match the filter: list.lua
        with the filter, one match each (every match when Lua's doubles cannot compare a
        value exactly, then checked here)."""
        if not query.filter or not probes:
            return list(probes)
        exact = filter_is_exact_in_lua(query.filter)
        # now 0: a removal (everything) also looks into threads that have expired
        clock = ReadClock(0 if query.everything else now_ms)
        calls = [
            list_call(
                base=self._base(p.thread_id),
                index=ListIndex.ALL_NAMESPACES,
                max_bound="+",
                min_bound="-",
                want=1 if exact else 0,
                scan_budget=0,
                filter_json=orjson.dumps(query.filter),
                with_data=False,
                clock=clock,
            )
            for p in probes
        ]
        found = await self._execute("list_threads", calls)
        if exact:
            return [p for p, (_, members) in zip(probes, found, strict=True) if members]
        matched: list[_Probe] = []
        for probe, (_, members) in zip(probes, found, strict=True):
            seqs = [bytes(m).split(b"\x00", 1)[-1] for m in members]
            if not seqs:
                continue
            metadata_key = thread_key(self._base(probe.thread_id), ThreadKey.METADATA)
            raws = await self._execute_one("list_threads", plain("HMGET", metadata_key, *seqs))
            where = f"thread {probe.thread_id!r}"
            if any(raw is not None and metadata_matches(raw, query.filter, where) for raw in raws):
                matched.append(probe)
        return matched

    async def _stats(self, probes: Sequence[_Probe]) -> list[ThreadInfo]:
        """Namespaces and stored bytes (MEMORY USAGE of every key), pipelined."""
        calls: list[Call] = []
        for probe in probes:
            base = self._base(probe.thread_id)
            calls.append(namespaces_call(base=base))
            calls.extend(plain("MEMORY", "USAGE", thread_key(base, key)) for key in ThreadKey)
        answers = await self._execute("list_threads", calls) if calls else []
        per = 1 + len(ThreadKey)
        infos: list[ThreadInfo] = []
        for i, probe in enumerate(probes):
            namespaces, *usage = answers[i * per : (i + 1) * per]
            info = self._info(probe)
            info.namespaces = tuple(sorted(unhex(bytes(ns)) for ns in namespaces))
            info.checkpoints = probe.checkpoints
            info.stored_bytes = sum(int(u) for u in usage if u is not None)
            infos.append(info)
        return infos

    @staticmethod
    def _info(probe: _Probe) -> ThreadInfo:
        return ThreadInfo(
            probe.thread_id,
            first_write=_seconds(probe.first),
            last_write=_seconds(probe.last),
            expires_at=None if probe.expires is None else probe.expires / 1000,
        )

    async def thread_page(self, query: ThreadQuery) -> list[ThreadInfo]:
        now_ms = self._now_ms()
        found: list[_Probe] = []
        stale: list[_Probe] = []
        async for chunk in self._candidates(query):
            probes = await self._probe("list_threads", chunk)
            stale.extend(p for p in probes if self._stale(p, now_ms))
            passing = [p for p in probes if self._passes_times(p, query, now_ms)]
            found.extend(await self._matching(passing, query, now_ms))
            if len(found) >= query.limit:
                break
        found = found[: query.limit]
        if not query.everything:
            # a removal drops what it finds gone itself (and counts it)
            await self._drop_stale("list_threads", stale)
        if query.with_stats:
            return await self._stats(found)
        return [self._info(p) for p in found]

    async def remove_threads(self, thread_ids: Sequence[str], guard: RemovalGuard) -> Removed:
        removed = Removed()
        wanted = list(dict.fromkeys(thread_ids))
        written_before = None if guard.written_before is None else guard.written_before * 1000
        expired_at = None if guard.expired_at is None else guard.expired_at * 1000
        for start in range(0, len(wanted), PIPELINE_CHUNK):
            chunk = wanted[start : start + PIPELINE_CHUNK]
            calls = [
                remove_thread_call(
                    base=self._base(t), written_before_ms=written_before, expired_at_ms=expired_at
                )
                for t in chunk
            ]
            cleanup: list[Call] = []
            for thread_id, answer in zip(chunk, await self._execute("remove_threads", calls), strict=True):
                status, checkpoints, writes, blobs, items, expires, last, *runs = answer
                member = utf8(thread_id)
                if status == RemoveStatus.KEPT:
                    # what the guard saw is newer than the index scores that found it
                    expiry = _ms(expires)
                    score = math.inf if expiry is None else expiry
                    cleanup.append(plain("ZADD", self._threads_key, "XX", "GT", score, member))
                    if _ms(last) is not None:
                        cleanup.append(plain("ZADD", self._written_key, "XX", "GT", _ms(last), member))
                    continue
                cleanup.extend(self._unindex(thread_id, [text_of(r) for r in runs], thread_gone=True))
                removed.add(
                    Removed([thread_id], int(checkpoints), int(writes), int(blobs), int(items))
                )
            if cleanup:
                await self._execute("remove_threads", cleanup)
        return removed

    async def set_thread_ttl(self, thread_id: str, ttl: float) -> bool:
        now_ms = self._now_ms()
        ttl_ms = 0 if ttl == PINNED else max(1, round(ttl * 1000))
        expiry = await self._execute_one(
            "set_ttl", set_ttl_call(base=self._base(thread_id), now_ms=now_ms, ttl_ms=ttl_ms)
        )
        if expiry is None:
            return False
        expires = _ms(expiry)
        score = math.inf if expires is None else expires
        await self._execute("set_ttl", [plain("ZADD", self._threads_key, score, utf8(thread_id))])
        return True

    async def thread_residue(self, thread_ids: Sequence[str]) -> list[str]:
        calls: list[Call] = []
        for thread_id in thread_ids:
            base = self._base(thread_id)
            member = utf8(thread_id)
            calls.append(plain("EXISTS", *[thread_key(base, key) for key in ThreadKey]))
            calls.extend(
                plain("ZSCORE", key, member)
                for key in (self._threads_key, self._names_key, self._written_key)
            )
        answers = await self._execute("forget", calls) if calls else []
        residue: list[str] = []
        for i, thread_id in enumerate(thread_ids):
            exists, *scores = answers[4 * i : 4 * i + 4]
            if exists or any(score is not None for score in scores):
                residue.append(thread_id)
        return residue
