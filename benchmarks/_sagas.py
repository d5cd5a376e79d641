"""A money transfer as a saga, end to end, beside the same two commands called directly.

``saga_transfer`` (completed transfers/s, higher is better)
  chronik: ``sagas.start_saga(repository, TRANSFER, id, data)`` for each of N
  transfers between 200 ledgers, then one ``SagaRunner`` (``StoreFeedSource``)
  catches up until every instance is completed: per transfer it appends
  ``saga.Started``, reads it from the feed, loads the instance and the source
  ledger, commits the debit with the saga's progress and index row in one
  transaction, then loads the target ledger and commits the credit and
  ``saga.Completed`` the same way.  Wall time from the first start to the last
  completion.
  raw (the limit): the same debit and credit as two direct
  ``Repository.update`` calls per transfer (load, decide, append each), in one
  process, with no saga record, no feed, no exactly-once bookkeeping.
  The eventsourcing library is not measured here.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from ._cases import Case, not_available
from ._context import BenchContext
from ._harness import CaseResult, Round, Stopwatch, measure, per_second

GROUP = "sagas"
LEDGERS = 200


def _missing() -> str | None:
    try:
        from sagas import SagaRunner, start_saga  # noqa: F401
        from sagas.shipped import TRANSFER  # noqa: F401
    except ImportError as error:
        return f"sagas cannot be imported ({error})"
    return None


async def saga_transfer(context: BenchContext) -> list[CaseResult]:
    reason = _missing()
    if reason is not None:
        return [not_available("saga_transfer", GROUP, "transfers/s", "throughput", reason)]
    from aggregates import Repository
    from aggregates.ledger import Ledger
    from projections import StoreFeedSource
    from sagas import SagaRunner, SagaRunnerOptions, list_sagas, migrate_sagas, start_saga
    from sagas.shipped import TRANSFER, transfer_data

    transfers = context.size(300, 10)
    store = await context.chronik_store("sagas")
    await migrate_sagas(store)
    repository = Repository(store, [Ledger])
    ledgers = [f"bench-{n}" for n in range(LEDGERS)]
    for ledger_id in ledgers:
        await repository.create(
            Ledger, ledger_id, lambda ledger: (ledger.open("bench", "EUR"), ledger.deposit(10**9))
        )
    runner = SagaRunner(
        repository,
        StoreFeedSource(store, poll_interval=0.05),
        sagas=[TRANSFER],
        options=SagaRunnerOptions(batch_size=500, idle_timeout=0.05),
    )
    pairs = [(ledgers[i % LEDGERS], ledgers[(i * 7 + 3) % LEDGERS]) for i in range(transfers)]
    amount = Decimal("1.25")
    started: list[str] = []

    async def saga_round() -> float:
        watch = Stopwatch()
        with watch.running():
            for source, target in pairs:
                saga_id = uuid.uuid4().hex
                started.append(saga_id)
                await start_saga(
                    repository, TRANSFER, saga_id, transfer_data(source, target, amount, "EUR")
                )
            await runner.catch_up()
        return per_second(transfers, watch.seconds)

    async def direct_round() -> float:
        watch = Stopwatch()
        with watch.running():
            for source, target in pairs:
                await repository.update(Ledger, source, lambda ledger: ledger.withdraw(amount))
                await repository.update(Ledger, target, lambda ledger: ledger.deposit(amount))
        return per_second(transfers, watch.seconds)

    rounds: dict[str, Round] = {"chronik": saga_round, "raw": direct_round}
    measured = await measure(rounds, repetitions=context.repetitions, warmup=context.warmup)
    await _check(store, repository, ledgers, started, list_sagas)
    result = CaseResult(
        name="saga_transfer",
        unit="transfers/s",
        kind="throughput",
        group=GROUP,
        description=f"{transfers} transfer sagas between {LEDGERS} ledgers, started and run "
        "to completion by one runner",
        raw_does="the same withdraw + deposit as two direct Repository.update calls",
        extra={"transfers": transfers, "eventsourcing_note": "not measured in this case"},
    ).record(measured)
    return [result]


async def _check(
    store: Any, repository: Any, ledgers: list[str], started: list[str], list_sagas: Any
) -> None:
    """Every saga completed, and the money over all ledgers is what it was."""
    from aggregates.ledger import Ledger

    statuses = {s.saga_id: s.status for s in await list_sagas(store)}
    unfinished = [i for i in started if statuses.get(i) != "completed"]
    if unfinished:
        raise RuntimeError(f"{len(unfinished)} transfer sagas did not complete")
    total = sum([(await repository.load(Ledger, i)).balance for i in ledgers], Decimal(0))
    if total != LEDGERS * 10**9:
        raise RuntimeError(f"the ledgers hold {total}, not {LEDGERS * 10**9}")


CASES = (
    Case("saga_transfer", GROUP, saga_transfer, summary="transfer sagas end to end vs direct"),
)
