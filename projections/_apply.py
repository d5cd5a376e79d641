"""Running a batch of events through a projection's handlers (no I/O of its own).

Each event is upcast and decoded through the projection's codec, then handed to
its handler, which queues writes.  A failure (a handler error, an unknown type, a
failed upcast, data that does not validate) takes back the event's queued writes
and is retried with backoff; after the last attempt the event is parked as a
dead letter and the batch goes on, or, for a projection set to stop, the batch
ends just before it.  Nothing is ever skipped without a dead letter.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from eventstore import Position, RecordedEvent

from ._dead_letters import DeadLetter, new_dead_letter
from ._projection import PoisonPolicy, Projection
from ._writes import Writes

log = logging.getLogger("chronik.projections")

W = TypeVar("W", bound=Writes)
Sleep = Callable[[float], Awaitable[Any]]


@dataclass(slots=True)
class AppliedBatch(Generic[W]):
    """The outcome of one batch, ready to commit."""

    writes: W
    position: Position
    events: int = 0
    event_time: datetime | None = None
    dead_letters: list[DeadLetter] = field(default_factory=list)
    resolved: list[Position] = field(default_factory=list)
    #: Set when a stop-policy projection met a poison event (not part of the batch).
    stopped: DeadLetter | None = None


async def apply_event(projection: Projection[W], event: RecordedEvent, writes: W) -> None:
    """Decode ``event`` and run its handler (if the projection handles its type)."""
    codec = projection.codec
    current = codec.upcast(event)
    bound = projection.handler(current.type)
    if bound is None:
        return
    typed = codec.decode(current)
    result = bound.function(typed, current, writes)
    # Most handlers are plain functions returning None: skip the awaitable check.
    if bound.is_async or (result is not None and inspect.isawaitable(result)):
        await result


async def apply_with_retries(
    projection: Projection[W],
    event: RecordedEvent,
    writes: W,
    index: int,
    *,
    sleep: Sleep = asyncio.sleep,
) -> tuple[BaseException, str, int] | None:
    """Apply one event, retrying; None on success, else (error, traceback, attempts)."""
    policy = projection.retry
    failures = 0
    while True:
        mark = writes.begin_event(index, event.position)
        try:
            await apply_event(projection, event, writes)
            return None
        except Exception as error:
            # Any error of the handler or the codec: retried, then parked, never lost.
            writes.rollback(mark)
            failures += 1
            trace = traceback.format_exc()
            log.warning(
                "projection %s: event %s (%s at %s v%d) failed, attempt %d of %d: %s",
                projection.name,
                event.position,
                event.type,
                event.stream_id,
                event.version,
                failures,
                policy.attempts,
                error,
            )
            if failures >= policy.attempts:
                return error, trace, failures
            await sleep(policy.delay(failures))


async def apply_batch(
    projection: Projection[W],
    slot: str,
    writes: W,
    events: Sequence[RecordedEvent],
    previous: Position,
    *,
    blocking: set[Position] | frozenset[Position] = frozenset(),
    sleep: Sleep = asyncio.sleep,
) -> AppliedBatch[W]:
    """Run ``events`` (after checkpoint ``previous``) through the projection."""
    batch = AppliedBatch(writes, previous)
    for index, event in enumerate(events):
        failure = await apply_with_retries(projection, event, writes, index, sleep=sleep)
        if failure is not None:
            error, trace, attempts = failure
            stop = projection.on_poison is PoisonPolicy.STOP
            letter = new_dead_letter(
                projection.name,
                slot,
                event,
                error,
                trace,
                attempts,
                datetime.now(UTC),
                blocking=stop,
                checkpoint_before=batch.position if stop else None,
            )
            log.error(
                "projection %s: event %s (%s at %s v%d) parked after %d attempts%s: %s",
                projection.name,
                event.position,
                event.type,
                event.stream_id,
                event.version,
                attempts,
                "; the projection stops" if stop else "",
                error,
            )
            if stop:
                batch.stopped = letter
                return batch
            batch.dead_letters.append(letter)
        elif event.position in blocking:
            batch.resolved.append(event.position)
        batch.position = event.position
        batch.event_time = event.recorded_at
        batch.events += 1
    return batch
