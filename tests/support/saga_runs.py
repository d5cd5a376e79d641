"""Helpers of the saga tests: ledgers with balances, runners on the store's feed."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

from aggregates import Repository
from aggregates.ledger import Ledger
from projections import StoreFeedSource
from sagas import Reaction, Saga, SagaRunner, SagaRunnerOptions


def new_id() -> str:
    return uuid4().hex[:12]


async def open_ledger(
    repo: Repository, balance: Decimal | int = 0, *, ledger_id: str | None = None
) -> str:
    ledger_id = ledger_id or new_id()

    def decide(ledger: Ledger) -> None:
        ledger.open("owner", "EUR")
        if balance:
            ledger.deposit(balance)

    await repo.create(Ledger, ledger_id, decide)
    return ledger_id


async def balance(repo: Repository, ledger_id: str) -> Decimal:
    return (await repo.load(Ledger, ledger_id)).balance


def runner(
    repo: Repository,
    *,
    sagas: list[Saga] | tuple[Saga, ...] = (),
    reactions: list[Reaction] | tuple[Reaction, ...] = (),
    **options: object,
) -> SagaRunner:
    return SagaRunner(
        repo,
        StoreFeedSource(repo.store, poll_interval=0.05),
        sagas=sagas,
        reactions=reactions,
        options=SagaRunnerOptions(batch_size=50, idle_timeout=0.05),
        **options,  # type: ignore[arg-type]
    )
