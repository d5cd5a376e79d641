"""Helpers of the saga tests: ledgers with balances, runners on the store's feed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from uuid import uuid4

from support.projection_runs import until

from aggregates import Repository
from aggregates.ledger import Ledger
from eventstore import Position, RecordedEvent
from projections import EventFeed, EventSource, StoreFeedSource
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
    source: EventSource | None = None,
    sagas: list[Saga] | tuple[Saga, ...] = (),
    reactions: list[Reaction] | tuple[Reaction, ...] = (),
    **options: object,
) -> SagaRunner:
    return SagaRunner(
        repo,
        source or StoreFeedSource(repo.store, poll_interval=0.05),
        sagas=sagas,
        reactions=reactions,
        options=SagaRunnerOptions(batch_size=50, idle_timeout=0.05),
        **options,  # type: ignore[arg-type]
    )


class ListSource(EventSource):
    """A source that delivers a fixed list, as a broker may: duplicated, reordered."""

    def __init__(self, events: list[RecordedEvent], batch: int = 3) -> None:
        self.events = events
        self.batch = batch
        self.delivered = 0

    @contextlib.asynccontextmanager
    async def open(self, after: Position | None) -> AsyncIterator[EventFeed]:
        yield _ListFeed(self)

    async def head(self) -> Position | None:
        return max((e.position for e in self.events), default=None)


class _ListFeed(EventFeed):
    def __init__(self, source: ListSource) -> None:
        self.source = source

    async def next_batch(self, max_events: int, max_wait: float) -> list[RecordedEvent]:
        source = self.source
        start = source.delivered
        batch = source.events[start : start + min(max_events, source.batch)]
        source.delivered += len(batch)
        if not batch:
            await asyncio.sleep(0)
        return batch


async def run_source(runner: SagaRunner, source: ListSource) -> None:
    """Run ``runner`` until ``source`` has delivered everything and it was processed."""
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await until(
            lambda: (
                runner.stats.events >= len(source.events)
                or task.done()
                or runner.stats.restarts > 0
            )
        )
    finally:
        stop.set()
        await task
    assert runner.stats.restarts == 0, runner.stats.error
