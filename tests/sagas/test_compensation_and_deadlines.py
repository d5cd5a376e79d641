"""Compensations run newest first; deadlines fire once, also across a restart."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from support.saga_runs import balance, new_id, open_ledger, runner

from aggregates import Repository
from aggregates.ledger import Deposited, Ledger
from aggregates.order import Order
from sagas import (
    Await,
    Command,
    Saga,
    SagaDefinitionError,
    SagaStatus,
    Step,
    show_saga,
    start_saga,
)
from sagas.shipped import CHECKOUT, checkout_data

D = Decimal


def deposit_step(name: str, last_fails: bool = False) -> Step:
    def action(data: dict[str, str]) -> Command[Ledger]:
        if last_fails:
            # A withdrawal far past the balance: refused by the ledger.
            return Command(Ledger, data[name], lambda ledger: ledger.withdraw(10_000))
        return Command(Ledger, data[name], lambda ledger: ledger.deposit(1))

    return Step(
        name,
        action,
        compensate=lambda data: Command(Ledger, data[name], lambda ledger: ledger.withdraw(1)),
    )


async def test_compensations_run_in_reverse_order(repo: Repository) -> None:
    saga = Saga(
        "four-steps",
        [deposit_step("a"), deposit_step("b"), deposit_step("c"), deposit_step("d", True)],
    )
    ledgers = {key: await open_ledger(repo, 5) for key in "abcd"}
    saga_id = new_id()
    await start_saga(repo, saga, saga_id, ledgers)
    await runner(repo, sagas=[saga]).catch_up()
    report = await show_saga(repo.store, saga_id)
    assert report.status == SagaStatus.COMPENSATED
    assert [(s.step, s.phase) for s in report.steps] == [
        ("a", "do"),
        ("b", "do"),
        ("c", "do"),
        ("d", "do"),
        ("c", "undo"),
        ("b", "undo"),
        ("a", "undo"),
    ]
    # The compensating withdrawals reached the ledgers in that order too.
    undo = {s.step: s.caused[0] for s in report.steps if s.phase == "undo"}
    positions = []
    for step in "cba":
        async for event in repo.store.read_stream(undo[step]["stream_id"], undo[step]["version"]):
            positions.append(event.position)
    assert positions == sorted(positions)
    assert [await balance(repo, ledgers[k]) for k in "abcd"] == [D(5)] * 4


async def test_checkout_refunds_then_cancels_when_the_order_cannot_be_paid(
    repo: Repository,
) -> None:
    customer = await open_ledger(repo, 100)
    order_id = new_id()
    await repo.create(Order, order_id, lambda o: o.place(customer, [("pen", 2, "5.00")]))
    # The order changed after checkout started: the payment no longer matches.
    saga_id = new_id()
    await start_saga(repo, CHECKOUT, saga_id, checkout_data(order_id, customer, "10.00", "EUR"))
    await repo.update(Order, order_id, lambda o: o.add_item("ink", 1, "3.00"))
    await runner(repo, sagas=[CHECKOUT]).catch_up()
    report = await show_saga(repo.store, saga_id)
    assert [(s.step, s.outcome) for s in report.steps] == [
        ("accept", "completed"),
        ("pay", "completed"),
        ("confirm", "failed"),
        ("pay", "compensated"),
        ("accept", "compensated"),
    ]
    order = await repo.load(Order, order_id)
    assert order.status == "cancelled"
    assert await balance(repo, customer) == D(100)


async def test_checkout_pays_and_confirms(repo: Repository) -> None:
    customer = await open_ledger(repo, 100)
    order_id = new_id()
    await repo.create(Order, order_id, lambda o: o.place(customer, [("pen", 2, "5.00")]))
    saga_id = new_id()
    await start_saga(repo, CHECKOUT, saga_id, checkout_data(order_id, customer, "10.00", "EUR"))
    await runner(repo, sagas=[CHECKOUT]).catch_up()
    assert (await show_saga(repo.store, saga_id)).status == SagaStatus.COMPLETED
    assert (await repo.load(Order, order_id)).status == "paid"
    assert await balance(repo, customer) == D(90)


def awaiting_saga() -> Saga:
    """Hold money from A, then wait for a deposit on B; give it back if none comes."""
    return Saga(
        "hold-until-deposit",
        [
            Step(
                "hold",
                lambda d: Command(Ledger, d["a"], lambda ledger: ledger.withdraw(7)),
                compensate=lambda d: Command(Ledger, d["a"], lambda ledger: ledger.deposit(7)),
            ),
            Step(
                "answer",
                await_=Await(Deposited, lambda d: Ledger.stream_id_for(d["b"])),
                timeout=60,
            ),
        ],
    )


class Crash(BaseException):
    pass


async def test_a_deadline_fires_once_across_a_restart(repo: Repository) -> None:
    saga = awaiting_saga()
    a, b = await open_ledger(repo, 10), await open_ledger(repo)
    saga_id = new_id()
    await start_saga(repo, saga, saga_id, {"a": a, "b": b})
    await runner(repo, sagas=[saga]).catch_up()
    report = await show_saga(repo.store, saga_id)
    assert report.steps[-1].outcome == "waiting" and report.status == "running"

    # A runner whose clock is past the deadline fires it, and dies right after that
    # commit: the timeout is recorded, the refund is not done yet.
    later = timedelta(minutes=2)

    def die_after_timeout(saga: str, where: str) -> None:
        if where == "after" and saga == saga_id:
            raise Crash

    with pytest.raises(Crash):
        await runner(repo, sagas=[saga], clock_shift=later, on_commit=die_after_timeout).catch_up()
    assert [s.outcome for s in (await show_saga(repo.store, saga_id)).steps][-1] == "timed-out"
    # Restarted (twice, also after it finished): the deadline does not fire again.
    await runner(repo, sagas=[saga], clock_shift=later).catch_up()
    await runner(repo, sagas=[saga], clock_shift=later * 2).catch_up()
    report = await show_saga(repo.store, saga_id)
    assert [s.outcome for s in report.steps] == [
        "completed",
        "waiting",
        "timed-out",
        "compensated",
    ]
    assert report.status == SagaStatus.COMPENSATED
    assert await balance(repo, a) == D(10)


async def test_an_answer_before_the_deadline_completes_the_step(repo: Repository) -> None:
    saga = awaiting_saga()
    a, b = await open_ledger(repo, 10), await open_ledger(repo)
    saga_id = new_id()
    await start_saga(repo, saga, saga_id, {"a": a, "b": b})
    await runner(repo, sagas=[saga]).catch_up()
    await repo.update(Ledger, b, lambda ledger: ledger.deposit(1))
    await runner(repo, sagas=[saga]).catch_up()
    # Even with the clock far past the deadline afterwards, nothing times out.
    await runner(repo, sagas=[saga], clock_shift=timedelta(hours=1)).catch_up()
    report = await show_saga(repo.store, saga_id)
    assert report.status == SagaStatus.COMPLETED
    assert [s.outcome for s in report.steps] == ["completed", "waiting", "completed"]
    assert await balance(repo, a) == D(3)


def test_bad_definitions_are_refused() -> None:
    with pytest.raises(SagaDefinitionError, match="at least one step"):
        Saga("empty", [])
    with pytest.raises(SagaDefinitionError, match="repeat"):
        Saga("twice", [deposit_step("a"), deposit_step("a")])
    with pytest.raises(SagaDefinitionError, match="timeout needs await_"):
        Saga("t", [Step("x", lambda d: None, timeout=5)])
    with pytest.raises(SagaDefinitionError, match="lower-case"):
        Saga("Bad Name", [deposit_step("a")])
