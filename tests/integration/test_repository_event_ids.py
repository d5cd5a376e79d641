"""Repository.save with caller-chosen event ids and inside a caller's transaction."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from aggregates import Repository
from aggregates.ledger import Ledger
from eventstore import InvalidInputError, PostgresEventStore
from snapshots import EveryNEvents, PostgresSnapshotStore


def new_id() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def repo(pg_store: PostgresEventStore) -> Repository:
    return Repository(pg_store, [Ledger])


async def test_given_event_ids_are_stored_and_a_repeat_is_a_no_op(repo: Repository) -> None:
    ledger_id = new_id()
    await repo.create(Ledger, ledger_id, lambda ledger: ledger.open("ann", "EUR"))
    ids = [uuid.uuid4(), uuid.uuid4()]
    first = await repo.load(Ledger, ledger_id)
    first.deposit(5)
    first.deposit(7)
    result = await repo.save(first, event_ids=ids)
    stored = [e.event_id async for e in repo.store.read_stream(first.stream_id, 2)]
    assert stored == ids
    # The same decision made again from the same state, with the same ids: the
    # store answers with the original positions and writes nothing.
    again = await repo.load(Ledger, ledger_id, at_version=1)
    again.deposit(5)
    again.deposit(7)
    assert (await repo.save(again, event_ids=ids)).positions == result.positions
    assert (await repo.load(Ledger, ledger_id)).balance == Decimal(12)


@pytest.mark.parametrize("count", [0, 1, 3])
async def test_event_ids_must_match_the_pending_events(repo: Repository, count: int) -> None:
    ledger = Ledger(new_id())
    ledger.open("ann", "EUR")
    ledger.deposit(1)
    with pytest.raises(InvalidInputError, match="one per pending event"):
        await repo.save(ledger, event_ids=[uuid.uuid4() for _ in range(count)])
    same = uuid.uuid4()
    with pytest.raises(InvalidInputError, match="repeat"):
        await repo.save(ledger, event_ids=[same, same])
    assert await repo.store.stream_version(ledger.stream_id) == 0
    assert len(ledger.pending_events) == 2


async def test_a_save_in_a_rolled_back_transaction_leaves_nothing(
    pg_store: PostgresEventStore,
) -> None:
    snapshots = PostgresSnapshotStore.from_event_store(pg_store)
    await snapshots.migrate()
    repo = Repository(pg_store, [Ledger], snapshots=snapshots, snapshot_policy=EveryNEvents(1))
    ledger = Ledger(new_id())
    ledger.open("ann", "EUR")

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        async with pg_store.connection() as connection, connection.transaction():
            await repo.save(ledger, connection=connection)
            raise Rollback
    assert await pg_store.stream_version(ledger.stream_id) == 0
    # No snapshot of state that never committed.
    assert await snapshots.load(ledger.stream_id) is None

    fresh = Ledger(new_id())
    fresh.open("bo", "EUR")
    async with pg_store.connection() as connection, connection.transaction():
        await repo.save(fresh, connection=connection)
    assert (await repo.load(Ledger, fresh.id)).owner == "bo"
