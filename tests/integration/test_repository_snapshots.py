"""The Repository's use of snapshots, on every snapshot backend.

Snapshots are an optimisation, never the truth: a snapshot is used only when its
fingerprint and type match and its state loads; otherwise state is rebuilt from the
events and a fresh snapshot written.  Writing one never fails the command.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates import (
    DomainError,
    InvalidStateError,
    Repository,
    RepositoryConfigError,
    UnsavedEventsError,
)
from aggregates.ledger import Ledger
from aggregates.order import Order
from eventstore import EventStore, InMemoryEventStore, InvalidInputError, PostgresEventStore
from snapshots import (
    EveryNEvents,
    InMemorySnapshotStore,
    OnDemand,
    PostgresSnapshotStore,
    RedisSnapshotCache,
    Snapshot,
    SnapshotPolicy,
    SnapshotStore,
    SnapshotStoreError,
)

D = Decimal


def new_id() -> str:
    return uuid4().hex[:16]


@pytest.fixture(params=["memory", "postgres", "redis"])
async def backends(
    request: pytest.FixtureRequest, pg_store: PostgresEventStore, redis_url: str
) -> AsyncIterator[tuple[EventStore, SnapshotStore]]:
    if request.param == "memory":
        yield InMemoryEventStore(), InMemorySnapshotStore(keep=10)
        return
    postgres = PostgresSnapshotStore.from_event_store(pg_store, keep=10)
    if request.param == "postgres":
        yield pg_store, postgres
        return
    cache = await RedisSnapshotCache.connect(redis_url, backing=postgres)
    yield pg_store, cache
    await cache.close()


def repository(backends: tuple[EventStore, SnapshotStore], policy: Any = None) -> Repository:
    store, snapshots = backends
    return Repository(store, [Ledger, Order], snapshots=snapshots, snapshot_policy=policy)


async def ledger_with_deposits(repo: Repository, *amounts: int) -> str:
    ledger_id = new_id()
    await repo.create(Ledger, ledger_id, lambda led: led.open("ann", "EUR"))
    for amount in amounts:
        await repo.update(Ledger, ledger_id, lambda led, a=amount: led.deposit(a))  # type: ignore[misc]
    return ledger_id


def marked(snapshot: Snapshot, marker: int) -> Snapshot:
    """The snapshot with ``marker`` added to the balance: a load that used it shows it."""
    state = dict(snapshot.state, balance=str(D(snapshot.state["balance"]) + marker))
    return replace(snapshot, state=state)


async def test_the_policy_writes_snapshots_after_saves(
    backends: tuple[EventStore, SnapshotStore],
) -> None:
    repo = repository(backends, EveryNEvents(3))
    ledger_id = await ledger_with_deposits(repo, *range(1, 8))  # versions 1..8
    kept = await backends[1].load_all(f"ledger-{ledger_id}")
    assert [s.version for s in kept] == [3, 6]
    assert all(s.fingerprint == Ledger.state_fingerprint() for s in kept)
    assert D(kept[-1].state["balance"]) == 1 + 2 + 3 + 4 + 5
    assert repo.snapshot_failures == 0


async def test_the_default_policy_is_every_100_events(
    backends: tuple[EventStore, SnapshotStore],
) -> None:
    repo = repository(backends)
    ledger = Ledger(new_id())
    ledger.open("ann", "EUR")
    for _ in range(120):
        ledger.deposit(1)
    await repo.save(ledger)
    assert [s.version for s in await backends[1].load_all(ledger.stream_id)] == [121]


async def test_loads_start_from_the_newest_snapshot_not_newer_than_the_target(
    backends: tuple[EventStore, SnapshotStore],
) -> None:
    repo = repository(backends, OnDemand())
    ledger_id = await ledger_with_deposits(repo, *range(1, 10))  # balance at v: sum(1..v-1)
    taken = [
        await repo.snapshot(await repo.load(Ledger, ledger_id, at_version=version))
        for version in (3, 6)
    ]
    for snapshot, marker in zip(taken, (1000, 2000), strict=True):
        await backends[1].save(marked(snapshot, marker))

    def truth(version: int) -> int:
        return sum(range(1, version))

    for target, marker in ((2, 0), (3, 1000), (5, 1000), (6, 2000), (8, 2000), (None, 2000)):
        loaded = await repo.load(Ledger, ledger_id, at_version=target)
        assert loaded.balance == truth(target or 10) + marker, target
    assert repo.snapshots_ignored == 0


async def test_a_snapshot_of_another_schema_is_ignored_and_replaced(
    backends: tuple[EventStore, SnapshotStore], caplog: pytest.LogCaptureFixture
) -> None:
    repo = repository(backends, OnDemand())
    ledger_id = await ledger_with_deposits(repo, 5, 6)
    stream_id = f"ledger-{ledger_id}"
    old = Snapshot(stream_id, "ledger", 2, "fingerprint-of-last-release", {"money": "999"})
    await backends[1].save(old)
    with caplog.at_level(logging.INFO, logger="chronik.aggregates"):
        loaded = await repo.load(Ledger, ledger_id)
    assert loaded.balance == 11 and loaded.version == 3
    assert repo.snapshots_ignored == 1
    assert "fingerprint" in caplog.text and stream_id in caplog.text
    fresh = await backends[1].load(stream_id)
    assert fresh is not None
    assert (fresh.version, fresh.fingerprint) == (3, Ledger.state_fingerprint())
    assert (await repo.load(Ledger, ledger_id)).balance == 11
    assert repo.snapshots_ignored == 1  # the fresh one was used


@pytest.mark.parametrize(
    "change",
    [
        {"state": {"balance": "not money", "status": "open"}},
        {"state": {"balance": "1", "status": "no such status"}},
        {"aggregate_type": "order"},
    ],
)
async def test_a_snapshot_that_does_not_load_is_ignored_and_replaced(
    backends: tuple[EventStore, SnapshotStore],
    change: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo = repository(backends, OnDemand())
    ledger_id = await ledger_with_deposits(repo, 5, 6)
    good = await repo.snapshot(await repo.load(Ledger, ledger_id, at_version=2))
    await backends[1].save(replace(good, **change))
    with caplog.at_level(logging.WARNING, logger="chronik.aggregates"):
        loaded = await repo.load(Ledger, ledger_id)
    assert loaded.balance == 11
    assert repo.snapshots_ignored == 1
    assert f"ledger-{ledger_id}" in caplog.text
    fresh = await backends[1].load(f"ledger-{ledger_id}")
    assert fresh is not None and fresh.version == 3 and fresh.aggregate_type == "ledger"


class BrokenSnapshots(InMemorySnapshotStore):
    def __init__(self, *, fail_save: bool = False, fail_load: bool = False) -> None:
        super().__init__()
        self.fail_save, self.fail_load = fail_save, fail_load

    async def save(self, snapshot: Snapshot) -> None:
        if self.fail_save:
            raise SnapshotStoreError("broken", "disk full", snapshot.stream_id)
        await super().save(snapshot)

    async def load(self, stream_id: str, *, max_version: int | None = None) -> Snapshot | None:
        if self.fail_load:
            raise SnapshotStoreError("broken", "unreachable", stream_id)
        return await super().load(stream_id, max_version=max_version)


async def test_a_failing_snapshot_write_never_fails_the_command(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemoryEventStore()
    repo = Repository(
        store, [Ledger], snapshots=BrokenSnapshots(fail_save=True), snapshot_policy=EveryNEvents(2)
    )
    with caplog.at_level(logging.WARNING, logger="chronik.aggregates"):
        ledger_id = await ledger_with_deposits(repo, 1, 2)
    assert (await repo.load(Ledger, ledger_id)).balance == 3
    assert repo.snapshot_failures == 1
    record = next(r for r in caplog.records if "snapshot of" in r.getMessage())
    assert record.levelno == logging.WARNING
    assert f"ledger-{ledger_id} at version 2" in record.getMessage()
    assert "disk full" in record.getMessage()


class BrokenPolicy(SnapshotPolicy):
    def should_snapshot(self, aggregate_type: str, old_version: int, new_version: int) -> bool:
        raise RuntimeError("policy bug")


async def test_a_failing_policy_never_fails_the_command() -> None:
    repo = Repository(
        InMemoryEventStore(),
        [Ledger],
        snapshots=InMemorySnapshotStore(),
        snapshot_policy=BrokenPolicy(),
    )
    ledger_id = await ledger_with_deposits(repo, 1)
    assert (await repo.load(Ledger, ledger_id)).balance == 1
    assert repo.snapshot_failures == 2  # create and update both asked


async def test_an_unreadable_snapshot_store_falls_back_to_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo = Repository(InMemoryEventStore(), [Ledger], snapshots=BrokenSnapshots(fail_load=True))
    ledger_id = await ledger_with_deposits(repo, 4)
    with caplog.at_level(logging.WARNING, logger="chronik.aggregates"):
        assert (await repo.load(Ledger, ledger_id)).balance == 4
    assert repo.snapshots_ignored >= 1
    assert "unreachable" in caplog.text


async def test_on_demand_snapshot_refuses_what_it_cannot_snapshot() -> None:
    snapshots = InMemorySnapshotStore()
    repo = Repository(InMemoryEventStore(), [Ledger], snapshots=snapshots)
    ledger_id = await ledger_with_deposits(repo, 1)
    ledger = await repo.load(Ledger, ledger_id)
    ledger.deposit(1)
    with pytest.raises(UnsavedEventsError, match="1 unsaved event"):
        await repo.snapshot(ledger)
    with pytest.raises(InvalidInputError, match="version 0"):
        await repo.snapshot(Ledger(new_id()))
    with pytest.raises(RepositoryConfigError, match="no snapshot store"):
        await Repository(InMemoryEventStore(), [Ledger]).snapshot(ledger)
    with pytest.raises(RepositoryConfigError, match="needs a snapshot store"):
        Repository(InMemoryEventStore(), [Ledger], snapshot_policy=OnDemand())
    await repo.save(ledger)
    snapshot = await repo.snapshot(ledger)
    assert (snapshot.version, D(snapshot.state["balance"])) == (3, 2)
    assert await snapshots.load(ledger.stream_id) == replace(
        snapshot,
        recorded_at=(await snapshots.load(ledger.stream_id)).recorded_at,  # type: ignore[union-attr]
    )


def test_from_state_rejects_what_a_snapshot_cannot_hold() -> None:
    with pytest.raises(InvalidStateError):
        Ledger.from_state("x", 2, {"balance": 1.5})  # floats are not money, even here


# -- the property, on PostgreSQL -------------------------------------------------

HISTORY = st.lists(
    st.one_of(
        st.tuples(st.just("deposit"), st.decimals(min_value=D("0.01"), max_value=D(99), places=2)),
        st.tuples(st.just("withdraw"), st.decimals(min_value=D("0.01"), max_value=D(99), places=2)),
        st.tuples(st.just("freeze"), st.none()),
        st.tuples(st.just("unfreeze"), st.none()),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=15)
@given(history=HISTORY, batches=st.integers(min_value=1, max_value=4), data=st.data())
async def test_loading_with_snapshots_equals_loading_without_on_postgres(
    pg_store: PostgresEventStore, history: list[tuple[str, Any]], batches: int, data: st.DataObject
) -> None:
    snapshots = PostgresSnapshotStore.from_event_store(pg_store, keep=10)
    plain = Repository(pg_store, [Ledger])
    snapshotting = Repository(pg_store, [Ledger], snapshots=snapshots, snapshot_policy=OnDemand())
    ledger = Ledger(new_id())
    ledger.open("ann", "EUR", overdraft_limit=50)
    for index, (command, argument) in enumerate(history):
        with contextlib.suppress(DomainError):  # refusals are part of a random history
            getattr(ledger, command)(*(() if argument is None else (argument,)))
        if index % batches == 0:
            await plain.save(ledger)  # several appends: several transactions
    await plain.save(ledger)
    versions = st.sampled_from(range(1, ledger.version + 1))
    for point in data.draw(st.sets(versions, min_size=1, max_size=4), label="snapshot points"):
        await snapshotting.snapshot(await plain.load(Ledger, ledger.id, at_version=point))
    for target in [*data.draw(st.lists(versions, max_size=5), label="targets"), None]:
        a = await snapshotting.load(Ledger, ledger.id, at_version=target)
        b = await plain.load(Ledger, ledger.id, at_version=target)
        assert (a.version, a.state) == (b.version, b.state)
    assert snapshotting.snapshots_ignored == 0
