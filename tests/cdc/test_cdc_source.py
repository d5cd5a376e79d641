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

FAST = RunnerOptions(batch_size=3, idle_timeout=0.02, standby_poll=0.02, lock_check_interval=0.05)


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
        async with asyncio.timeout(DEADLINE):
            while got != want:
                if task.done():
                    await task
                    raise AssertionError(f"the runner ended early: {runner.states}")
                await asyncio.sleep(0.01)
                with contextlib.suppress(ProjectionNotReadyError):
                    view = await read_model.view("drivers")
                    got = await view.client.hgetall(view.key("drivers"))
    finally:
        stop.set()
        await task


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
