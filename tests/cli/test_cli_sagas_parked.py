"""``chronik sagas list|show|retry`` on an event a reaction kept failing on.

An order is placed for a customer who has no ledger yet: the shipped pay-on-place
reaction raises on it (the ledger is not found), is retried, and the event is
parked.  The command lists and shows it; a retry before the ledger exists keeps
it parked (exit 1), a retry after the ledger was opened pays the order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cli_runner import Chronik

from aggregates import Repository
from aggregates.ledger import Ledger
from aggregates.order import Order, OrderStatus
from eventstore import PostgresEventStore
from projections import StoreFeedSource
from sagas import ReactionRetry, SagaRunner, SagaRunnerOptions, migrate_sagas
from sagas.shipped import PAY_ON_PLACE

APP = ("--app", "cli_shop_app:app")


async def test_a_parked_trigger_is_listed_shown_and_retried(
    chronik: Chronik,
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
    cli_schema: str,
) -> None:
    store = await make_pg_store(cli_schema)
    try:
        await migrate_sagas(store)
        repo = Repository(store, [Ledger, Order])
        await repo.create(Order, "o-1", lambda order: order.place("nobody", [("pen", 2, "5")]))
        runner = SagaRunner(
            repo,
            StoreFeedSource(store),
            reactions=[PAY_ON_PLACE],
            options=SagaRunnerOptions(reaction_retry=ReactionRetry(attempts=2, backoff=0.01)),
        )
        await runner.catch_up()
        assert runner.stats.parked == 1
        [trigger] = [e async for e in store.read_stream(Order.stream_id_for("o-1"), 1, 1)]
        parked_id = f"pay-on-place@{trigger.event_id}"

        [row] = chronik(*APP, "sagas", "list", "--status", "parked", "--json").json()
        assert (row["saga_id"], row["status"], row["kind"]) == (parked_id, "parked", "reaction")
        assert "AggregateNotFoundError" in row["reason"]
        table = chronik(*APP, "sagas", "list")
        assert parked_id in table.stdout and "parked" in table.stdout, table.describe()
        shown = chronik(*APP, "sagas", "show", parked_id)
        assert shown.code == 0, shown.describe()
        assert f"{trigger.type} order-o-1@1" in shown.stdout, shown.describe()
        assert str(trigger.event_id) in shown.stdout

        again = chronik(*APP, "sagas", "retry", parked_id)
        assert again.code == 1, again.describe()
        assert "parked" in again.stdout and "AggregateNotFoundError" in again.stdout

        await repo.create(
            Ledger, "nobody", lambda ledger: (ledger.open("N", "EUR"), ledger.deposit(50))
        )
        done = chronik(*APP, "sagas", "retry", parked_id, "--json").json()
        assert done == {"id": parked_id, "status": "handled"}
        assert (await repo.load(Order, "o-1")).status is OrderStatus.PAID
        assert (await repo.load(Ledger, "nobody")).balance == 40
        assert chronik(*APP, "sagas", "list", "--status", "parked", "--json").json() == []
        gone = chronik(*APP, "sagas", "show", parked_id)
        assert gone.code != 0 and "no parked reaction trigger" in gone.stderr, gone.describe()
    finally:
        await store.close()
