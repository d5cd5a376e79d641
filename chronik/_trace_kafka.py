"""The Kafka hops ``chronik trace`` can derive from chronik's own tables.

A relay's checkpoint row says how far it has published the feed; an event at or
before it went to Kafka, to the topic the relay's mapping names.  Nothing else is
derived: partition and offset are the broker's, and are not stored by chronik.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eventstore import Position, PostgresEventStore, RecordedEvent

#: The ``chronik relay --topic-prefix`` default.
DEFAULT_PREFIX = "chronik."


@dataclass(frozen=True, slots=True)
class RelayMark:
    """How far one relay has published the event feed."""

    name: str
    mode: str
    checkpoint: Position


async def relay_checkpoints(store: Any) -> list[RelayMark]:
    """Every relay's checkpoint in the store's schema ([] without Kafka support, for a
    store that is not PostgreSQL, or when no relay ever ran)."""
    if not isinstance(store, PostgresEventStore):
        return []
    try:
        import messaging
    except ImportError:
        return []  # confluent-kafka is an extra: without it nothing was relayed from here
    return [
        RelayMark(found.name, found.mode, found.checkpoint)
        for found in await messaging.relay_status(store)
    ]


def topic_prefixes(given: Sequence[str]) -> dict[str | None, str]:
    """``--topic-prefix [RELAY=]PREFIX`` values by relay name (``None``: any other relay)."""
    prefixes: dict[str | None, str] = {None: DEFAULT_PREFIX}
    for text in given:
        relay, equals, prefix = text.rpartition("=")
        prefixes[relay if equals and relay else None] = prefix
    return prefixes


def kafka_hops(
    event: RecordedEvent, relays: list[RelayMark], prefixes: Mapping[str | None, str]
) -> list[dict[str, Any]]:
    """One entry per relay that has published ``event``: the relay and the topic."""
    hops: list[dict[str, Any]] = []
    for relay in relays:
        if relay.checkpoint < event.position:
            continue
        prefix = prefixes.get(relay.name, prefixes[None])
        hops.append({"relay": relay.name, "mode": relay.mode, "topic": _topic(event, prefix)})
    return hops


def _topic(event: RecordedEvent, prefix: str) -> str | None:
    import messaging

    try:
        return str(messaging.TopicMapping(prefix=prefix).topic_for(event))
    except messaging.TopicMappingError:
        return None  # a stream without a '<type>-' prefix: the relay needs a default topic
