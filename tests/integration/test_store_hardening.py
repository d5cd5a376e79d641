"""The Postgres store under hostile input: the paths the shared contract cannot reach
(a caller's transaction, rows written behind the store's back, driver limits)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from contracts.event_store import collect, new_events, new_stream
from contracts.event_store_shapes import nested
from support.raw_rows import deep_json, insert_raw

from aggregates import Repository, TimeTravelError
from aggregates.ledger import Ledger
from eventstore import (
    MAX_NESTING_DEPTH,
    MAX_VERSION,
    DeadlockError,
    InvalidAppendError,
    InvalidInputError,
    NewEvent,
    PostgresEventStore,
    UnreadableEventError,
)
from snapshots import PostgresSnapshotStore


def new_id() -> str:
    return uuid.uuid4().hex


async def test_a_callers_transaction_gets_the_same_nesting_check(
    pg_store: PostgresEventStore,
) -> None:
    stream = new_stream()
    async with pg_store.connection() as connection, connection.transaction():
        await pg_store.append(stream, new_events(1), connection=connection)
        with pytest.raises(InvalidAppendError, match="nests deeper than"):
            await pg_store.append(
                stream,
                [NewEvent("t.Deep", nested(5_000))],
                connection=connection,
            )
        with pytest.raises(InvalidAppendError, match="non-string key 1"):
            await pg_store.append(stream, [NewEvent("t.Keys", {1: "a"})], connection=connection)
    assert await pg_store.stream_version(stream) == 1


async def test_an_undecodable_row_is_named_after_the_events_before_it(
    make_pg_store: Any,
) -> None:
    store: PostgresEventStore = await make_pg_store()
    stream = new_stream()
    await store.append(stream, new_events(3))
    position = await insert_raw(store, stream, 4, deep_json(5_000), "t.TooDeep")
    await store.append(stream, new_events(1))  # after it: version 5

    for read in (
        lambda: store.read_stream(stream),
        lambda: store.read_all(),
        lambda: store.read_stream_backwards(stream),
    ):
        seen: list[int] = []
        with pytest.raises(UnreadableEventError) as caught:
            async for event in read():
                seen.append(event.version)
        error = caught.value
        assert (error.stream_id, error.version, error.position) == (stream, 4, position)
        assert error.event_type == "t.TooDeep"
        assert "cannot be decoded" in str(error) and stream in str(error)
        assert seen in ([1, 2, 3], [5])
    # A reader can step over it: everything after it still reads.
    after = [e.version async for e in store.read_all(position)]
    assert after == [5]
    assert [e.version for e in await collect(store.read_stream(stream, 5))] == [5]


async def test_a_row_at_the_limit_written_raw_reads_normally(make_pg_store: Any) -> None:
    store: PostgresEventStore = await make_pg_store()
    stream = new_stream()
    await insert_raw(store, stream, 1, deep_json(MAX_NESTING_DEPTH))
    [event] = await collect(store.read_stream(stream))
    assert event.data == nested(MAX_NESTING_DEPTH)


async def test_time_travel_past_any_version_is_a_time_travel_error(
    pg_store: PostgresEventStore,
) -> None:
    # A stream longer than one page, so the paged reads run too.
    stream = new_stream("hard")
    await pg_store.append(stream, new_events(1001))
    for high in (MAX_VERSION, MAX_VERSION + 1, 2**70, 99999999999999999999999):
        assert len(await collect(pg_store.read_stream(stream, 1000, high))) == 2
    snapshots = PostgresSnapshotStore.from_event_store(pg_store)
    repository = Repository(pg_store, [Ledger], snapshots=snapshots)
    ledger = await repository.create(Ledger, new_id(), lambda ledger: ledger.open("ann", "EUR"))
    for _ in range(3):
        await repository.update(Ledger, ledger.id, lambda ledger: ledger.deposit(1))
    await repository.snapshot(await repository.load(Ledger, ledger.id))
    for target in (5, MAX_VERSION, MAX_VERSION + 1, 99999999999999999999999):
        with pytest.raises(TimeTravelError, match=f"at version {target}.*is at version 4"):
            await repository.load(Ledger, ledger.id, at_version=target)
    assert await snapshots.load(ledger.stream_id, max_version=2**70) is not None
    with pytest.raises(InvalidInputError, match="invalid expected version"):
        await pg_store.append(stream, new_events(1), 2**63)


async def test_opposite_order_appends_in_two_transactions_deadlock_as_a_typed_error(
    pg_dsn: str,
) -> None:
    store = await PostgresEventStore.connect(pg_dsn, pool_size=3)
    first, second = new_stream("dl"), new_stream("dl")
    both_hold_one = asyncio.Barrier(2)

    async def transaction(
        connection: Any, streams: tuple[str, str], barrier: asyncio.Barrier | None
    ) -> DeadlockError | None:
        try:
            async with connection.transaction():
                await store.append(streams[0], new_events(1), connection=connection)
                if barrier is not None:
                    await barrier.wait()
                await store.append(streams[1], new_events(1), connection=connection)
        except DeadlockError as error:
            return error
        return None

    try:
        async with store.connection() as one, store.connection() as two:
            orders = ((first, second), (second, first))
            results = await asyncio.gather(
                transaction(one, orders[0], both_hold_one),
                transaction(two, orders[1], both_hold_one),
            )
            errors = [r for r in results if r is not None]
            assert len(errors) == 1, results
            [error] = errors
            assert isinstance(error.__cause__, psycopg.errors.DeadlockDetected)
            loser = results.index(error)
            held, wanted = orders[loser]
            assert (error.stream_id, error.held_streams) == (wanted, (held,))
            assert f"stream {wanted!r} deadlocked" in str(error)
            assert "fixed order" in str(error)
            # Nothing of the loser was written; the winner committed both appends.
            events = await collect(store.read_stream(first)) + await collect(
                store.read_stream(second)
            )
            assert len(events) == 2
            assert len({e.position.transaction_id for e in events}) == 1
            # Retrying the whole transaction succeeds.
            assert await transaction((one, two)[loser], orders[loser], None) is None
        assert await store.stream_version(first) == await store.stream_version(second) == 2
    finally:
        await store.close()
