"""What the command offers on saga instances: start, list, show, retry.

Plain async functions over the store, like the projections' operations, so the
CLI and an application's code call the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aggregates import Repository
from eventstore import EventStore, PostgresEventStore

from ._definition import Saga
from ._engine import SagaEngine
from ._errors import SagaConfigError, SagaNotFoundError, SagaStateError
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
from ._tables import SagaRow, SagaTables

#: A running saga untouched this long is listed as stuck.
DEFAULT_STUCK_AFTER = timedelta(minutes=5)
STATUSES = ("running", "compensating", "completed", "compensated", "failed", "stuck")


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
    async with tables.store.connection() as connection:
        now = await SagaTables.now(connection, timedelta(0))
    wanted = None if status in (None, "stuck") else status
    rows = await tables.select(status=wanted, limit=None if status == "stuck" else limit)
    summaries = [_summary(row, now - row.updated_at >= stuck_after) for row in rows]
    if status == "stuck":
        summaries = [s for s in summaries if s.stuck][:limit]
    return summaries


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
    """The instance's steps as its stream records them, with times and caused events."""
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
