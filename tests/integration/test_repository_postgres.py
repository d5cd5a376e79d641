"""The Repository on real PostgreSQL: round trips, time travel, concurrent writers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from aggregates import AggregateNotFoundError, Repository, TimeTravelError
from aggregates.ledger import Deposited, Ledger
from aggregates.order import Order
from eventstore import ConcurrencyError, Position, PostgresEventStore, RecordedEvent

D = Decimal


def new_id() -> str:
    return uuid4().hex[:16]


@pytest.fixture
def repo(pg_store: PostgresEventStore) -> Repository:
    return Repository(pg_store, [Ledger, Order])


async def stored(store: PostgresEventStore, stream_id: str) -> list[RecordedEvent]:
    return [event async for event in store.read_stream(stream_id)]


async def test_round_trip_and_not_found(repo: Repository) -> None:
    order_id = new_id()
    order = await repo.create(
        Order, order_id, lambda o: o.place("c1", [("apple", 3, "0.50"), ("pear", 1, "2.25")])
    )
    await repo.update(Order, order_id, lambda o: o.pay(o.total))
    loaded = await repo.load(Order, order_id)
    assert loaded.total == D("3.75")
    assert loaded.state.paid == D("3.75")
    assert loaded.version == 2 and order.version == 1
    with pytest.raises(AggregateNotFoundError):
        await repo.load(Order, new_id())


async def test_time_travel_by_version(repo: Repository) -> None:
    ledger_id = new_id()
    await repo.create(Ledger, ledger_id, lambda led: led.open("ann", "EUR"))
    for amount in (1, 2, 4, 8):
        await repo.update(Ledger, ledger_id, lambda led, a=amount: led.deposit(a))  # type: ignore[misc]
    assert [(await repo.load(Ledger, ledger_id, at_version=v)).balance for v in range(1, 6)] == [
        0,
        1,
        3,
        7,
        15,
    ]
    with pytest.raises(TimeTravelError, match=r"at version 6.*stream is at version 5"):
        await repo.load(Ledger, ledger_id, at_version=6)


async def test_time_travel_by_database_timestamp(
    repo: Repository, pg_store: PostgresEventStore
) -> None:
    ledger_id = new_id()
    await repo.create(Ledger, ledger_id, lambda led: led.open("ann", "EUR"))
    for amount in (5, 6, 7):
        await repo.update(Ledger, ledger_id, lambda led, a=amount: led.deposit(a))  # type: ignore[misc]
    events = await stored(pg_store, f"ledger-{ledger_id}")
    for event in events:
        # Several events may share a timestamp; as_of takes all recorded at or before it.
        expected = max(e.version for e in events if e.recorded_at <= event.recorded_at)
        loaded = await repo.load(Ledger, ledger_id, as_of=event.recorded_at)
        assert loaded.version == expected
        assert loaded.balance == sum((D(a) for a in (5, 6, 7)[: expected - 1]), D(0))
    before = events[0].recorded_at - timedelta(microseconds=1)
    with pytest.raises(TimeTravelError, match="first event was recorded at") as caught:
        await repo.load(Ledger, ledger_id, as_of=before)
    assert caught.value.stream_id == f"ledger-{ledger_id}"
    assert before.isoformat() in caught.value.requested


async def test_time_travel_by_position_is_a_consistent_cut(
    repo: Repository, pg_store: PostgresEventStore
) -> None:
    a, b = new_id(), new_id()
    await repo.create(Ledger, a, lambda led: led.open("ann", "EUR"))
    await repo.create(Ledger, b, lambda led: led.open("bob", "EUR"))
    cuts: list[Position] = []
    for step in range(4):
        for ledger_id, amount in ((a, 1 + step), (b, 10 * (step + 1))):
            ledger = await repo.load(Ledger, ledger_id)
            ledger.deposit(amount)
            cuts.append((await repo.save(ledger)).positions[-1])
    history = await stored(pg_store, f"ledger-{a}") + await stored(pg_store, f"ledger-{b}")

    def balance_at(ledger_id: str, cut: Position) -> Decimal:
        return sum(
            (
                D(e.data["amount"])
                for e in history
                if e.stream_id == f"ledger-{ledger_id}"
                and e.type == "ledger.Deposited"
                and e.position <= cut
            ),
            D(0),
        )

    for cut in cuts:
        left, right = await asyncio.gather(
            repo.load(Ledger, a, at_position=cut), repo.load(Ledger, b, at_position=cut)
        )
        assert (left.balance, right.balance) == (balance_at(a, cut), balance_at(b, cut))
    first_of_b = (await stored(pg_store, f"ledger-{b}"))[0].position
    before_b = max(e.position for e in history if e.position < first_of_b)
    with pytest.raises(TimeTravelError, match="did not exist yet"):
        await repo.load(Ledger, b, at_position=before_b)


async def test_two_repositories_updating_one_ledger_lose_no_deposit(
    pg_store: PostgresEventStore,
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
) -> None:
    # A second pool on the same schema: two processes' worth of connections.
    other_store = await make_pg_store(schema=pg_store.schema, pool_size=4)
    repos = [Repository(pg_store, [Ledger]), Repository(other_store, [Ledger])]
    ledger_id = new_id()
    await repos[0].create(Ledger, ledger_id, lambda led: led.open("ann", "EUR"))
    workers_per_repo, deposits_per_worker = 4, 8
    start = asyncio.Event()

    async def worker(repo: Repository, worker: int) -> list[Decimal]:
        await start.wait()
        made = []
        for i in range(deposits_per_worker):
            amount = D(f"{worker + 1}.{i:02d}")
            await repo.update(Ledger, ledger_id, lambda led, a=amount: led.deposit(a), retries=50)
            made.append(amount)
        return made

    tasks = [
        asyncio.create_task(worker(repo, index * workers_per_repo + w))
        for index, repo in enumerate(repos)
        for w in range(workers_per_repo)
    ]
    start.set()
    made = [amount for amounts in await asyncio.gather(*tasks) for amount in amounts]

    final = await repos[1].load(Ledger, ledger_id)
    assert final.balance == sum(made, D(0))
    deposits = [
        D(e.data["amount"])
        for e in await stored(pg_store, f"ledger-{ledger_id}")
        if e.type == Deposited.event_type
    ]
    assert Counter(deposits) == Counter(made)  # each exactly once
    assert final.version == 1 + len(made)
    # Eight writers on one stream: conflicts did happen and were retried.
    assert sum(repo.retried_conflicts for repo in repos) > 0


async def test_a_stale_writer_conflicts_on_postgres(repo: Repository) -> None:
    ledger_id = new_id()
    await repo.create(Ledger, ledger_id, lambda led: led.open("ann", "EUR"))
    stale, fresh = await repo.load(Ledger, ledger_id), await repo.load(Ledger, ledger_id)
    fresh.deposit(1)
    await repo.save(fresh)
    stale.deposit(2)
    with pytest.raises(ConcurrencyError):
        await repo.save(stale)
    assert len(stale.pending_events) == 1
    final: Any = await repo.load(Ledger, ledger_id)
    assert final.balance == 1
