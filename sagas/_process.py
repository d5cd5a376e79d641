"""The saga instance as an aggregate: its progress is a stream like any other.

A saga instance lives in the stream ``saga-<id>``, so ``chronik history`` shows its
steps and ``chronik state saga <id>`` time-travels it.  The events say what
happened (a step done, refused, waiting, timed out, compensated); the state says
what comes next.  Which steps exist and what they do is the saga *definition*'s
business (``_definition``): this aggregate only keeps the record, so it stays pure.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel

from aggregates import Aggregate, applies
from eventstore import Event


class SagaStatus(StrEnum):
    RUNNING = "running"  # doing steps (or waiting for an answer)
    COMPENSATING = "compensating"  # a step failed: undoing the completed ones
    COMPLETED = "completed"
    COMPENSATED = "compensated"
    FAILED = "failed"  # needs a person: fix the cause, then retry


TERMINAL = frozenset({SagaStatus.COMPLETED, SagaStatus.COMPENSATED})


class Caused(BaseModel):
    """One event a step appended to another aggregate."""

    stream_id: str
    version: int
    event_id: str
    type: str


class SagaStarted(Event):
    event_type: ClassVar[str] = "saga.Started"
    saga: str
    data: dict[str, Any]
    trigger_event_id: str | None = None
    trigger_stream_id: str | None = None


class StepCompleted(Event):
    event_type: ClassVar[str] = "saga.StepCompleted"
    step: str
    index: int
    caused: list[Caused] = []


class StepWaiting(Event):
    """The step's command is done; it waits for ``event_type`` on ``stream_id``."""

    event_type: ClassVar[str] = "saga.StepWaiting"
    step: str
    index: int
    stream_id: str
    awaited_type: str
    #: The awaited stream's version when the wait began: the answer comes after it.
    after_version: int
    deadline_at: datetime | None
    caused: list[Caused] = []


class StepFailed(Event):
    """A step was refused (a business rule) or timed out: compensations follow."""

    event_type: ClassVar[str] = "saga.StepFailed"
    step: str
    index: int
    reason: str
    timed_out: bool = False


class StepCompensated(Event):
    event_type: ClassVar[str] = "saga.StepCompensated"
    step: str
    index: int
    caused: list[Caused] = []


class SagaCompleted(Event):
    event_type: ClassVar[str] = "saga.Completed"


class SagaCompensated(Event):
    event_type: ClassVar[str] = "saga.Compensated"


class SagaFailed(Event):
    """Something a retry may fix: a compensation refused, or an unexpected error."""

    event_type: ClassVar[str] = "saga.Failed"
    step: str
    index: int
    reason: str


class SagaRetried(Event):
    event_type: ClassVar[str] = "saga.Retried"
    reason: str = ""


SAGA_EVENTS: tuple[type[Event], ...] = (
    SagaStarted,
    StepCompleted,
    StepWaiting,
    StepFailed,
    StepCompensated,
    SagaCompleted,
    SagaCompensated,
    SagaFailed,
    SagaRetried,
)


class SagaState(BaseModel):
    saga: str = ""
    status: SagaStatus = SagaStatus.RUNNING
    data: dict[str, Any] = {}
    trigger_event_id: str | None = None
    #: Indexes of the steps done, in the order they were done.
    completed: list[int] = []
    #: Indexes of the steps compensated, in the order they were compensated.
    compensated: list[int] = []
    #: The step a waiting saga waits in.
    waiting: int | None = None
    waiting_stream: str | None = None
    waiting_type: str | None = None
    waiting_after: int = 0
    deadline_at: datetime | None = None
    failed_step: int | None = None
    #: What to return to on retry: the status the saga had when it failed.
    failed_during: SagaStatus | None = None
    reason: str | None = None


class SagaProcess(Aggregate[SagaState]):
    """The record of one saga instance (stream ``saga-<id>``)."""

    type_name = "saga"

    @property
    def status(self) -> SagaStatus:
        return self.state.status

    def next_step(self) -> int:
        """The index of the first step not done yet."""
        return len(self.state.completed)

    def to_compensate(self) -> list[int]:
        """Completed steps not compensated yet, newest first (the order to undo them)."""
        done = set(self.state.compensated)
        return [index for index in reversed(self.state.completed) if index not in done]

    # Commands are thin: the engine decides *what* happens, these record it.

    def start(self, saga: str, data: dict[str, Any], trigger: tuple[str, str] | None) -> None:
        event_id, stream_id = trigger if trigger is not None else (None, None)
        self.record(
            SagaStarted(
                saga=saga, data=data, trigger_event_id=event_id, trigger_stream_id=stream_id
            )
        )

    def retry(self, reason: str = "") -> None:
        self.record(SagaRetried(reason=reason))

    @applies(SagaStarted)
    def _started(self, event: SagaStarted) -> None:
        self.state.saga = event.saga
        self.state.data = dict(event.data)
        self.state.trigger_event_id = event.trigger_event_id

    @applies(StepCompleted)
    def _step_completed(self, event: StepCompleted) -> None:
        self.state.completed.append(event.index)
        self._stop_waiting()

    @applies(StepWaiting)
    def _step_waiting(self, event: StepWaiting) -> None:
        state = self.state
        state.waiting, state.waiting_stream = event.index, event.stream_id
        state.waiting_type, state.deadline_at = event.awaited_type, event.deadline_at
        state.waiting_after = event.after_version

    @applies(StepFailed)
    def _step_failed(self, event: StepFailed) -> None:
        self._stop_waiting()
        self.state.status = SagaStatus.COMPENSATING
        self.state.failed_step, self.state.reason = event.index, event.reason

    @applies(StepCompensated)
    def _step_compensated(self, event: StepCompensated) -> None:
        self.state.compensated.append(event.index)

    @applies(SagaCompleted)
    def _completed(self, event: SagaCompleted) -> None:
        self.state.status = SagaStatus.COMPLETED

    @applies(SagaCompensated)
    def _compensated(self, event: SagaCompensated) -> None:
        self.state.status = SagaStatus.COMPENSATED

    @applies(SagaFailed)
    def _failed(self, event: SagaFailed) -> None:
        self.state.failed_during = self.state.status
        self.state.status = SagaStatus.FAILED
        self.state.reason = f"{event.step}: {event.reason}"

    @applies(SagaRetried)
    def _retried(self, event: SagaRetried) -> None:
        self.state.status = self.state.failed_during or SagaStatus.RUNNING
        self.state.failed_during = None

    def _stop_waiting(self) -> None:
        state = self.state
        state.waiting = state.waiting_stream = state.waiting_type = state.deadline_at = None
