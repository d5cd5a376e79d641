"""A read model built from a legacy table through the event-source seam, without Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
import redis.asyncio as aioredis
from cdc_support import CdcTable
from support.projection_runs import DEADLINE

from eventstore import EventCodec, RecordedEvent
from messaging import CdcOptions, ChangeEventSource, RowChange
from projections import (
    Projection,
    ProjectionNotReadyError,
    ProjectionRunner,
    RedisReadModel,
    RedisWrites,
    RunnerOptions,
)

# A restart (a connection refused on a loaded server, say) is the runner's normal
# answer to a failure; the default backoff (0.5 s doubling to 30 s) would spend the
# hang guard below in a handful of them.
FAST = RunnerOptions(
    batch_size=3,
    idle_timeout=0.02,
    standby_poll=0.02,
    lock_check_interval=0.05,
    restart_delay=0.05,
    max_restart_delay=1.0,
)
#: A hang guard per phase, not a timing assertion.  The first phase creates the
#: replication slot, which waits until every transaction holding an xid anywhere on
#: the server has ended (the whole test session shares the server), and each read
#: decodes the WAL the slot keeps since its restart point, the session's writes
#: included: on a loaded machine that is legitimately slow, while a phase
#: normally takes well under a second.
CDC_DEADLINE = 3 * DEADLINE


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis_client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield redis_client
    await redis_client.aclose()


def drivers_projection(table: CdcTable) -> tuple[Projection[RedisWrites], list[str]]:
    class RideChanged(RowChange):
        event_type: ClassVar[str] = table.table

    seen: list[str] = []
    projection = Projection("drivers", writes=RedisWrites, codec=EventCodec([RideChanged]))

    @projection.on(RideChanged)
    def changed(event: RideChanged, envelope: RecordedEvent, w: RedisWrites) -> None:
        seen.append(f"{event.op}:{envelope.stream_id}")
        if event.op == "d":
            assert event.before is not None
            w.hdel("drivers", str(event.before["id"]))
        elif event.op == "t":
            w.delete("drivers")
        else:
            assert event.after is not None
            w.hset("drivers", {str(event.after["id"]): event.after["driver"]})

    return projection, seen


async def table_rows(table: CdcTable) -> dict[str, str]:
    import psycopg

    async with await psycopg.AsyncConnection.connect(table.dsn) as connection:
        cursor = await connection.execute(f"SELECT id, driver FROM {table.table}")
        return {str(i): str(d) for i, d in await cursor.fetchall()}


async def run_until_equal(
    runner: ProjectionRunner, read_model: RedisReadModel, table: CdcTable
) -> None:
    """Run until the read model holds what the table holds (a condition with a deadline)."""
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    want = await table_rows(table)
    got: dict[str, Any] = {}
    try:
        async with asyncio.timeout(CDC_DEADLINE):
            while got != want:
                if task.done():
                    await task
                    raise AssertionError(f"the runner ended early: {runner.states}")
                await asyncio.sleep(0.01)
                with contextlib.suppress(ProjectionNotReadyError):
                    view = await read_model.view("drivers")
                    got = await view.client.hgetall(view.key("drivers"))
    except TimeoutError:
        # Say what it was waiting on: the runner (restarts, last error) and the server.
        raise AssertionError(
            f"the read model never matched the table: {got} != {want}; "
            f"runner: {runner.states}; server: {await server_waits(table)}"
        ) from None
    finally:
        stop.set()
        # A runner stuck on the server (creating its slot) never sees ``stop``:
        # cancel it rather than hang here and hide the assertion above.
        if not (await asyncio.wait([task], timeout=DEADLINE))[0]:
            task.cancel()
            await asyncio.wait([task], timeout=DEADLINE)
        if task.done() and not task.cancelled() and task.exception() is not None:
            await task


async def server_waits(table: CdcTable) -> dict[str, Any]:
    """What a slot waits on: transactions holding an xid, and the connector's slot."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(table.dsn, autocommit=True) as connection:
        cursor = await connection.execute(
            "SELECT pid, backend_type, state, backend_xid::text, now() - xact_start,"
            " left(query, 120) FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND (backend_xid IS NOT NULL OR state = 'active')"
        )
        activity = await cursor.fetchall()
        cursor = await connection.execute(
            "SELECT active_pid, restart_lsn::text, confirmed_flush_lsn::text,"
            " pg_current_wal_lsn()::text FROM pg_replication_slots WHERE slot_name = %s",
            (f"chronik_cdc_{table.name}",),
        )
        slot = await cursor.fetchall()
    return {"activity": activity, "slot": slot}


async def test_read_model_from_a_legacy_table_across_restarts(
    cdc_table: CdcTable, client: aioredis.Redis
) -> None:
    table = cdc_table
    await table.execute("INSERT INTO {t} (id, driver) VALUES (1, 'ann'), (2, 'bob')")
    source = ChangeEventSource(
        table.dsn, CdcOptions(tables=(table.table,), name=table.name), poll_interval=0.02
    )
    read_model = RedisReadModel(client, prefix=f"cdc{uuid.uuid4().hex[:8]}:")
    projection, seen = drivers_projection(table)
    runner = ProjectionRunner(source, [(projection, read_model)], options=FAST)
    await run_until_equal(runner, read_model, table)  # the snapshot
    assert sorted(seen) == [f'r:{table.table}:{{"id":1}}', f'r:{table.table}:{{"id":2}}']

    await table.execute("UPDATE {t} SET driver = 'cy' WHERE id = 1")
    await table.execute("DELETE FROM {t} WHERE id = 2")
    await table.execute("INSERT INTO {t} (id, driver) VALUES (3, 'di'), (4, 'ed')")
    await run_until_equal(runner, read_model, table)

    # A new runner (a restart) carries on from the checkpoint: nothing twice.
    seen.clear()
    await table.execute("UPDATE {t} SET driver = 'fay' WHERE id = 4")
    runner = ProjectionRunner(source, [(projection, read_model)], options=FAST)
    await run_until_equal(runner, read_model, table)
    assert seen == [f'u:{table.table}:{{"id":4}}']
