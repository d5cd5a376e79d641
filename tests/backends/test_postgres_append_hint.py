"""The append path's server-side shape: the wake-up hint and the correlation index.

The hint used to come from an AFTER INSERT trigger; the append statement now sends
it itself (see ``_pg_append``: ``_HINT``), which must keep its contract: a hint
after every successful append while a subscriber is registered, none while nobody
is, and (new) none for an append that was rejected.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from eventstore import ConcurrencyError, NewEvent, PostgresEventStore, correlation
from eventstore._pg_schema import notify_channel


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[PostgresEventStore]:
    # A schema of its own: its listeners table is ours alone.
    store = await PostgresEventStore.connect(
        pg_dsn, schema=f"t_{uuid.uuid4().hex[:12]}", pool_size=2
    )
    yield store
    await store.close()


class _Hints:
    """A LISTEN connection on the store's channel, counting what reaches it."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.connection = connection
        self.received: list[psycopg.Notify] = []
        connection.add_notify_handler(self.received.append)

    async def until(self, count: int) -> None:
        """Wait (a hang guard, not a timing) until ``count`` hints arrived.

        Hints are delivered in commit order, so once the hint of a later append
        is here, one of an earlier append would be here too.
        """
        async with asyncio.timeout(60):
            while len(self.received) < count:
                # A round trip lets psycopg read what the server queued.
                await self.connection.execute("SELECT 1")
                if len(self.received) < count:
                    await asyncio.sleep(0.01)


@pytest.fixture
async def hints(store: PostgresEventStore) -> AsyncIterator[_Hints]:
    async with await psycopg.AsyncConnection.connect(store.dsn, autocommit=True) as connection:
        await connection.execute(
            sql.SQL("LISTEN {}").format(sql.Identifier(notify_channel(store.schema)))
        )
        yield _Hints(connection)


async def _register(store: PostgresEventStore, pid: int) -> None:
    async with store.connection() as connection:
        await connection.execute(
            sql.SQL("INSERT INTO {} (pid) VALUES (%s)").format(
                sql.Identifier(store.schema, "listeners")
            ),
            (pid,),
        )


async def test_an_append_hints_only_while_someone_listens_and_only_when_it_succeeds(
    store: PostgresEventStore, hints: _Hints
) -> None:
    stream = f"hint-{uuid.uuid4().hex}"
    # Nobody registered: the first append sends nothing.
    await store.append(stream, [NewEvent("Noted", {"n": 1})], 0)
    await _register(store, hints.connection.info.backend_pid)
    await store.append(stream, [NewEvent("Noted", {"n": 2})], 1)
    await hints.until(1)
    assert len(hints.received) == 1  # the unregistered append's would come first
    assert hints.received[0].payload == ""
    # A rejected append (wrong expected version) sends nothing either.
    with pytest.raises(ConcurrencyError):
        await store.append(stream, [NewEvent("Noted", {"n": 3})], 1)
    # Every kind of claim hints: exact version, ANY (upsert), NO_STREAM (insert),
    # and the batch form.
    await store.append(stream, [NewEvent("Noted", {"n": 3})], 2)
    await store.append(stream, [NewEvent("Noted", {"n": 4})])
    await store.append(f"{stream}-new", [NewEvent("Noted", {"n": 1})], 0)
    await store.append(stream, [NewEvent("Noted", {"n": n}) for n in (5, 6)], 4)
    await hints.until(5)
    assert len(hints.received) == 5


async def test_a_hint_in_a_callers_transaction_waits_for_its_commit(
    store: PostgresEventStore, hints: _Hints
) -> None:
    await _register(store, hints.connection.info.backend_pid)
    stream = f"hint-tx-{uuid.uuid4().hex}"
    async with store.connection() as connection, connection.transaction(force_rollback=True):
        await store.append(stream, [NewEvent("Noted", {})], 0, connection=connection)
    # Rolled back: no hint; the next append's hint is the only one.
    await store.append(stream, [NewEvent("Noted", {})], 0)
    await hints.until(1)
    assert len(hints.received) == 1


async def test_the_schema_has_no_notify_trigger_and_a_partial_correlation_index(
    store: PostgresEventStore,
) -> None:
    async with store.connection() as connection:
        cursor = await connection.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            (f"{store.schema}.events",),
        )
        triggers = {row[0] for row in await cursor.fetchall()}
        cursor = await connection.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
            (store.schema, "events_correlation"),
        )
        row = await cursor.fetchone()
    # The append-only guards stay; only the wake-up trigger moved into the append.
    assert triggers == {"events_append_only", "events_no_truncate"}
    assert row is not None and "IS NOT NULL" in row[0]
    # Events with and without a correlation id: the trace finds exactly its own.
    stream = f"corr-{uuid.uuid4().hex}"
    await store.append(stream, [NewEvent("Plain", {})])
    with correlation("request-42"):
        await store.append(stream, [NewEvent("Traced", {"n": 1})])
        await store.append(f"{stream}-b", [NewEvent("Traced", {"n": 2})])
    found = await store.correlated_events("request-42")
    assert [(e.stream_id, e.type) for e in found] == [
        (stream, "Traced"),
        (f"{stream}-b", "Traced"),
    ]
