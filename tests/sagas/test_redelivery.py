"""Duplicated and reordered triggers change nothing, for sagas and for reactions.

A broker may deliver an event twice and partitions may interleave: the runner is
fed the triggers through a source that repeats and shuffles them.  Each order is
still charged at most once, and each customer's money suffices for one order only,
so a second charge would show as a second paid order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from support.saga_runs import ListSource, balance, new_id, open_ledger, run_source, runner

from aggregates import Repository
from aggregates.order import Order, OrderPlaced, OrderStatus
from eventstore import RecordedEvent
from sagas import Saga, SagaStatus, list_sagas
from sagas.shipped import CHECKOUT, PAY_ON_PLACE, checkout_data

D = Decimal


def _data(event: OrderPlaced, envelope: RecordedEvent) -> dict[str, Any]:
    total = sum((line.quantity * line.unit_price for line in event.lines), start=D(0))
    order_id = envelope.stream_id.removeprefix("order-")
    return checkout_data(order_id, event.customer, total, "EUR")


CHECKOUT_ON_PLACE = Saga(
    "checkout-on-place", CHECKOUT.steps, start_on=[OrderPlaced], data_from=_data
)


async def _place_orders(
    repo: Repository,
) -> tuple[list[str], dict[str, list[str]], list[RecordedEvent]]:
    customers = [await open_ledger(repo, 15) for _ in range(3)]
    orders: dict[str, list[str]] = {}
    for customer in customers:
        for _ in range(2):
            order_id = new_id()
            await repo.create(Order, order_id, lambda o, c=customer: o.place(c, [("pen", 2, "5")]))
            orders.setdefault(customer, []).append(order_id)
    wanted = {Order.stream_id_for(o) for ids in orders.values() for o in ids}
    triggers = [e async for e in repo.store.read_all() if e.stream_id in wanted]
    return customers, orders, triggers


@settings(max_examples=6)
@given(
    kind=st.sampled_from(["saga", "reaction"]),
    order=st.randoms(use_true_random=False),
    repeats=st.lists(st.integers(0, 5), max_size=6),
)
async def test_duplicated_and_reordered_triggers_change_nothing(
    repo: Repository, kind: str, order: Any, repeats: list[int]
) -> None:
    customers, orders, triggers = await _place_orders(repo)
    delivery = triggers + [triggers[i] for i in repeats]
    order.shuffle(delivery)
    sagas = [CHECKOUT_ON_PLACE] if kind == "saga" else []
    reactions = [PAY_ON_PLACE] if kind == "reaction" else []
    # Delivered twice over, by two runners one after the other (a restart).
    for _ in range(2):
        source = ListSource(delivery)
        await run_source(runner(repo, sagas=sagas, reactions=reactions, source=source), source)
    for customer in customers:
        statuses = sorted([(await repo.load(Order, o)).status for o in orders[customer]], key=str)
        assert statuses == [OrderStatus.CANCELLED, OrderStatus.PAID]
        assert await balance(repo, customer) == D(5)
    if kind == "saga":
        instances = [s for s in await list_sagas(repo.store) if s.saga == "checkout-on-place"]
        mine = {CHECKOUT_ON_PLACE.instance_id(t.event_id) for t in triggers}
        assert {s.saga_id for s in instances} >= mine
        assert {s.status for s in instances if s.saga_id in mine} == {
            SagaStatus.COMPLETED,
            SagaStatus.COMPENSATED,
        }
