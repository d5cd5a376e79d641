"""The saga runner: follows an event source, starts and drives sagas, fires deadlines.

It takes any ``projections.EventSource``: the store's feed (``StoreFeedSource``)
or a Kafka consumer wired in ``chronik``.  For each event it starts the sagas
the event triggers, drives instances whose ``saga.Started`` / ``saga.Retried``
it sees, runs the reactions for the event's type, and re-checks the waiting
instances whose awaited stream the event is on.  Between batches it fires the
deadlines that are due on the database clock.  On start it resumes every
instance that still has work, so a crash anywhere costs nothing but a restart.

The checkpoint only saves re-reading: every effect is idempotent (a saga
transition expects its stream's version, a reaction marks its event handled in
its own transaction), so the batch in flight at a crash is simply read again.

Leadership.  ``run`` works only while it holds a leader lock (on the store's
feed, a PostgreSQL advisory lock named after the store's schema and the
runner's name, as projections and the relay do): of several processes running
the same sagas one leads, the others stand by and take over when the leader's
database session ends (a crash, a SIGKILL).  Runners on a Kafka source share its
partitions through their consumer group instead: each leads.  The lock saves
work, it does not make the runner correct: two runners that both lead (a leader
that lost its connection without noticing yet, or ``catch_up`` beside a live
runner) still act once per trigger and step, because every transition is one
transaction that expects the saga stream's version and appends events with ids
derived from the saga and the step (``tests/sagas/test_leadership.py`` runs two
leading runners on the same triggers to pin this).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from aggregates import Repository
from eventstore import EventCodec, Position, RecordedEvent, caused_by, trace_span
from projections import (
    EventSource,
    LeaderLock,
    LocalLocks,
    LockProvider,
    PostgresAdvisoryLocks,
    StoreFeedSource,
)

from ._choreography import ReactionRetry, StopRequested, react
from ._definition import Reaction, Saga
from ._engine import TRANSIENT, CommitHook, SagaEngine
from ._errors import SagaConfigError
from ._process import SAGA_EVENTS, SagaStatus

log = logging.getLogger("chronik.sagas")

_DRIVEN_BY = frozenset({"saga.Started", "saga.Retried"})


class _LeadershipLost(Exception):
    pass


@dataclass(frozen=True, slots=True)
class SagaRunnerOptions:
    batch_size: int = 200
    #: How long to wait for events before looking at deadlines again.
    idle_timeout: float = 0.5
    restart_delay: float = 0.5
    max_restart_delay: float = 30.0
    #: How often a standby tries for the leader lock.
    standby_poll: float = 1.0
    #: How often the leader checks the connection that holds its lock.
    lock_check_interval: float = 5.0
    #: How a reaction that raises is tried again before its event is parked.
    reaction_retry: ReactionRetry = field(default_factory=ReactionRetry)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.idle_timeout <= 0:
            raise ValueError("batch_size must be >= 1 and idle_timeout > 0")
        if self.standby_poll <= 0 or self.lock_check_interval <= 0:
            raise ValueError("standby_poll and lock_check_interval must be > 0")


@dataclass(slots=True)
class SagaRunnerStats:
    events: int = 0
    started: int = 0
    driven: int = 0
    reactions: int = 0
    deadlines: int = 0
    restarts: int = 0
    position: Position | None = None
    error: str | None = None
    #: Whether this runner holds the leader lock now (a standby does nothing).
    leading: bool = False
    #: Events a reaction kept failing on, parked (``chronik sagas list --status parked``).
    parked: int = 0


class SagaRunner:
    """Runs ``sagas`` and ``reactions`` from ``source`` until stopped.

    ``name`` keys the runner's checkpoint and its leader lock: runners of
    different apps on one store need different names.  ``locks``: where the
    leader lock is taken (default: on the store's feed, advisory locks in the
    store's database; on another source, such as a Kafka consumer group that
    shares its partitions among runners, a lock of its own, so it always leads).
    """

    def __init__(
        self,
        repository: Repository,
        source: EventSource,
        *,
        sagas: Iterable[Saga] = (),
        reactions: Iterable[Reaction] = (),
        name: str = "sagas",
        options: SagaRunnerOptions | None = None,
        clock_shift: timedelta = timedelta(0),
        on_commit: CommitHook | None = None,
        locks: LockProvider | None = None,
    ) -> None:
        self.engine = SagaEngine(repository, sagas, clock_shift=clock_shift, on_commit=on_commit)
        self.locks = locks if locks is not None else _default_locks(source, self.engine)
        self.repository = repository
        self.source = source
        self.reactions = tuple(reactions)
        self.name = name
        self.options = options or SagaRunnerOptions()
        self.stats = SagaRunnerStats()
        if not self.engine.sagas and not self.reactions:
            raise SagaConfigError(name, "a runner needs at least one saga or reaction")
        self.codec = runner_codec(repository, self.engine.sagas.values(), self.reactions)
        self._migrated = False
        self._stop: asyncio.Event | None = None
        self._starters: dict[str, list[Saga]] = {}
        for saga in self.engine.sagas.values():
            for event_class in saga.start_on:
                self._starters.setdefault(event_class.event_type, []).append(saga)
        self._reacting: dict[str, list[Reaction]] = {}
        for reaction in self.reactions:
            for event_class in reaction.on:
                self._reacting.setdefault(event_class.event_type, []).append(reaction)

    @property
    def lock_name(self) -> str:
        return f"chronik.sagas:{self.engine.store.schema}:{self.name}"

    async def run(self, stop: asyncio.Event) -> None:
        """Lead (or stand by) and work until ``stop`` is set; errors restart from the
        checkpoint after a delay, a lost lock goes back to standby."""
        await self.engine.tables.migrate()
        self._migrated = True
        self._stop = stop
        lock = self.locks.lock(self.lock_name)
        while not stop.is_set():
            try:
                if not await self._acquire(lock, stop):
                    break
                log.info("saga runner %s: leading", self.name)
                self.stats.leading = True
                if await self._lead(stop, lock):
                    return
                log.warning("saga runner %s: lost its lock; back to standby", self.name)
            finally:
                # Also a standby's: its lock connection closes with it.
                self.stats.leading = False
                await lock.release()

    async def _acquire(self, lock: LeaderLock, stop: asyncio.Event) -> bool:
        """Wait for the lock; say so when another process holds it (else a standby
        looks hung)."""
        poll = self.options.standby_poll
        trying = asyncio.ensure_future(lock.acquire(stop, poll))
        try:
            done, _ = await asyncio.wait({trying}, timeout=poll)
            if not done:
                log.info(
                    "saga runner %s: standing by; another runner leads, this one takes "
                    "over if it stops",
                    self.name,
                )
            return await trying
        finally:
            trying.cancel()

    async def _lead(self, stop: asyncio.Event, lock: LeaderLock) -> bool:
        """Work while leading; True when stopped, False when the lock was lost."""
        delay = self.options.restart_delay
        while not stop.is_set():
            try:
                await self._work(stop, lock)
                return True
            except _LeadershipLost:
                return False
            except StopRequested:
                return True
            except Exception as error:
                self.stats.restarts += 1
                self.stats.error = f"{type(error).__name__}: {error}"
                log.exception("saga runner %s failed; restarting in %.1fs", self.name, delay)
                try:
                    async with asyncio.timeout(delay):
                        await stop.wait()
                except TimeoutError:
                    pass
                delay = min(delay * 2, self.options.max_restart_delay)
        return True

    async def catch_up(self) -> None:
        """Process everything the source holds now, then fire due deadlines, and return."""
        if not self._migrated:
            await self.engine.tables.migrate()
            self._migrated = True
        await self.resume()
        head = await self.source.head()
        position = await self.engine.tables.checkpoint(self.name)
        if head is not None and (position is None or position < head):
            async with self.source.open(position) as feed:
                while position is None or position < head:
                    events = await feed.next_batch(self.options.batch_size, 1.0)
                    if events:
                        position = await self.process(events)
        await self.fire_deadlines()

    async def _work(self, stop: asyncio.Event, lock: LeaderLock) -> None:
        await self.resume()
        position = await self.engine.tables.checkpoint(self.name)
        options = self.options
        checked = time.monotonic()
        async with self.source.open(position) as feed:
            while not stop.is_set():
                events = await feed.next_batch(options.batch_size, options.idle_timeout)
                if events:
                    await self.process(events)
                await self.fire_deadlines()
                if time.monotonic() - checked > options.lock_check_interval:
                    checked = time.monotonic()
                    if not await lock.held():
                        raise _LeadershipLost

    async def resume(self) -> None:
        """Drive every instance that has work left (after a crash, a restart)."""
        for saga_id in await self.engine.tables.active_ids():
            await self._drive(saga_id)
        for row in await self.engine.tables.select(status=str(SagaStatus.RUNNING)):
            if row.waiting_stream is not None:
                await self._drive(row.saga_id)

    async def process(self, events: list[RecordedEvent]) -> Position:
        """Handle one batch and save the checkpoint after it."""
        last_on: dict[str, RecordedEvent] = {}
        for event in events:
            # Whatever the handling appends (a saga's start, its steps' commands,
            # a reaction's events) is caused by this event and keeps its correlation.
            with (
                caused_by(event),
                trace_span(
                    "chronik.saga.handle",
                    {"chronik.runner": self.name, "chronik.event_type": event.type},
                    parents=(event.metadata,),
                ),
            ):
                await self._handle(event)
            last_on[event.stream_id] = event
        streams = sorted(last_on)
        for row in await self.engine.tables.select(waiting_streams=streams):
            # The awaited answer is the latest event on the stream the saga waits on.
            answer = last_on.get(row.waiting_stream) if row.waiting_stream else None
            if answer is None:
                await self._drive(row.saga_id)
                continue
            with caused_by(answer), trace_span("chronik.saga.step", parents=(answer.metadata,)):
                await self._drive(row.saga_id)
        position = events[-1].position
        await self.engine.tables.save_checkpoint(self.name, position)
        await self.source.acknowledge(position)
        self.stats.events += len(events)
        self.stats.position = position
        return position

    async def fire_deadlines(self) -> None:
        for row in await self.engine.tables.select(due=self.engine.clock_shift):
            if row.status == SagaStatus.RUNNING:
                self.stats.deadlines += 1
                await self._drive(row.saga_id)

    async def _handle(self, event: RecordedEvent) -> None:
        kind = event.type
        if kind in _DRIVEN_BY and event.stream_id.startswith("saga-"):
            current = self.codec.upcast(event)
            if current.type != "saga.Started" or current.data.get("saga") in self.engine.sagas:
                await self._drive(event.stream_id.removeprefix("saga-"))
            return
        for saga in self._starters.get(kind, ()):
            assert saga.data_from is not None
            current = self.codec.upcast(event)
            data = saga.data_from(self.codec.decode(current), current)
            if data is None:
                continue
            saga_id = saga.instance_id(event.event_id)
            if await self.engine.start(saga, saga_id, dict(data), trigger=event):
                self.stats.started += 1
            await self._drive(saga_id)
        for reaction in self._reacting.get(kind, ()):
            outcome = await react(
                reaction,
                event,
                self.codec,
                self.repository,
                self.engine.tables,
                self.options.reaction_retry,
                TRANSIENT,
                self._pause,
            )
            if outcome:
                self.stats.reactions += 1
            elif outcome is None:
                self.stats.parked += 1

    async def _pause(self, seconds: float) -> bool:
        """A reaction's backoff: True when the runner is asked to stop meanwhile."""
        stop = self._stop
        if stop is None:  # catch_up: nothing can stop it but cancellation
            await asyncio.sleep(seconds)
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()
        return stop.is_set()

    async def _drive(self, saga_id: str) -> None:
        await self.engine.drive(saga_id)
        self.stats.driven += 1


def _default_locks(source: EventSource, engine: SagaEngine) -> LockProvider:
    """Advisory locks in the store's database for a runner on the store's feed (every
    runner would read all of it); a lock of its own otherwise: runners on a Kafka
    source share its partitions through their consumer group, all leading."""
    if isinstance(source, StoreFeedSource):
        return PostgresAdvisoryLocks.for_store(engine.store)
    return LocalLocks()


def runner_codec(
    repository: Repository, sagas: Iterable[Saga], reactions: Iterable[Reaction]
) -> EventCodec:
    """The repository's codec (its aggregates' events and upcasters) plus what the
    sagas and reactions listen to."""
    base = repository.codec
    codec = EventCodec(base.event_classes.values(), base.upcasters)
    wanted = [*SAGA_EVENTS]
    for saga in sagas:
        wanted.extend(saga.start_on)
    for reaction in reactions:
        wanted.extend(reaction.on)
    for event_class in wanted:
        known = codec.event_classes.get(event_class.event_type)
        if known is None:
            codec.register(event_class)
        elif known is not event_class:
            raise SagaConfigError(
                event_class.event_type, "two different event classes have this type name"
            )
    return codec
