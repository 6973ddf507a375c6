"""PostgresSaver behind a real PgBouncer in transaction-pooling mode
(``prepared_statements=False``): the whole conformance suite through both APIs,
concurrent graphs, paged listing and reconnection."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from langgraph_unified_store import PostgresSaver

from .conformance.runner import assert_full_conformance
from .graphs import padded_chat_graph, padded_turn
from .pgbouncer import running_pgbouncer
from .support import POSTGRES_DSN, config_for, drop_saver, put_numbered, unique

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def bouncer_dsn() -> Iterator[str]:
    with running_pgbouncer(POSTGRES_DSN, pool_size=3) as dsn:
        yield dsn


async def test_pgbouncer_is_really_in_transaction_mode(bouncer_dsn: str) -> None:
    """Five connected clients are served by at most three server backends (the pool
    size), which only transaction pooling allows."""
    clients = [await asyncpg.connect(bouncer_dsn, statement_cache_size=0) for _ in range(5)]
    try:
        pids = {await client.fetchval("SELECT pg_backend_pid()") for client in clients}
        assert 1 <= len(pids) <= 3
    finally:
        for client in clients:
            await client.close()


@pytest.mark.parametrize("api", ["async", "sync"])
async def test_conformance_through_pgbouncer(bouncer_dsn: str, api: str) -> None:
    @asynccontextmanager
    async def through_bouncer() -> AsyncIterator[PostgresSaver]:
        saver = PostgresSaver(bouncer_dsn, schema=unique("lus_pgb"), prepared_statements=False)
        try:
            await saver.asetup()
            yield saver
        finally:
            await drop_saver(saver)

    await assert_full_conformance("postgres-pgbouncer", through_bouncer, api)

async def test_concurrent_graphs_and_paged_listing_through_pgbouncer(bouncer_dsn: str) -> None:
    saver = PostgresSaver(
        bouncer_dsn, schema=unique("lus_pgb"), prepared_statements=False, max_size=8
    )
    try:
        await saver.asetup()
        graph = padded_chat_graph(saver)

        async def conversation(index: int) -> None:
            for number in range(3):
                await graph.ainvoke(padded_turn(f"{index}-{number}"), config_for(f"t{index}"))

        await asyncio.gather(*(conversation(i) for i in range(8)))
        for index in range(8):
            state = await graph.aget_state(config_for(f"t{index}"))
            assert len(state.values["messages"]) == 9

        errors: list[BaseException] = []

        def blocking(index: int) -> None:
            try:
                graph.invoke(padded_turn("sync"), config_for(f"t{index}"))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=blocking, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            await asyncio.to_thread(thread.join)
        assert not errors, errors

        for number in range(120):
            await put_numbered(saver, "paged", number, x=number)
        listed = [t.checkpoint["channel_values"]["x"] async for t in saver.alist(config_for("paged"))]
        assert listed == list(range(119, -1, -1))
        await saver.aprune([f"t{i}" for i in range(8)])
        assert len([t async for t in saver.alist(config_for("t0"))]) == 1
    finally:
        await drop_saver(saver)


async def test_reconnects_through_pgbouncer_after_server_connections_die(bouncer_dsn: str) -> None:
    # PgBouncer passes application_name on to its server connections, so only the
    # backends serving this saver are terminated.
    app = unique("lus_pgb_term")
    saver = PostgresSaver(
        bouncer_dsn,
        schema=unique("lus_pgb"),
        prepared_statements=False,
        server_settings={"application_name": app},
    )
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        await saver.asetup()
        await put_numbered(saver, "t", 1, x=1)
        for _ in range(2):
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1",
                app,
            )
            assert killed >= 1
            assert (await saver.aget_tuple(config_for("t"))) is not None
            await put_numbered(saver, "t", 2, x=2)
            assert await asyncio.to_thread(saver.list_workflows) == ["t"]
    finally:
        await admin.close()
        await drop_saver(saver)
