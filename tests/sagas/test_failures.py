"""Failed sagas wait for a person; stuck ones are listed; retry resumes where it failed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from support.saga_runs import balance, new_id, open_ledger, runner

from aggregates import Repository
from aggregates.ledger import Ledger
from sagas import (
    Await,
    Command,
    Saga,
    SagaStatus,
    Step,
    list_sagas,
    retry_saga,
    show_saga,
    start_saga,
)


def _saga(buggy: bool) -> Saga:
    def credit(data: dict[str, str]) -> Command[Ledger]:
        if buggy:
            return Command(Ledger, data["missing-key"], lambda ledger: None)
        return Command(Ledger, data["b"], lambda ledger: ledger.deposit(5))

    return Saga(
        "bug-then-fix",
        [
            Step(
                "debit",
                lambda d: Command(Ledger, d["a"], lambda ledger: ledger.withdraw(5)),
                compensate=lambda d: Command(Ledger, d["a"], lambda ledger: ledger.deposit(5)),
            ),
            Step("credit", credit),
        ],
    )


async def test_an_unexpected_error_fails_the_saga_until_a_retry(repo: Repository) -> None:
    a, b = await open_ledger(repo, 10), await open_ledger(repo)
    saga_id = new_id()
    await start_saga(repo, _saga(buggy=True), saga_id, {"a": a, "b": b})
    await runner(repo, sagas=[_saga(buggy=True)]).catch_up()
    report = await show_saga(repo.store, saga_id)
    assert report.status == SagaStatus.FAILED
    assert "KeyError" in (report.reason or "")
    # A runner does not touch a failed saga again by itself.
    await runner(repo, sagas=[_saga(buggy=True)]).catch_up()
    assert (await show_saga(repo.store, saga_id)).version == report.version
    # The code is fixed and deployed: the retry runs the failed step again.
    assert await retry_saga(repo, [_saga(buggy=False)], saga_id, "fixed") == "completed"
    assert (await balance(repo, a), await balance(repo, b)) == (Decimal(5), Decimal(5))


async def test_a_waiting_saga_without_progress_is_listed_as_stuck(repo: Repository) -> None:
    saga = Saga(
        "wait-forever",
        [Step("wait", await_=Await(Ledger.events[0], lambda d: Ledger.stream_id_for(d["x"])))],
    )
    saga_id = new_id()
    await start_saga(repo, saga, saga_id, {"x": new_id()})
    await runner(repo, sagas=[saga]).catch_up()
    assert saga_id not in {s.saga_id for s in await list_sagas(repo.store, status="stuck")}
    stuck = await list_sagas(repo.store, status="stuck", stuck_after=timedelta(0))
    assert saga_id in {s.saga_id for s in stuck}
    assert all(s.status in ("running", "compensating") for s in stuck)
