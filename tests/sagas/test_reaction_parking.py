"""A reaction that raises is tried again with backoff, then its event is parked.

Parked means visible and resumable, never dropped: ``list_sagas`` lists it (status
``parked``), ``show_saga`` shows the event and the error, ``retry_parked`` runs
the reaction on it again once the cause is fixed; meanwhile the runner went on
with the events after it.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from support.saga_runs import balance, new_id, open_ledger, runner

from aggregates import Repository
from aggregates.order import Order, OrderPlaced, OrderStatus
from eventstore import RecordedEvent
from sagas import (
    Issue,
    Reaction,
    ReactionRetry,
    SagaRunnerOptions,
    list_sagas,
    retry_parked,
    show_saga,
)
from sagas.shipped import PAY_ON_PLACE

D = Decimal
FAST = ReactionRetry(attempts=3, backoff=0.01, max_backoff=0.02)


def _flaky(name: str, failures: dict[str, int]) -> Reaction:
    """PAY_ON_PLACE, except that it raises for customers with failures left
    (``-1``: always, a bug until the test fixes it)."""

    async def handle(event: OrderPlaced, envelope: RecordedEvent, issue: Issue) -> None:
        left = failures.get(event.customer, 0)
        if left:
            failures[event.customer] = left - 1 if left > 0 else left
            raise KeyError(f"no route for {event.customer}")
        await PAY_ON_PLACE.handle(event, envelope, issue)

    return Reaction(name, on=(OrderPlaced,), handle=handle)


async def _place(repo: Repository, customer: str) -> str:
    order_id = new_id()
    await repo.create(Order, order_id, lambda o: o.place(customer, [("pen", 2, "5")]))
    return order_id


def _runner(repo: Repository, reaction: Reaction) -> Any:
    made = runner(repo, reactions=[reaction])
    made.options = SagaRunnerOptions(batch_size=50, idle_timeout=0.05, reaction_retry=FAST)
    return made


async def test_a_reaction_that_fails_a_few_times_succeeds_on_a_retry(
    repo: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    customer = await open_ledger(repo, 15)
    reaction = _flaky(f"flaky-{new_id()}", {customer: 2})
    order_id = await _place(repo, customer)
    made = _runner(repo, reaction)
    with caplog.at_level(logging.WARNING, logger="chronik.sagas"):
        await made.catch_up()
    assert (await repo.load(Order, order_id)).status is OrderStatus.PAID
    assert await balance(repo, customer) == D(5)  # charged once
    assert (made.stats.reactions, made.stats.parked) == (1, 0)
    assert await list_sagas(repo.store, status="parked") == []
    retries = [r.getMessage() for r in caplog.records if reaction.name in r.getMessage()]
    assert len(retries) == 2, retries
    assert all("KeyError" in line and Order.stream_id_for(order_id) in line for line in retries)


async def test_a_reaction_that_keeps_failing_parks_its_event_until_a_retry(
    repo: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    broken, fine = await open_ledger(repo, 15), await open_ledger(repo, 15)
    failures = {broken: -1}
    reaction = _flaky(f"parking-{new_id()}", failures)
    stuck_order = await _place(repo, broken)
    later_order = await _place(repo, fine)
    made = _runner(repo, reaction)
    with caplog.at_level(logging.ERROR, logger="chronik.sagas"):
        await made.catch_up()
    # The runner went on: the event after the failing one is handled.
    assert (await repo.load(Order, later_order)).status is OrderStatus.PAID
    assert (await repo.load(Order, stuck_order)).status is OrderStatus.PLACED
    assert (made.stats.reactions, made.stats.parked) == (1, 1)

    stream = Order.stream_id_for(stuck_order)
    [trigger] = [e async for e in repo.store.read_stream(stream, 1, 1)]
    parked_id = f"{reaction.name}@{trigger.event_id}"
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    for fact in (reaction.name, str(trigger.event_id), stream, "KeyError", parked_id):
        assert fact in line

    [listed] = await list_sagas(repo.store, status="parked")
    assert (listed.saga_id, listed.status, listed.kind) == (parked_id, "parked", "reaction")
    assert listed.version == FAST.attempts and "KeyError" in (listed.reason or "")
    assert parked_id in {s.saga_id for s in await list_sagas(repo.store)}
    shown = await show_saga(repo.store, parked_id)
    assert shown.data["stream_id"] == stream and shown.trigger_event_id == str(trigger.event_id)

    # Read again from the checkpoint, nothing is retried behind the person's back.
    again = _runner(repo, reaction)
    await again.catch_up()
    assert again.stats.parked == 0 and again.stats.reactions == 0

    still = await retry_parked(repo, [reaction], parked_id)
    assert still is not None and still.status == "parked"
    assert still.data["attempts"] == FAST.attempts + 1

    failures[broken] = 0  # the cause is fixed
    assert await retry_parked(repo, [reaction], parked_id) is None
    assert (await repo.load(Order, stuck_order)).status is OrderStatus.PAID
    assert await balance(repo, broken) == D(5)
    assert await list_sagas(repo.store, status="parked") == []
    # Handled is handled: a redelivery of the trigger changes nothing.
    assert (await again.process([trigger])) == trigger.position
    assert await balance(repo, broken) == D(5)
