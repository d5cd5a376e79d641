"""The shipped projections against the shipped aggregates, in one runner.

Random commands go through the Repository into PostgreSQL; one runner projects
ledger balances into Redis and order summaries into MongoDB (mongomock); the read
models must agree with the aggregates loaded from the store.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st
from mongomock_motor import AsyncMongoMockClient
from support.projection_runs import run_until_caught_up

from aggregates import DomainError, Repository
from aggregates.ledger import Deposited, Ledger
from aggregates.order import Order
from eventstore import NewEvent, PostgresEventStore
from projections import (
    MongoReadModel,
    ProjectionRunner,
    RedisReadModel,
    RunnerOptions,
    StoreFeedSource,
    list_dead_letters,
)
from projections.shipped import (
    LEDGER_BALANCES,
    ORDER_SUMMARIES,
    customer_orders,
    ledger_balance,
    order_summary,
    owner_ledgers,
    owner_totals,
)

MakeStore = Callable[..., Awaitable[PostgresEventStore]]
OPTIONS = RunnerOptions(batch_size=13, idle_timeout=0.02, standby_poll=0.02)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis_client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield redis_client
    await redis_client.aclose()


@pytest.fixture
async def store(make_pg_store: MakeStore) -> PostgresEventStore:
    return await make_pg_store()


async def project(
    store: PostgresEventStore, balances: RedisReadModel, orders: MongoReadModel
) -> None:
    runner = ProjectionRunner(
        StoreFeedSource(store),
        [(LEDGER_BALANCES, balances), (ORDER_SUMMARIES, orders)],
        options=OPTIONS,
    )
    await run_until_caught_up(runner, store)


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)
ledger_commands = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.sampled_from(["deposit", "deposit", "withdraw", "freeze", "unfreeze", "close"]),
        amounts,
    ),
    max_size=25,
)
order_commands = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.sampled_from(["add", "add", "remove", "pay", "ship", "cancel"]),
        st.sampled_from(["apple", "pear.v2", "$fig"]),
        st.integers(1, 3),
    ),
    max_size=25,
)


def attempt(action: Callable[[Any], object]) -> Callable[[Any], object]:
    def decide(aggregate: Any) -> object:
        try:
            return action(aggregate)
        except DomainError:
            return None  # a refused command records nothing

    return decide


@settings(max_examples=10)
@given(ledgers=ledger_commands, orders=order_commands)
async def test_projected_balances_and_orders_match_the_aggregates(
    store: PostgresEventStore,
    client: aioredis.Redis,
    ledgers: list[tuple[int, str, Decimal]],
    orders: list[tuple[int, str, str, int]],
) -> None:
    repository = Repository(store, [Ledger, Order])
    run = uuid.uuid4().hex[:8]
    owners = ["ann", "bob"]
    ledger_ids = [f"{run}-{n}" for n in range(4)]
    order_ids = [f"{run}-{n}" for n in range(4)]
    for n, ledger in enumerate(ledger_ids):
        await repository.create(
            Ledger,
            ledger,
            lambda a, n=n: a.open(f"{owners[n % 2]}-{run}", "EUR", overdraft_limit=100),
        )
    for n, order in enumerate(order_ids):
        await repository.create(
            Order, order, lambda a, n=n: a.place(f"cust-{run}-{n % 2}", [("apple", 1, "2.50")])
        )
    for index, command, amount in ledgers:
        actions: dict[str, Callable[[Any], object]] = {
            "deposit": lambda a, amount=amount: a.deposit(amount),
            "withdraw": lambda a, amount=amount: a.withdraw(amount),
            "freeze": lambda a: a.freeze("check"),
            "unfreeze": lambda a: a.unfreeze(),
            "close": lambda a: a.close(),
        }
        await repository.update(Ledger, ledger_ids[index], attempt(actions[command]))
    for index, command, sku, quantity in orders:
        order_actions: dict[str, Callable[[Any], object]] = {
            "add": lambda a, sku=sku, q=quantity: a.add_item(sku, q, "1.25"),
            "remove": lambda a, sku=sku, q=quantity: a.remove_item(sku, q),
            "pay": lambda a: a.pay(a.total),
            "ship": lambda a: a.ship("post"),
            "cancel": lambda a: a.cancel("changed mind"),
        }
        await repository.update(Order, order_ids[index], attempt(order_actions[command]))

    balances = RedisReadModel(client, prefix=f"shipped{run}:")
    summaries = MongoReadModel(AsyncMongoMockClient(), database=f"s{run}", bulk_writes=False)
    await project(store, balances, summaries)
    assert await list_dead_letters(balances) == []
    assert await list_dead_letters(summaries) == []

    totals: dict[str, Decimal] = {}
    for ledger_id in ledger_ids:
        ledger = await repository.load(Ledger, ledger_id)
        projected = await ledger_balance(balances, ledger.stream_id)
        assert projected is not None
        assert projected.balance == ledger.balance
        assert (projected.owner, projected.currency) == (ledger.owner, "EUR")
        assert projected.status == ledger.status.value
        totals[ledger.owner] = totals.get(ledger.owner, Decimal(0)) + ledger.balance
    for owner, total in totals.items():
        assert await owner_totals(balances, owner) == {"EUR": total}
        assert len(await owner_ledgers(balances, owner)) == 2

    for order_id in order_ids:
        order = await repository.load(Order, order_id)
        summary = await order_summary(summaries, order.stream_id)
        assert summary is not None
        assert summary.status == order.status.value
        assert summary.total == order.total
        assert {(line.sku, line.quantity, line.unit_price) for line in summary.lines} == {
            (line.sku, line.quantity, line.unit_price) for line in order.lines
        }
        assert summary.version == order.version
    for customer in (f"cust-{run}-0", f"cust-{run}-1"):
        listed = await customer_orders(summaries, customer)
        assert len(listed) == 2 and {s.customer for s in listed} == {customer}


async def test_release_one_ledger_events_are_upcast_on_the_way_in(
    store: PostgresEventStore, client: aioredis.Redis
) -> None:
    # Written by release 1 of the ledger: other type name, numbers for amounts.
    stream = f"ledger-{uuid.uuid4().hex[:8]}"
    await store.append(
        stream,
        [
            NewEvent("ledger.AccountOpened", {"holder": "old-timer", "currency": "GBP"}, 1),
            NewEvent("ledger.Deposited", {"amount": 10.1}, 1),
            NewEvent("ledger.Withdrawn", {"amount": 0.2, "memo": "fee"}, 1),
        ],
    )
    balances = RedisReadModel(client, prefix=f"legacy{uuid.uuid4().hex[:8]}:")
    summaries = MongoReadModel(AsyncMongoMockClient(), database="legacy", bulk_writes=False)
    await project(store, balances, summaries)
    projected = await ledger_balance(balances, stream)
    assert projected is not None
    assert (projected.owner, projected.currency, projected.balance) == (
        "old-timer",
        "GBP",
        Decimal("9.9"),
    )
    assert await owner_totals(balances, "old-timer") == {"GBP": Decimal("9.9")}


async def test_an_amount_finer_than_the_scale_is_parked_not_rounded(
    store: PostgresEventStore, client: aioredis.Redis
) -> None:
    repository = Repository(store, [Ledger])
    ledger = await repository.create(Ledger, uuid.uuid4().hex[:8], lambda a: a.open("tiny", "EUR"))
    # Today's Ledger refuses such an amount; another writer or an older release
    # may still have stored one, and the projection must park it, not round it.
    fine = Deposited(amount=Decimal("1.00001"), currency="EUR")
    await store.append(ledger.stream_id, [fine], ledger.version)
    await repository.update(Ledger, ledger.id, lambda a: a.deposit(Decimal("2")))
    balances = RedisReadModel(client, prefix=f"fine{uuid.uuid4().hex[:8]}:")
    summaries = MongoReadModel(AsyncMongoMockClient(), database="fine", bulk_writes=False)
    await project(store, balances, summaries)
    [letter] = await list_dead_letters(balances, "ledger_balances")
    assert letter.stream_id == ledger.stream_id and "decimal places" in letter.error
    projected = await ledger_balance(balances, ledger.stream_id)
    assert projected is not None and projected.balance == Decimal("2")


async def test_owner_names_cannot_pose_as_other_keys(
    store: PostgresEventStore, client: aioredis.Redis
) -> None:
    # "alice:ledgers" once took over the key of alice's ledger set (WRONGTYPE).
    repository = Repository(store, [Ledger])
    run = uuid.uuid4().hex[:8]
    alice = f"alice{run}"
    owners = [alice, f"{alice}:ledgers", f"{alice}%3Aledgers", f"{alice}:"]
    ledgers = {}
    for n, owner in enumerate(owners):
        ledger = await repository.create(Ledger, f"{run}:{n}", lambda a, o=owner: a.open(o, "EUR"))
        await repository.update(Ledger, ledger.id, lambda a, n=n: a.deposit(Decimal(n + 1)))
        ledgers[owner] = ledger.stream_id
    balances = RedisReadModel(client, prefix=f"keys{run}:")
    summaries = MongoReadModel(AsyncMongoMockClient(), database="keys", bulk_writes=False)
    await project(store, balances, summaries)
    assert await list_dead_letters(balances, "ledger_balances") == []
    for n, owner in enumerate(owners):
        assert await owner_ledgers(balances, owner) == [ledgers[owner]]
        assert await owner_totals(balances, owner) == {"EUR": Decimal(n + 1)}
        projected = await ledger_balance(balances, ledgers[owner])
        assert projected is not None and projected.owner == owner
