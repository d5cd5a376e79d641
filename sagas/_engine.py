"""Driving saga instances: one transition per transaction, compensations in reverse.

Each transition commits in one PostgreSQL transaction: the events the step's
command appends to another aggregate, the saga's own event saying so, and the
saga's index row.  Either all of it happened or none of it did, so a crash at
any point leaves a saga that simply continues where its stream says it is.
Every append expects the version it was decided on; a writer that got there
first (another runner, a redelivered trigger, a user's command on the same
ledger) makes the whole transaction fail with a ``ConcurrencyError``, and the
transition is decided again from fresh state.  The command's events also carry
ids derived from the saga and the step: the store refuses a second copy of them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, OperationalError

from aggregates import Aggregate, AggregateNotFoundError, DomainError, Repository
from eventstore import (
    ConcurrencyError,
    PostgresEventStore,
    RecordedEvent,
    StoreUnavailableError,
    caused_by,
    current_correlation,
    trace_span,
)

from ._definition import Command, Saga, Step, step_event_ids
from ._errors import SagaConfigError, SagaNotFoundError, SagaStateError
from ._process import (
    Caused,
    SagaCompensated,
    SagaCompleted,
    SagaFailed,
    SagaProcess,
    SagaStatus,
    StepCompensated,
    StepCompleted,
    StepFailed,
    StepWaiting,
)
from ._tables import SagaTables

log = logging.getLogger("chronik.sagas")

#: Called around every commit with (saga id, "before" | "inside" | "after"), "inside"
#: being after the writes and before the commit: tests crash the runner there.
CommitHook = Callable[[str, str], None]

_MAX_CONFLICTS = 50


class SagaEngine:
    """Starts, advances, retries saga instances of the given definitions.

    ``repository`` loads and saves the aggregates the steps command; it must be
    on a ``PostgresEventStore`` (progress and effects share its transactions).
    ``clock_shift`` is added to the database clock wherever deadlines are set or
    checked: tests move time forward with it instead of waiting.
    """

    def __init__(
        self,
        repository: Repository,
        sagas: Iterable[Saga],
        *,
        clock_shift: timedelta = timedelta(0),
        on_commit: CommitHook | None = None,
    ) -> None:
        store = repository.store
        if not isinstance(store, PostgresEventStore):
            raise SagaConfigError(
                "runner",
                f"sagas need a PostgresEventStore (progress and effects commit in one "
                f"transaction), got {type(store).__name__}",
            )
        self.store: PostgresEventStore = store
        self.repository = repository
        self.processes = Repository(store, [SagaProcess])
        self.tables = SagaTables(store)
        self.sagas: dict[str, Saga] = {}
        for saga in sagas:
            if saga.name in self.sagas:
                raise SagaConfigError(saga.name, "is given twice")
            self.sagas[saga.name] = saga
        self.clock_shift = clock_shift
        self.on_commit = on_commit

    # -- starting -------------------------------------------------------------------

    async def start(
        self,
        saga: Saga | str,
        saga_id: str,
        data: dict[str, Any],
        *,
        trigger: RecordedEvent | None = None,
    ) -> bool:
        """Record the start of an instance; False when it was started before."""
        definition = self._definition(saga if isinstance(saga, str) else saga.name)
        process = SagaProcess(saga_id)
        if await self.store.stream_version(process.stream_id) > 0:
            return False
        process.start(
            definition.name,
            data,
            (str(trigger.event_id), trigger.stream_id) if trigger is not None else None,
        )
        started_id = step_event_ids(saga_id, "start", "saga", 1)
        try:
            await self._commit(process, None, event_ids=started_id)
        except ConcurrencyError:
            return False  # another runner (or a redelivery) started it first
        return True

    # -- driving --------------------------------------------------------------------

    async def drive(self, saga_id: str) -> SagaStatus:
        """Advance the instance as far as it goes now; its status afterwards.

        Driven with no correlation around it (a resume, a deadline), the steps'
        events are caused by the instance's ``saga.Started``: the saga's whole work
        stays in the correlation of what started it.
        """
        if current_correlation() is None:
            stream_id = SagaProcess.stream_id_for(saga_id)
            async for started in self.store.read_stream(stream_id, 1, 1):
                with (
                    caused_by(started),
                    trace_span(
                        "chronik.saga.drive",
                        {"chronik.saga_id": saga_id},
                        parents=(started.metadata,),
                    ),
                ):
                    return await self._drive(saga_id)
        return await self._drive(saga_id)

    async def _drive(self, saga_id: str) -> SagaStatus:
        conflicts = 0
        process = await self.load(saga_id)
        while True:
            definition = self.sagas.get(process.state.saga)
            if definition is None:
                return process.status  # another app's saga: not ours to drive
            try:
                if not await self._advance(definition, process):
                    return process.status
                conflicts = 0
            except ConcurrencyError:
                conflicts += 1
                if conflicts > _MAX_CONFLICTS:
                    raise
                log.debug("saga %s: conflict, deciding again", saga_id)
                process = await self.load(saga_id)
                continue
            # Saved: the object is the stream's state now, no need to read it back.
            if process.pending_events:
                process = await self.load(saga_id)

    async def retry(self, saga_id: str, reason: str = "") -> None:
        """Put a failed instance back to work (after its cause was fixed)."""
        process = await self.load(saga_id)
        if process.status is not SagaStatus.FAILED:
            raise SagaStateError(
                saga_id, f"only a failed saga can be retried; it is {process.status}"
            )
        process.retry(reason)
        await self._commit(process, None)

    async def load(self, saga_id: str) -> SagaProcess:
        try:
            return await self.processes.load(SagaProcess, saga_id)
        except AggregateNotFoundError:
            raise SagaNotFoundError(saga_id, "no saga instance with this id") from None

    async def _advance(self, definition: Saga, process: SagaProcess) -> bool:
        """Commit one transition; False when there is nothing to do now."""
        status = process.status
        if status is SagaStatus.RUNNING:
            if process.state.waiting is not None:
                return await self._check_answer(definition, process)
            index = process.next_step()
            if index >= len(definition.steps):
                process.record(SagaCompleted())
                await self._commit(process, None)
                return True
            await self._do(definition, process, index)
            return True
        if status is SagaStatus.COMPENSATING:
            pending = process.to_compensate()
            if not pending:
                process.record(SagaCompensated())
                await self._commit(process, None)
                return True
            await self._undo(definition, process, pending[0])
            return True
        return False

    async def _do(self, definition: Saga, process: SagaProcess, index: int) -> None:
        step = definition.steps[index]
        try:
            command = step.action(process.state.data) if step.action is not None else None
            target = await self._decide(command)
        except (DomainError, AggregateNotFoundError) as refusal:
            process.record(StepFailed(step=step.name, index=index, reason=str(refusal)))
            await self._commit(process, step.name)
            return
        except TRANSIENT:
            raise
        except Exception as error:
            await self._fail(process, step, index, error)
            return
        ids = _ids_for(process, step, "do", target)
        caused = _caused(target, ids)
        async with self._transaction(process) as connection:
            if step.await_ is not None:
                awaited = step.await_.stream_id(process.state.data)
                after = await self.store.stream_version(awaited)
                deadline = None
                if step.timeout is not None:
                    now = await SagaTables.now(connection, self.clock_shift)
                    deadline = now + timedelta(seconds=step.timeout)
                process.record(
                    StepWaiting(
                        step=step.name,
                        index=index,
                        stream_id=awaited,
                        awaited_type=step.await_.event_type.event_type,
                        after_version=after,
                        deadline_at=deadline,
                        caused=caused,
                    )
                )
            else:
                process.record(StepCompleted(step=step.name, index=index, caused=caused))
                if index == len(definition.steps) - 1:
                    process.record(SagaCompleted())
            await self._save(connection, process, step.name, target, ids)

    async def _check_answer(self, definition: Saga, process: SagaProcess) -> bool:
        """A waiting step: complete it if the answer came, fail it if time is up."""
        state = process.state
        index = state.waiting
        assert index is not None and state.waiting_stream is not None
        step = definition.steps[index]
        answered = False
        async for event in self.store.read_stream(state.waiting_stream, state.waiting_after + 1):
            if event.type == state.waiting_type:
                answered = True
                break
        if not answered:
            if state.deadline_at is None or await self._now() < state.deadline_at:
                return False
            process.record(
                StepFailed(
                    step=step.name,
                    index=index,
                    reason=f"no {state.waiting_type} on {state.waiting_stream} by "
                    f"{state.deadline_at.isoformat()}",
                    timed_out=True,
                )
            )
        else:
            process.record(StepCompleted(step=step.name, index=index))
            if index == len(definition.steps) - 1:
                process.record(SagaCompleted())
        await self._commit(process, step.name)
        return True

    async def _now(self) -> datetime:
        async with self.store.connection() as connection:
            return await SagaTables.now(connection, self.clock_shift)

    async def _undo(self, definition: Saga, process: SagaProcess, index: int) -> None:
        step = definition.steps[index]
        try:
            # Compensations also see why the saga is compensating (e.g. to cancel an
            # order "with the reason").
            data = {**process.state.data, "failure": process.state.reason or ""}
            command = step.compensate(data) if step.compensate is not None else None
            target = await self._decide(command)
        except TRANSIENT:
            raise
        except Exception as error:
            # A compensation that is refused cannot be answered by the saga itself:
            # a person fixes the cause (unfreezes the ledger, ...) and retries.
            await self._fail(process, step, index, error)
            return
        ids = _ids_for(process, step, "undo", target)
        process.record(StepCompensated(step=step.name, index=index, caused=_caused(target, ids)))
        await self._commit(process, step.name, target, ids)

    async def _fail(
        self, process: SagaProcess, step: Step, index: int, error: BaseException
    ) -> None:
        if not isinstance(error, DomainError):
            log.error("saga %s: step %s raised", process.id, step.name, exc_info=error)
        reason = f"{type(error).__name__}: {error}"
        process.record(SagaFailed(step=step.name, index=index, reason=reason))
        await self._commit(process, step.name)

    async def _decide(self, command: Command[Any] | None) -> Aggregate[Any] | None:
        if command is None:
            return None
        target: Aggregate[Any] = await self.repository.load(
            command.aggregate_type, command.aggregate_id
        )
        command.decide(target)
        return target

    # -- committing -----------------------------------------------------------------

    async def _commit(
        self,
        process: SagaProcess,
        step: str | None,
        target: Aggregate[Any] | None = None,
        event_ids: list[Any] | None = None,
    ) -> None:
        async with self._transaction(process) as connection:
            await self._save(connection, process, step, target, event_ids)

    async def _save(
        self,
        connection: AsyncConnection[Any],
        process: SagaProcess,
        step: str | None,
        target: Aggregate[Any] | None,
        event_ids: list[Any] | None,
    ) -> None:
        if target is not None and target.pending_events:
            await self.repository.save(target, connection=connection, event_ids=event_ids)
            event_ids = None
        await self.processes.save(process, connection=connection, event_ids=event_ids)
        await self.tables.write(connection, process, step)

    @contextlib.asynccontextmanager
    async def _transaction(self, process: SagaProcess) -> AsyncIterator[AsyncConnection[Any]]:
        if self.on_commit is not None:
            self.on_commit(process.id, "before")
        async with self.store.connection() as connection, connection.transaction():
            yield connection
            if self.on_commit is not None:
                self.on_commit(process.id, "inside")  # everything written, not committed
        if self.on_commit is not None:
            self.on_commit(process.id, "after")

    def _definition(self, name: str) -> Saga:
        definition = self.sagas.get(name)
        if definition is None:
            known = ", ".join(sorted(self.sagas)) or "none"
            raise SagaConfigError(name, f"is not one of this runner's sagas ({known})")
        return definition


# Errors that say nothing about the step: the runner retries them from its checkpoint.
TRANSIENT = (StoreUnavailableError, ConcurrencyError, OperationalError, OSError)


def _ids_for(
    process: SagaProcess, step: Step, phase: str, target: Aggregate[Any] | None
) -> list[Any] | None:
    if target is None or not target.pending_events:
        return None
    return list(step_event_ids(process.id, step.name, phase, len(target.pending_events)))


def _caused(target: Aggregate[Any] | None, ids: list[Any] | None) -> list[Caused]:
    if target is None or ids is None:
        return []
    base = target.saved_version
    return [
        Caused(stream_id=target.stream_id, version=base + n + 1, event_id=str(i), type=e.event_type)
        for n, (e, i) in enumerate(zip(target.pending_events, ids, strict=True))
    ]
