"""The shipped app's demo seed: ledgers and orders saved through the Repository.

Histories come from ``_demo_data`` (deterministic); this module does the I/O:
legacy events appended raw first, as release 1 wrote them, then rounds of
commands saved through the repository (its snapshot policy writes snapshots of
the busy account), then one more command on the legacy ledger, which only works
because its old events are upcast on load.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aggregates import Aggregate, Repository
from aggregates.ledger import Ledger
from eventstore import NO_STREAM, Position
from sagas import migrate_sagas, start_saga
from sagas.shipped import TRANSFER, transfer_data

from ._demo_data import (
    BUSY,
    LEGACY_LEDGER,
    LEGACY_LEDGER_ID,
    Plan,
    ledger_rounds,
    order_plans,
)
from ._progress import Progress

LEDGER_ROUNDS = 16
ORDERS = 40
SEED = 2024


@dataclass
class SeedReport:
    """What a seed did, for the demo's summary."""

    already_seeded: bool = False
    events: int = 0
    streams: int = 0
    legacy_events: int = 0
    snapshots: int = 0
    midpoint: Position | None = None
    midpoint_time: datetime | None = None
    try_next: list[tuple[str, str]] = field(default_factory=list)
    #: Transfer sagas started (``chronik demo`` then drives them).
    transfers: int = 0


async def seed_ledgers_and_orders(repository: Repository, progress: Progress) -> SeedReport:
    """Seed the demo once; a second run finds it and changes nothing."""
    store = repository.store
    report = SeedReport()
    legacy_stream = Ledger.stream_id_for(LEGACY_LEDGER_ID)
    if await store.stream_version(legacy_stream) > 0:
        report.already_seeded = True
        _add_hints(report)
        return report

    await store.append(legacy_stream, LEGACY_LEDGER, NO_STREAM)
    report.legacy_events = len(LEGACY_LEDGER)
    report.events += len(LEGACY_LEDGER)

    rng = random.Random(SEED)
    ledger_plan = list(ledger_rounds(rng, LEDGER_ROUNDS))
    orders = order_plans(rng, ORDERS)
    # Orders trickle in between ledger rounds, as in real traffic.
    rounds: list[list[Plan]] = []
    for number, plans in enumerate(ledger_plan):
        extra = orders[number // 5] if number % 5 == 0 and number // 5 < len(orders) else []
        rounds.append([*plans, *extra])
    progress.set_total(sum(len(plans) for plans in rounds) + 1)

    live: dict[tuple[type[Any], str], Aggregate[Any]] = {}
    last_stream, last_version = legacy_stream, len(LEGACY_LEDGER)
    for number, plans in enumerate(rounds):
        for plan in plans:
            key = (plan.kind, plan.aggregate_id)
            aggregate = live.get(key) or plan.kind(plan.aggregate_id)
            live[key] = aggregate
            for step in plan.steps:
                step(aggregate)
            result = await repository.save(aggregate)
            report.events += len(result.positions)
            if result.positions:
                last_stream, last_version = result.stream_id, result.version
            progress.advance()
        if number == len(rounds) // 2:
            # "What did the accounts look like back then?": a point to time-travel to.
            async for event in store.read_stream(last_stream, last_version, last_version):
                report.midpoint, report.midpoint_time = event.position, event.recorded_at

    # Release 1's ledger gets a deposit today: loading it upcasts its old events.
    await repository.update(Ledger, LEGACY_LEDGER_ID, lambda a: a.deposit("19.99"))
    report.events += 1
    progress.advance()
    report.streams = len(live) + 1
    busy = await repository.load(Ledger, BUSY[0])
    snapshots = repository.snapshots
    if snapshots is not None:
        report.snapshots = len(await snapshots.load_all(busy.stream_id))
        if report.snapshots == 0:
            await repository.snapshot(busy)
            report.snapshots = 1
    report.transfers = await _start_transfers(repository)
    report.events += report.transfers  # each saga stream starts with one event
    report.streams += report.transfers
    _add_hints(report)
    return report


#: A few transfers; the last goes to June's closed account and is refunded.
DEMO_TRANSFERS = [
    ("alice", "chen", "25.00", "EUR"),
    ("chen", "emil", "12.50", "EUR"),
    ("gus", "ivan", "8.00", "EUR"),
    ("dana", "june", "5.00", "GBP"),
]


async def _start_transfers(repository: Repository) -> int:
    await migrate_sagas(repository.store)
    for number, (source, target, amount, currency) in enumerate(DEMO_TRANSFERS, start=1):
        data = transfer_data(source, target, amount, currency)
        await start_saga(repository, TRANSFER, f"demo-transfer-{number}", data)
    return len(DEMO_TRANSFERS)


def _add_hints(report: SeedReport) -> None:
    hints = [
        ("chronik streams --type ledger", "the accounts, with their versions"),
        (
            f"chronik history ledger-{LEGACY_LEDGER_ID}",
            "events release 1 wrote, upcast to today's classes",
        ),
        (f"chronik history ledger-{LEGACY_LEDGER_ID} --raw", "the same events as stored"),
        (f"chronik state ledger {BUSY[0]}", "loaded from a snapshot plus the events after it"),
        ("chronik state ledger dana --at-version 5", "an account as it was after 5 events"),
    ]
    if report.midpoint is not None:
        hints.append(
            (
                f"chronik state ledger alice --at-position {report.midpoint}",
                "a consistent cut across all aggregates, mid-way through the demo",
            )
        )
    if report.midpoint_time is not None:
        hints.append(
            (
                f"chronik state ledger alice --as-of '{report.midpoint_time.isoformat()}'",
                "the same moment, by time",
            )
        )
    hints.append(("chronik state order 2024-0001 --json", "an order, for scripts"))
    hints.append(("chronik sagas list", "the demo's transfers: completed or compensated"))
    hints.append(
        (
            f"chronik sagas show demo-transfer-{len(DEMO_TRANSFERS)}",
            "a refund: June's account is closed",
        )
    )
    report.try_next = hints
