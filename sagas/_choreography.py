"""Running choreography reactions: every command of one reaction in one transaction.

A reaction's handler issues commands as it goes (each loaded and decided at once,
so it can answer a refusal with another command).  Nothing is written until the
handler returns; then one transaction marks the event handled for this reaction
and appends what every issued command recorded, with ids derived from the event,
the reaction and the order of issue.  A redelivered or replayed event finds its
mark taken and the transaction is rolled back: nothing acts twice.

A handler that raises is tried again a few times with a growing pause (``react``);
then the event is parked for this reaction (see ``_parked``) and the runner goes
on.  Only errors that say the database is away are not counted: they restart the
runner from its checkpoint, as for sagas, for as long as the outage lasts.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aggregates import Aggregate, Repository
from eventstore import ConcurrencyError, EventCodec, PostgresEventStore, RecordedEvent

from ._definition import SAGA_NAMESPACE, Command, Reaction
from ._parked import ParkedReactions, parked_id
from ._tables import SagaTables

log = logging.getLogger("chronik.sagas")

_MAX_CONFLICTS = 50


class _Handled(Exception):
    """The event was handled before: roll the transaction back."""


async def run_reaction(
    reaction: Reaction,
    envelope: RecordedEvent,
    codec: EventCodec,
    repository: Repository,
    tables: SagaTables,
) -> bool:
    """Handle ``envelope`` once; False when it had been handled before."""
    store = repository.store
    assert isinstance(store, PostgresEventStore)
    current = codec.upcast(envelope)
    event = codec.decode(current)
    conflicts = 0
    while True:
        issued: dict[tuple[type[Any], str], Aggregate[Any]] = {}

        async def issue(command: Command[Any], issued: dict[Any, Any] = issued) -> Any:
            key = (command.aggregate_type, command.aggregate_id)
            target = issued.get(key)
            if target is None:
                target = await repository.load(command.aggregate_type, command.aggregate_id)
                issued[key] = target
            command.decide(target)
            return target

        if await tables.is_handled(reaction.name, envelope.event_id):
            return False  # the usual redelivery: not even decided again
        try:
            await reaction.handle(event, current, issue)
        except Exception:
            # Decided on state this very event already changed (handled meanwhile by
            # another runner): the refusal is about a repeat, not news.
            if await tables.is_handled(reaction.name, envelope.event_id):
                return False
            raise
        try:
            async with store.connection() as connection, connection.transaction():
                if not await tables.mark_handled(connection, reaction.name, envelope.event_id):
                    raise _Handled
                await ParkedReactions(tables).unpark(connection, reaction.name, envelope.event_id)
                for number, target in enumerate(issued.values()):
                    count = len(target.pending_events)
                    if not count:
                        continue
                    base = uuid.uuid5(
                        SAGA_NAMESPACE, f"reaction:{reaction.name}:{envelope.event_id}"
                    )
                    ids = [uuid.uuid5(base, f"{number}:{n}") for n in range(count)]
                    await repository.save(target, connection=connection, event_ids=ids)
        except _Handled:
            return False
        except ConcurrencyError:
            conflicts += 1
            if conflicts > _MAX_CONFLICTS:
                raise
            continue
        return True


@dataclass(frozen=True, slots=True)
class ReactionRetry:
    """How often a failing reaction is tried on one event before it is parked."""

    attempts: int = 5
    #: The pause after the first failure; it doubles up to ``max_backoff``.
    backoff: float = 0.5
    max_backoff: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff < 0 or self.max_backoff < self.backoff:
            raise ValueError("attempts must be >= 1 and 0 <= backoff <= max_backoff")


#: Waits ``seconds``; True when the runner is asked to stop meanwhile.
Pause = Callable[[float], Awaitable[bool]]


class StopRequested(Exception):
    """The runner was stopped while a reaction waited to try again: nothing is
    parked or checkpointed, the event is read again at the next start."""


async def _sleep(seconds: float) -> bool:
    await asyncio.sleep(seconds)
    return False


async def react(
    reaction: Reaction,
    envelope: RecordedEvent,
    codec: EventCodec,
    repository: Repository,
    tables: SagaTables,
    policy: ReactionRetry,
    transient: tuple[type[BaseException], ...],
    pause: Pause = _sleep,
) -> bool | None:
    """``run_reaction`` with retries: True handled, False handled before, None parked."""
    delay = policy.backoff
    failure: Exception | None = None
    for attempt in range(1, policy.attempts + 1):
        try:
            return await run_reaction(reaction, envelope, codec, repository, tables)
        except transient:
            raise  # the database is away: the runner restarts, nothing is counted
        except Exception as error:
            failure = error
        if attempt == policy.attempts:
            break
        log.warning(
            "reaction %s: event %s on %s failed (attempt %d of %d, %s: %s); again in %.2fs",
            reaction.name,
            envelope.event_id,
            envelope.stream_id,
            attempt,
            policy.attempts,
            type(failure).__name__,
            failure,
            delay,
        )
        if await pause(delay):
            raise StopRequested
        delay = min(delay * 2, policy.max_backoff)
    assert failure is not None
    error_text = f"{type(failure).__name__}: {failure}"
    parked = ParkedReactions(tables)
    await parked.park(reaction.name, envelope, error_text, policy.attempts)
    log.error(
        "reaction %s: parked event %s (%s, stream %s version %d) after %d attempts: %s; "
        "fix the cause, then 'chronik sagas retry %s'",
        reaction.name,
        envelope.event_id,
        envelope.type,
        envelope.stream_id,
        envelope.version,
        policy.attempts,
        error_text,
        parked_id(reaction.name, envelope.event_id),
        exc_info=failure,
    )
    return None
