"""The generated synchronous Repository on real PostgreSQL, with sync snapshots.

Plain (non-async) tests: the sync API as a Django view or a script calls it.
Concurrent writers are real threads, each with its own pooled connection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from aggregates import (
    AggregateNotFoundError,
    RepositoryConfigError,
    TimeTravelError,
)
from aggregates.ledger import Ledger
from aggregates.sync import Repository
from eventstore import ConcurrencyError, InvalidInputError, PostgresEventStore
from eventstore.sync import InMemoryEventStore
from eventstore.sync import PostgresEventStore as SyncPostgresEventStore
from snapshots import EveryNEvents
from snapshots.sync import PostgresSnapshotStore


def new_id() -> str:
    return uuid4().hex[:16]


@pytest.fixture(scope="module")
def store(pg_dsn: str) -> Iterator[SyncPostgresEventStore]:
    with SyncPostgresEventStore.connect(pg_dsn, pool_size=6) as opened:
        yield opened


@pytest.fixture
def repo(store: SyncPostgresEventStore) -> Repository:
    return Repository(store, [Ledger])


def test_create_update_load_and_not_found(repo: Repository) -> None:
    ledger_id = new_id()
    created = repo.create(Ledger, ledger_id, lambda led: led.open("ann", "EUR"))
    repo.update(Ledger, ledger_id, lambda led: led.deposit(5))
    loaded = repo.load(Ledger, ledger_id)
    assert (created.version, loaded.version, loaded.balance) == (1, 2, Decimal(5))
    with pytest.raises(AggregateNotFoundError):
        repo.load(Ledger, new_id())


def test_time_travel_by_version_timestamp_and_position(
    repo: Repository, store: SyncPostgresEventStore
) -> None:
    ledger_id = new_id()
    repo.create(Ledger, ledger_id, lambda led: led.open("ann", "EUR"))
    for amount in (1, 2, 4):
        repo.update(Ledger, ledger_id, lambda led, a=amount: led.deposit(a))  # type: ignore[misc]
    assert [repo.load(Ledger, ledger_id, at_version=v).balance for v in (1, 2, 3, 4)] == [
        0,
        1,
        3,
        7,
    ]
    with pytest.raises(TimeTravelError, match=r"at version 5.*stream is at version 4"):
        repo.load(Ledger, ledger_id, at_version=5)
    events = list(store.read_stream(Ledger.stream_id_for(ledger_id)))
    third = events[2]
    assert repo.load(Ledger, ledger_id, as_of=third.recorded_at).balance == 3
    assert repo.load(Ledger, ledger_id, at_position=third.position).balance == 3
    with pytest.raises(TimeTravelError):
        repo.load(Ledger, ledger_id, as_of=events[0].recorded_at - timedelta(days=1))


def test_a_stale_save_conflicts_and_update_retries_it(repo: Repository) -> None:
    ledger_id = new_id()
    repo.create(Ledger, ledger_id, lambda led: led.open("ann", "EUR"))
    stale = repo.load(Ledger, ledger_id)
    repo.update(Ledger, ledger_id, lambda led: led.deposit(1))
    stale.deposit(10)
    with pytest.raises(ConcurrencyError) as raised:
        repo.save(stale)
    assert (raised.value.stream_id, raised.value.actual) == (stale.stream_id, 2)

    # A competing write between update's load and its save: update loads again.
    competed = threading.Event()

    def decide(led: Ledger) -> None:
        if not competed.is_set():
            competed.set()
            repo.update(Ledger, ledger_id, lambda other: other.deposit(100))
        led.deposit(2)

    before = repo.retried_conflicts
    result = repo.update(Ledger, ledger_id, decide)
    assert repo.retried_conflicts == before + 1
    assert (result.version, result.balance) == (4, Decimal(103))


def test_concurrent_threads_lose_no_deposit(repo: Repository) -> None:
    ledger_id = new_id()
    repo.create(Ledger, ledger_id, lambda led: led.open("ann", "EUR"))
    failures: list[BaseException] = []

    def deposit_ten() -> None:
        try:
            for _ in range(10):
                repo.update(Ledger, ledger_id, lambda led: led.deposit(1), retries=50)
        except BaseException as error:  # reported below, never lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=deposit_ten) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    loaded = repo.load(Ledger, ledger_id)
    assert (loaded.version, loaded.balance) == (41, Decimal(40))


def test_snapshots_are_written_and_used(store: SyncPostgresEventStore) -> None:
    snapshots = PostgresSnapshotStore.from_event_store(store)
    repo = Repository(store, [Ledger], snapshots=snapshots, snapshot_policy=EveryNEvents(2))
    ledger_id = new_id()
    repo.create(Ledger, ledger_id, lambda led: led.open("ann", "EUR"))
    for _ in range(4):
        repo.update(Ledger, ledger_id, lambda led: led.deposit(3))
    snapshot = snapshots.load(Ledger.stream_id_for(ledger_id))
    assert snapshot is not None and snapshot.version == 4
    assert repo.load(Ledger, ledger_id).balance == Decimal(12)
    assert repo.load(Ledger, ledger_id, at_version=3).balance == Decimal(6)


def test_same_validation_as_the_async_repository(pg_store: PostgresEventStore) -> None:
    with pytest.raises(RepositoryConfigError, match=r"eventstore\.EventStore"):
        Repository(pg_store, [Ledger])  # type: ignore[arg-type]  (the async store)
    repo = Repository(InMemoryEventStore(), [Ledger])
    ledger_id = new_id()
    repo.create(Ledger, ledger_id, lambda led: led.open("ann", "EUR"))

    async def decide(led: Ledger) -> None:
        led.deposit(1)

    with pytest.raises(InvalidInputError, match="plain \\(sync\\) function"):
        repo.update(Ledger, ledger_id, decide)
    with pytest.raises(InvalidInputError, match="retries"):
        repo.update(Ledger, ledger_id, lambda led: led.deposit(1), retries=-1)
