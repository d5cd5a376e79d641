"""One projection's run loop: lead (or wait as standby), catch up, follow live, swap.

The loop in one place, so every way of running a projection shares it:

* ``RUN``: a service's runner.  Keeps the active slot of its version up to date;
  when the active slot is of an older version (or there is none), builds a slot of
  its own version from the start and swaps it in once caught up, then goes live.
* ``REBUILD``: builds a new generation of the same version beside the live one,
  swaps it in once caught up, and returns; the live runner follows the swap.
* ``REPLAY``: builds into another read model (a scratch one) up to a position.

Every failure restarts from the checkpoint the read model holds, so the loop
never has to undo anything: what was not committed did not happen.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from eventstore import START, Position, RecordedEvent, UnreadableEventError, trace_span

from ._apply import AppliedBatch, apply_batch
from ._dead_letters import DeadLetter, new_dead_letter
from ._errors import (
    CheckpointConflictError,
    ProjectionDefinitionError,
    ProjectionStoppedError,
    ProjectionSupersededError,
    ReadModelError,
    SlotNotActiveError,
    WriteRejectedError,
)
from ._locks import LeaderLock, raise_if_cancelled, wait_or_stop
from ._projection import PoisonPolicy, Projection
from ._read_model import CommitBatch, FailedWrite, PendingFailures, ReadModel
from ._slots import ProjectionMeta, SlotChoice, SlotInfo, SlotState, choose_slot
from ._source import EventSource
from ._writes import Writes

log = logging.getLogger("chronik.projections")

W = TypeVar("W", bound=Writes)


class Mode(enum.Enum):
    RUN = "run"
    REBUILD = "rebuild"
    REPLAY = "replay"


class Phase(enum.StrEnum):
    STARTING = "starting"
    STANDBY = "standby"  # waiting for the lock another runner holds
    BUILDING = "building"  # filling a shadow slot
    LIVE = "live"  # keeping the active slot up to date
    STOPPED = "stopped"  # a poison event stopped it (policy "stop")
    RETIRED = "retired"  # a newer version is active
    FINISHED = "finished"  # a rebuild or replay is done, or the runner was asked to stop


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    """Tuning of a runner; the defaults suit a service."""

    batch_size: int = 500
    #: How long to wait for events before looking around (stop, lock, swap).
    idle_timeout: float = 0.5
    #: How often a standby tries for the lock.
    standby_poll: float = 1.0
    #: How often the lock holder checks its lock connection.
    lock_check_interval: float = 5.0
    restart_delay: float = 0.5
    max_restart_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(slots=True)
class WorkerState:
    """What one runner is doing with one projection, for in-process status."""

    projection: str
    version: int
    phase: Phase = Phase.STARTING
    slot: str | None = None
    position: Position | None = None
    events: int = 0
    restarts: int = 0
    error: str | None = None
    activated: list[str] = field(default_factory=list)


class _LeadershipLost(Exception):
    pass


class ProjectionWorker(Generic[W]):
    def __init__(
        self,
        projection: Projection[W],
        read_model: ReadModel[W],
        source: EventSource,
        *,
        lock: LeaderLock | None,
        options: RunnerOptions,
        mode: Mode = Mode.RUN,
        from_position: Position | None = None,
        stop_at: Position | None = None,
    ) -> None:
        if read_model.writes_type is not projection.writes_type:
            raise ProjectionDefinitionError(
                projection.name,
                f"writes {projection.writes_type.__name__}, but the read model "
                f"{read_model!r} takes {read_model.writes_type.__name__}",
            )
        self.projection = projection
        self.read_model = read_model
        self.source = source
        self.lock = lock
        self.options = options
        self.mode = mode
        self.from_position = from_position or START
        self.stop_at = stop_at
        self.state = WorkerState(projection.name, projection.version)
        self._slot: str | None = None  # the slot REBUILD/REPLAY created

    @property
    def name(self) -> str:
        return self.projection.name

    async def run(self, stop: asyncio.Event) -> None:
        """Run until done (rebuild/replay), stopped by a poison event, retired or ``stop``."""
        while not stop.is_set():
            if self.lock is not None:
                self.state.phase = Phase.STANDBY
                if not await self.lock.acquire(stop, self.options.standby_poll):
                    break
                log.info(
                    "projection %s v%d: leading",
                    self.name,
                    self.projection.version,
                    extra={"projection": self.name},
                )
            try:
                if await self._lead(stop):
                    return
            finally:
                if self.lock is not None:
                    await self.lock.release()
        self.state.phase = Phase.FINISHED

    async def _lead(self, stop: asyncio.Event) -> bool:
        """Work while leading; True when done for good, False to go back to standby."""
        delay = self.options.restart_delay
        while not stop.is_set():
            try:
                if await self._work(stop):
                    self.state.phase = Phase.FINISHED
                    return True
                delay = self.options.restart_delay
            except _LeadershipLost:
                log.warning("projection %s: lost its lock; back to standby", self.name)
                return False
            except ProjectionStoppedError as error:
                self.state.phase, self.state.error = Phase.STOPPED, str(error)
                if self.mode is not Mode.RUN:
                    raise
                log.error("%s", error)
                return True
            except ProjectionSupersededError as error:
                self.state.phase, self.state.error = Phase.RETIRED, str(error)
                if self.mode is not Mode.RUN:
                    raise
                log.warning("%s; this runner stops projecting it", error)
                return True
            except (CheckpointConflictError, SlotNotActiveError) as error:
                log.info("%s; resuming from the read model's checkpoint", error)
            except Exception as error:
                if self.mode is not Mode.RUN:
                    raise
                # A service's runner outlives outages: restart from the checkpoint.
                self.state.error = f"{type(error).__name__}: {error}"
                self.state.restarts += 1
                log.exception("projection %s failed; restarting in %.1fs", self.name, delay)
                if await wait_or_stop(stop, delay):
                    break
                delay = min(delay * 2, self.options.max_restart_delay)
        return True

    # -- one pass: resolve the slot, follow the feed -----------------------------

    async def _resolve(self, meta: ProjectionMeta) -> tuple[SlotInfo, bool]:
        """The slot to write and whether it is still being built."""
        version = self.projection.version
        if self.mode is Mode.RUN:
            choice, info = choose_slot(meta, version)
            if choice is SlotChoice.CREATE or info is None:
                info = await self.read_model.create_slot(self.name, version, self.from_position)
                log.info("projection %s: building slot %s", self.name, info.slot)
            return info, choice is not SlotChoice.LIVE
        active = meta.active_slot
        if active is not None and active.version > version:
            raise ProjectionSupersededError(self.name, version, active.version)
        if self._slot is None:
            info = await self.read_model.create_slot(self.name, version, self.from_position)
            self._slot = info.slot
            for other in meta.slots.values():
                if other.version == version and other.state is SlotState.BUILDING:
                    await self.read_model.set_slot_state(self.name, other.slot, SlotState.ABANDONED)
            return info, True
        info = meta.slots[self._slot]
        return info, meta.active != info.slot

    async def _target(self, meta: ProjectionMeta, info: SlotInfo) -> Position:
        """How far a shadow slot must get before it may replace the active one."""
        if self.stop_at is not None:
            return self.stop_at
        head = await self.source.head()
        active = meta.active_slot
        candidates = [info.position, head or START]
        if active is not None:
            candidates.append(active.position)
        return max(candidates)

    async def _work(self, stop: asyncio.Event) -> bool:
        meta = await self.read_model.meta(self.name)
        info, building = await self._resolve(meta)
        slot, position = info.slot, info.position
        pending = await self.read_model.pending_failures(self.name, slot)
        if pending is not None and not await self._settle_pending(slot, pending, stop):
            return True
        target = await self._target(meta, info) if building else position
        blocking = {
            letter.position
            for letter in await self.read_model.dead_letters(self.name, slot)
            if letter.blocking
        }
        state = self.state
        state.slot, state.position, state.error = slot, position, None
        state.phase = Phase.BUILDING if building else Phase.LIVE
        loop, options = asyncio.get_running_loop(), self.options
        checked = loop.time()
        reached = False
        async with self.source.open(position) as feed:
            while not stop.is_set():
                if building and (reached or position >= target) and await self._activate(slot):
                    building = False
                    state.phase = Phase.LIVE
                    if self.mode is not Mode.RUN:
                        return True
                try:
                    events = await feed.next_batch(options.batch_size, options.idle_timeout)
                except UnreadableEventError as error:
                    # The store cannot decode this event at all: retrying cannot help,
                    # and restarting would meet it again forever.  Park it, go round
                    # again from the checkpoint after it.
                    if self.stop_at is not None and error.position > self.stop_at:
                        reached = True
                        if not building:
                            return True
                        continue
                    await self._park_unreadable(slot, error, position, not building)
                    return False
                raise_if_cancelled()
                if self.lock is not None and loop.time() - checked >= options.lock_check_interval:
                    if not await self.lock.held():
                        raise _LeadershipLost
                    checked = loop.time()
                if self.stop_at is not None:
                    kept = [e for e in events if e.position <= self.stop_at]
                    reached = reached or len(kept) < len(events)
                    events = kept
                if events:
                    position = await self._process(slot, events, position, blocking, not building)
                    raise_if_cancelled()
        return True

    async def _activate(self, slot: str) -> bool:
        if await self.read_model.activate(self.name, slot):
            log.info("projection %s: slot %s is now active", self.name, slot)
            self.state.activated.append(slot)
            return True
        meta = await self.read_model.meta(self.name)
        mine = meta.slots.get(slot)
        active = meta.active_slot
        if mine is None or mine.state is SlotState.ABANDONED:
            raise SlotNotActiveError(self.name, slot, meta.active)
        if active is not None and active.version > self.projection.version:
            raise ProjectionSupersededError(self.name, self.projection.version, active.version)
        return False

    # -- one batch -------------------------------------------------------------

    async def _process(
        self,
        slot: str,
        events: Sequence[RecordedEvent],
        previous: Position,
        blocking: set[Position],
        live: bool,
    ) -> Position:
        writes = self.read_model.new_writes(self.name, slot)
        # The batch continues the trace of its first event (the others are linked).
        with trace_span(
            "chronik.projection.batch",
            {"chronik.projection": self.name, "chronik.slot": slot, "chronik.events": len(events)},
            parents=(event.metadata for event in events),
        ):
            return await self._apply_and_commit(slot, events, writes, previous, blocking, live)

    async def _apply_and_commit(
        self,
        slot: str,
        events: Sequence[RecordedEvent],
        writes: W,
        previous: Position,
        blocking: set[Position],
        live: bool,
    ) -> Position:
        applied = await apply_batch(
            self.projection, slot, writes, events, previous, blocking=blocking
        )
        try:
            failed = await self.read_model.commit(
                self.name, slot, self._commit_batch(previous, applied), require_active=live
            )
        except WriteRejectedError as error:
            if len(events) > 1:
                # Find the event whose writes the backend refuses: commit one by one.
                position = previous
                for event in events:
                    position = await self._process(slot, [event], position, blocking, live)
                return position
            return await self._park_rejected(slot, events[0], previous, error, live)
        if failed:
            # The commit recorded these with the checkpoint; if parking them fails
            # here, the next pass finds them pending and parks them then.
            pending = PendingFailures(previous, applied.position, failed)
            await self.read_model.settle(
                self.name, slot, pending, self._refused_letters(slot, events, failed)
            )
            log.error(
                "projection %s: %d writes failed in a committed batch", self.name, len(failed)
            )
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "projection %s: applied %d event(s) up to %s",
                self.name,
                applied.events,
                applied.position,
                extra=_about(self.name, events[-1]),
            )
        blocking.difference_update(applied.resolved)
        self.state.position = applied.position
        self.state.events += applied.events
        await self.source.acknowledge(applied.position)
        if applied.stopped is not None:
            raise ProjectionStoppedError(self.name, applied.stopped.error, applied.stopped.position)
        return applied.position

    def _refused_letters(
        self, slot: str, events: Sequence[RecordedEvent], failed: list[FailedWrite]
    ) -> list[DeadLetter]:
        return [
            new_dead_letter(
                self.name,
                slot,
                events[f.event_index],
                WriteRejectedError(self.name, f.error, f.event_index, partial=True),
                f"the read model refused a write of this event after its batch "
                f"committed (its other writes were applied): {f.error}",
                1,
                _now(),
                partial=True,
            )
            for f in failed
        ]

    async def _settle_pending(
        self, slot: str, pending: PendingFailures, stop: asyncio.Event
    ) -> bool:
        """Park the refused writes a commit recorded but nobody parked (a crash, a lost
        reply, a failed request): re-read their batch from the source.  False: stopped."""
        needed = max(f.event_index for f in pending.failures) + 1
        events: list[RecordedEvent] = []
        async with self.source.open(pending.previous) as feed:
            while len(events) < needed:
                if stop.is_set():
                    return False
                batch = await feed.next_batch(needed - len(events), self.options.idle_timeout)
                raise_if_cancelled()
                events.extend(batch)
                if not batch:
                    head = await self.source.head()
                    if head is None or head < pending.position:
                        raise ReadModelError(
                            self.name,
                            f"slot {slot} has refused writes of the batch up to "
                            f"{pending.position} to park, but the source no longer holds it",
                        )
        if events[-1].position > pending.position:
            raise ReadModelError(
                self.name,
                f"slot {slot}: the source's events after {pending.previous} do not match the "
                f"batch up to {pending.position} whose refused writes are to be parked",
            )
        letters = self._refused_letters(slot, events, pending.failures)
        await self.read_model.settle(self.name, slot, pending, letters)
        log.error(
            "projection %s: parked %d events whose writes were refused in the batch up to %s",
            self.name,
            len(letters),
            pending.position,
        )
        return True

    def _commit_batch(self, previous: Position, applied: AppliedBatch[W]) -> CommitBatch[W]:
        letters = list(applied.dead_letters)
        if applied.stopped is not None:
            letters.append(applied.stopped)
        return CommitBatch(
            previous=previous,
            position=applied.position,
            writes=applied.writes,
            events=applied.events,
            event_time=applied.event_time,
            dead_letters=letters,
            resolved=applied.resolved,
        )

    async def _park_unreadable(
        self, slot: str, error: UnreadableEventError, previous: Position, live: bool
    ) -> Position:
        # The letter keeps the envelope with empty data: the stored data is what
        # cannot be decoded (replay_dead_letters keeps such letters parked).
        stand_in = RecordedEvent(
            stream_id=error.stream_id,
            version=error.version,
            position=error.position,
            event_id=error.event_id,
            type=error.event_type,
            schema_version=error.schema_version,
            data={},
            metadata={},
            recorded_at=error.recorded_at,
        )
        return await self._park(
            slot, stand_in, previous, error, f"the store cannot decode this event: {error}", live
        )

    async def _park_rejected(
        self,
        slot: str,
        event: RecordedEvent,
        previous: Position,
        error: WriteRejectedError,
        live: bool,
    ) -> Position:
        return await self._park(
            slot,
            event,
            previous,
            error,
            f"the read model refused this event's writes: {error}",
            live,
            partial=error.partial,
        )

    async def _park(
        self,
        slot: str,
        event: RecordedEvent,
        previous: Position,
        error: Exception,
        trace: str,
        live: bool,
        *,
        partial: bool = False,
    ) -> Position:
        """Park one event alone: a dead letter and the checkpoint past it (or, for a
        projection set to stop, before it) in one commit."""
        stop = self.projection.on_poison is PoisonPolicy.STOP
        letter = new_dead_letter(
            self.name,
            slot,
            event,
            error,
            trace,
            1,
            _now(),
            blocking=stop,
            checkpoint_before=previous if stop else None,
            partial=partial,
        )
        position = previous if stop else event.position
        batch = CommitBatch(
            previous=previous,
            position=position,
            writes=self.read_model.new_writes(self.name, slot),
            events=0 if stop else 1,
            event_time=None if stop else event.recorded_at,
            dead_letters=[letter],
        )
        await self.read_model.commit(self.name, slot, batch, require_active=live)
        log.error(
            "projection %s: event %s parked: %s",
            self.name,
            event.position,
            error,
            extra=_about(self.name, event),
        )
        if stop:
            raise ProjectionStoppedError(self.name, str(error), event.position)
        await self.source.acknowledge(position)
        return position


def _now() -> datetime:
    return datetime.now(UTC)


def _about(projection: str, event: RecordedEvent) -> dict[str, object]:
    """The fields a structured log line of an event carries (see ``--log-format json``)."""
    return {
        "projection": projection,
        "position": str(event.position),
        "stream_id": event.stream_id,
        "event_id": str(event.event_id),
        "event_type": event.type,
        "correlation_id": event.metadata.get("correlation_id") if event.metadata else None,
    }
