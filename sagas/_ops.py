"""What the command offers on saga instances: start, list, show, retry.

Plain async functions over the store, like the projections' operations, so the
CLI and an application's code call the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aggregates import Repository
from eventstore import EventStore, PostgresEventStore, caused_by

from ._choreography import run_reaction
from ._definition import Reaction, Saga
from ._engine import TRANSIENT, SagaEngine
from ._errors import SagaConfigError, SagaNotFoundError, SagaStateError
from ._parked import ParkedReactions, ParkedTrigger, parse_parked_id
from ._process import (
    SagaFailed,
    SagaProcess,
    SagaStarted,
    SagaStatus,
    StepCompensated,
    StepCompleted,
    StepFailed,
    StepWaiting,
)
from ._runner import runner_codec
from ._tables import SagaRow, SagaTables

#: A running saga untouched this long is listed as stuck.
DEFAULT_STUCK_AFTER = timedelta(minutes=5)
STATUSES = ("running", "compensating", "completed", "compensated", "failed", "stuck", "parked")


@dataclass(frozen=True, slots=True)
class SagaSummary:
    saga_id: str
    saga: str
    status: str
    stuck: bool
    step: str | None
    version: int
    started_at: datetime
    updated_at: datetime
    deadline_at: datetime | None
    reason: str | None
    #: "saga", or "reaction" for an event a reaction kept failing on (status "parked").
    kind: str = "saga"


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One thing that happened to a step, with when and which events it caused."""

    step: str
    index: int
    phase: str  # "do" or "undo"
    outcome: str  # completed, waiting, failed, timed-out, compensated, saga-failed
    at: datetime
    version: int
    detail: str | None = None
    caused: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SagaReport:
    saga_id: str
    saga: str
    status: str
    version: int
    data: dict[str, Any]
    trigger_event_id: str | None
    started_at: datetime
    ended_at: datetime | None
    reason: str | None
    steps: list[StepRecord]
    kind: str = "saga"


def _tables(store: EventStore) -> SagaTables:
    if not isinstance(store, PostgresEventStore):
        raise SagaConfigError("sagas", "saga operations need a PostgresEventStore")
    return SagaTables(store)


async def migrate_sagas(store: EventStore) -> None:
    """Create the sagas' tables (index, handled reactions, checkpoints) if missing."""
    await _tables(store).migrate()


async def start_saga(
    repository: Repository, saga: Saga, saga_id: str, data: dict[str, Any]
) -> bool:
    """Record the start of an instance; a runner drives it.  False: it existed."""
    return await SagaEngine(repository, [saga]).start(saga, saga_id, data)


async def list_sagas(
    store: EventStore,
    *,
    status: str | None = None,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
    limit: int | None = None,
) -> list[SagaSummary]:
    """Instances, oldest first; ``status`` one of ``STATUSES`` (stuck: running or
    compensating without progress for ``stuck_after``)."""
    if status is not None and status not in STATUSES:
        raise SagaStateError("sagas", f"unknown status {status!r} (one of {', '.join(STATUSES)})")
    tables = _tables(store)
    if not await tables.exists():
        return []
    if status == "parked":
        return [_parked_summary(p) for p in await ParkedReactions(tables).all(limit)]
    async with tables.store.connection() as connection:
        now = await SagaTables.now(connection, timedelta(0))
    wanted = None if status in (None, "stuck") else status
    rows = await tables.select(status=wanted, limit=None if status == "stuck" else limit)
    summaries = [_summary(row, now - row.updated_at >= stuck_after) for row in rows]
    if status == "stuck":
        summaries = [s for s in summaries if s.stuck][:limit]
    if status is None:
        # Parked reaction triggers need a person as much as failed sagas do.
        parked = [_parked_summary(p) for p in await ParkedReactions(tables).all(limit)]
        if parked:
            summaries = sorted(summaries + parked, key=lambda s: (s.started_at, s.saga_id))
            summaries = summaries[:limit]
    return summaries


def _parked_summary(parked: ParkedTrigger) -> SagaSummary:
    return SagaSummary(
        parked.parked_id,
        parked.reaction,
        "parked",
        False,
        f"{parked.event_type} {parked.stream_id}@{parked.version}",
        parked.attempts,
        parked.parked_at,
        parked.updated_at,
        None,
        parked.error,
        kind="reaction",
    )


def _summary(row: SagaRow, old: bool) -> SagaSummary:
    stuck = row.status in ("running", "compensating") and old
    return SagaSummary(
        row.saga_id,
        row.saga,
        row.status,
        stuck,
        row.step,
        row.version,
        row.started_at,
        row.updated_at,
        row.deadline_at,
        row.reason,
    )


async def show_saga(store: EventStore, saga_id: str) -> SagaReport:
    """The instance's steps as its stream records them, with times and caused events.

    A parked reaction trigger's id (``<reaction>@<event id>``) shows the event and
    the reaction's last error."""
    key = parse_parked_id(saga_id)
    if key is not None:
        parked = await ParkedReactions(_tables(store)).get(*key)
        if parked is None:
            raise SagaNotFoundError(saga_id, "no parked reaction trigger with this id")
        return _parked_report(parked)
    repository = Repository(store, [SagaProcess])
    stream_id = SagaProcess.stream_id_for(saga_id)
    steps: list[StepRecord] = []
    started: SagaStarted | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    version = 0
    async for recorded in store.read_stream(stream_id):
        event = repository.codec.decode(recorded)
        version, at = recorded.version, recorded.recorded_at
        if isinstance(event, SagaStarted):
            started, started_at = event, at
        elif isinstance(event, StepCompleted):
            steps.append(_record(event, "do", "completed", at, version, None))
        elif isinstance(event, StepWaiting):
            detail = f"waiting for {event.awaited_type} on {event.stream_id}"
            if event.deadline_at is not None:
                detail += f" until {event.deadline_at.isoformat()}"
            steps.append(_record(event, "do", "waiting", at, version, detail))
        elif isinstance(event, StepFailed):
            outcome = "timed-out" if event.timed_out else "failed"
            steps.append(_record(event, "do", outcome, at, version, event.reason))
        elif isinstance(event, StepCompensated):
            steps.append(_record(event, "undo", "compensated", at, version, None))
        elif isinstance(event, SagaFailed):
            steps.append(_record(event, "-", "saga-failed", at, version, event.reason))
        elif event.event_type in ("saga.Completed", "saga.Compensated"):
            ended_at = at
    if started is None or started_at is None:
        raise SagaNotFoundError(saga_id, "no saga instance with this id")
    process = await repository.load(SagaProcess, saga_id)
    return SagaReport(
        saga_id=saga_id,
        saga=started.saga,
        status=str(process.status),
        version=version,
        data=dict(started.data),
        trigger_event_id=started.trigger_event_id,
        started_at=started_at,
        ended_at=ended_at,
        reason=process.state.reason,
        steps=steps,
    )


def _record(
    event: Any, phase: str, outcome: str, at: datetime, version: int, detail: str | None
) -> StepRecord:
    caused = [c.model_dump() for c in getattr(event, "caused", [])]
    return StepRecord(event.step, event.index, phase, outcome, at, version, detail, caused)


async def retry_saga(
    repository: Repository, sagas: list[Saga], saga_id: str, reason: str = ""
) -> SagaStatus:
    """Put a failed instance back to work and drive it as far as it goes now."""
    engine = SagaEngine(repository, sagas)
    await engine.retry(saga_id, reason)
    return await engine.drive(saga_id)


def _parked_report(parked: ParkedTrigger) -> SagaReport:
    return SagaReport(
        saga_id=parked.parked_id,
        saga=parked.reaction,
        status="parked",
        version=parked.attempts,
        data={
            "event_id": str(parked.event_id),
            "event_type": parked.event_type,
            "stream_id": parked.stream_id,
            "version": parked.version,
            "attempts": parked.attempts,
        },
        trigger_event_id=str(parked.event_id),
        started_at=parked.parked_at,
        ended_at=None,
        reason=parked.error,
        steps=[],
        kind="reaction",
    )


async def retry_parked(
    repository: Repository, reactions: Sequence[Reaction], parked_id: str
) -> SagaReport | None:
    """Run a parked trigger's reaction once more; None when it is handled now, else
    the trigger, still parked, with the new error."""
    key = parse_parked_id(parked_id)
    tables = _tables(repository.store)
    parked = await ParkedReactions(tables).get(*key) if key is not None else None
    if parked is None:
        raise SagaNotFoundError(parked_id, "no parked reaction trigger with this id")
    reaction = next((r for r in reactions if r.name == parked.reaction), None)
    if reaction is None:
        known = ", ".join(sorted(r.name for r in reactions)) or "none"
        raise SagaConfigError(parked.reaction, f"is not one of this app's reactions ({known})")
    found = [
        e
        async for e in repository.store.read_stream(
            parked.stream_id, parked.version, parked.version
        )
    ]
    if not found or found[0].event_id != parked.event_id:
        raise SagaStateError(
            parked_id,
            f"event {parked.event_id} is no longer {parked.stream_id}@{parked.version}",
        )
    event = found[0]
    codec = runner_codec(repository, (), [reaction])
    try:
        with caused_by(event):
            handled = await run_reaction(reaction, event, codec, repository, tables)
    except TRANSIENT:
        raise
    except Exception as error:
        await ParkedReactions(tables).park(
            reaction.name, event, f"{type(error).__name__}: {error}", 1
        )
        again = await ParkedReactions(tables).get(reaction.name, event.event_id)
        assert again is not None
        return _parked_report(again)
    if not handled:
        # Handled meanwhile (a redelivery): the row is stale.
        async with tables.store.connection() as connection:
            await ParkedReactions(tables).unpark(connection, reaction.name, event.event_id)
    return None
