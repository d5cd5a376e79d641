"""Sagas: the shipped transfer and its compensation, a saga of your own, a deadline."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta
from typing import Any

from aggregates import Repository
from aggregates.ledger import Ledger
from aggregates.order import Order, OrderPlaced, OrderShipped
from eventstore import PostgresEventStore, RecordedEvent
from projections import StoreFeedSource
from sagas import Await, Command, Saga, SagaRunner, Step, migrate_sagas, show_saga, start_saga
from sagas.shipped import TRANSFER, transfer_data


# --8<-- [start:saga]
def order_data(event: OrderPlaced, envelope: RecordedEvent) -> dict[str, Any]:
    """The instance's data, from the event that starts it (JSON: amounts as text)."""
    total = sum((line.quantity * line.unit_price for line in event.lines), start=0)
    order_id = envelope.stream_id.removeprefix(Order.stream_id_for(""))
    return {"order": order_id, "ledger": event.customer, "total": str(total)}


SHIP_OR_REFUND = Saga(
    "ship-or-refund",
    [
        Step(
            "pay",
            lambda d: Command(Ledger, d["ledger"], lambda x: x.withdraw(d["total"])),
            compensate=lambda d: Command(Ledger, d["ledger"], lambda x: x.deposit(d["total"])),
        ),
        Step(
            "confirm",
            lambda d: Command(Order, d["order"], lambda x: x.pay(d["total"])),
            compensate=lambda d: Command(Order, d["order"], lambda x: x.cancel("not shipped")),
        ),
        Step(
            "shipped",  # no command: wait for the warehouse's answer on the order
            await_=Await(OrderShipped, lambda d: Order.stream_id_for(d["order"])),
            timeout=2 * 24 * 3600,  # two days, on the database's clock
        ),
    ],
    start_on=[OrderPlaced],  # one instance per placed order, its id from the event's id
    data_from=order_data,
    description="pay a placed order; refund and cancel it if it is not shipped in two days",
)
# --8<-- [end:saga]


async def main() -> None:
    async with await PostgresEventStore.connect(os.environ.get("DATABASE_URL")) as store:
        await migrate_sagas(store)  # the saga index and the runners' checkpoints
        repository = Repository(store, [Ledger, Order])
        run = uuid.uuid4().hex[:8]
        a, b, c = (f"{name}-{run}" for name in "abc")

        # --8<-- [start:transfer]
        await repository.create(Ledger, a, lambda x: (x.open("A", "EUR"), x.deposit(100)))
        await repository.create(Ledger, b, lambda x: x.open("B", "EUR"))
        await repository.create(Ledger, c, lambda x: (x.open("C", "EUR"), x.freeze("audit")))
        await start_saga(repository, TRANSFER, f"pay-{b}", transfer_data(a, b, 30, "EUR"))
        await start_saga(repository, TRANSFER, f"pay-{c}", transfer_data(a, c, 20, "EUR"))

        runner = SagaRunner(repository, StoreFeedSource(store), sagas=[TRANSFER], name=f"t-{run}")
        await runner.catch_up()  # a service runs: await runner.run(stop)

        for target in (b, c):
            report = await show_saga(store, f"pay-{target}")
            print(report.saga_id, report.status, [(s.step, s.outcome) for s in report.steps])
        print("A's balance:", (await repository.load(Ledger, a)).balance)
        # --8<-- [end:transfer]

        # --8<-- [start:deadline]
        source = StoreFeedSource(store)
        orders = {"shipped": f"o1-{run}", "forgotten": f"o2-{run}"}
        for order in orders.values():
            await repository.create(Order, order, lambda x: x.place(a, [("mug", 1, "5.00")]))
        runner = SagaRunner(repository, source, sagas=[SHIP_OR_REFUND], name=f"s-{run}")
        await runner.catch_up()  # both paid, both waiting for the warehouse
        await repository.update(Order, orders["shipped"], lambda x: x.ship("DHL"))
        await runner.catch_up()

        # Three days later (clock_shift moves the runner's database clock, for tests
        # and this example; a service just keeps running)
        later = SagaRunner(
            repository, source, sagas=[SHIP_OR_REFUND], name=f"s-{run}",
            clock_shift=timedelta(days=3),
        )  # fmt: skip
        await later.catch_up()
        for order in orders.values():
            print(order, (await repository.load(Order, order)).status)
        print("A's balance:", (await repository.load(Ledger, a)).balance)
        # --8<-- [end:deadline]


if __name__ == "__main__":
    asyncio.run(main())
