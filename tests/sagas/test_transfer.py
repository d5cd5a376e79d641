"""The shipped transfer saga end to end: completes, compensates, records its steps."""

from __future__ import annotations

from decimal import Decimal

from support.saga_runs import balance, new_id, open_ledger, runner

from aggregates import Repository
from aggregates.ledger import Ledger
from sagas import SagaProcess, SagaStatus, show_saga, start_saga
from sagas.shipped import TRANSFER, transfer_data

D = Decimal


async def test_a_transfer_moves_money_and_completes(repo: Repository) -> None:
    a, b = await open_ledger(repo, 100), await open_ledger(repo, 5)
    saga_id = new_id()
    assert await start_saga(repo, TRANSFER, saga_id, transfer_data(a, b, "30.50", "EUR"))
    await runner(repo, sagas=[TRANSFER]).catch_up()
    assert (await balance(repo, a), await balance(repo, b)) == (D("69.50"), D("35.50"))
    process = await repo.store.stream_version(SagaProcess.stream_id_for(saga_id))
    assert process > 0
    report = await show_saga(repo.store, saga_id)
    assert report.status == "completed"
    assert [(s.step, s.outcome) for s in report.steps] == [
        ("debit", "completed"),
        ("credit", "completed"),
    ]
    assert report.steps[0].caused[0]["stream_id"] == Ledger.stream_id_for(a)
    assert report.steps[1].caused[0]["type"] == "ledger.Deposited"


async def test_a_frozen_target_refunds_the_source(repo: Repository) -> None:
    a, b = await open_ledger(repo, 100), await open_ledger(repo)
    await repo.update(Ledger, b, lambda ledger: ledger.freeze("audit"))
    saga_id = new_id()
    await start_saga(repo, TRANSFER, saga_id, transfer_data(a, b, 40, "EUR"))
    await runner(repo, sagas=[TRANSFER]).catch_up()
    assert (await balance(repo, a), await balance(repo, b)) == (D(100), D(0))
    report = await show_saga(repo.store, saga_id)
    assert report.status == SagaStatus.COMPENSATED
    assert [(s.step, s.phase, s.outcome) for s in report.steps] == [
        ("debit", "do", "completed"),
        ("credit", "do", "failed"),
        ("debit", "undo", "compensated"),
    ]
    assert "frozen" in (report.steps[1].detail or "")


async def test_insufficient_funds_fails_the_first_step_with_nothing_to_undo(
    repo: Repository,
) -> None:
    a, b = await open_ledger(repo, 10), await open_ledger(repo)
    saga_id = new_id()
    await start_saga(repo, TRANSFER, saga_id, transfer_data(a, b, 40, "EUR"))
    await runner(repo, sagas=[TRANSFER]).catch_up()
    report = await show_saga(repo.store, saga_id)
    assert report.status == "compensated"
    assert [s.outcome for s in report.steps] == ["failed"]
    assert (await balance(repo, a), await balance(repo, b)) == (D(10), D(0))
