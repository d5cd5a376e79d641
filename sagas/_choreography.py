"""Running choreography reactions: every command of one reaction in one transaction.

A reaction's handler issues commands as it goes (each loaded and decided at once,
so it can answer a refusal with another command).  Nothing is written until the
handler returns; then one transaction marks the event handled for this reaction
and appends what every issued command recorded, with ids derived from the event,
the reaction and the order of issue.  A redelivered or replayed event finds its
mark taken and the transaction is rolled back: nothing acts twice.
"""

from __future__ import annotations

import uuid
from typing import Any

from aggregates import Aggregate, Repository
from eventstore import ConcurrencyError, EventCodec, PostgresEventStore, RecordedEvent

from ._definition import SAGA_NAMESPACE, Command, Reaction
from ._tables import SagaTables

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
