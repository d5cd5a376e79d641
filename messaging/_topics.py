"""Which topic an event goes to: per aggregate type by default.

A stream id is ``<aggregate type>-<id>`` (``ledger-alice``), so by default an
event of ``ledger-alice`` goes to ``chronik.ledger``.  ``TopicMapping`` takes a
prefix, an explicit mapping from aggregate type to topic, or a function of the
event; every topic it gives is checked against Kafka's naming rules before
anything is sent, so a bad mapping fails naming the event, not inside the broker.

Outbox messages follow Debezium's outbox event router: topic
``outbox.event.<aggregatetype>`` unless the row names a topic itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from eventstore import RecordedEvent

from ._errors import TopicMappingError

_LEGAL = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
DEFAULT_PREFIX = "chronik."
OUTBOX_PREFIX = "outbox.event."


def check_topic(topic: object, subject: str) -> str:
    """``topic`` if Kafka accepts it as a topic name, else ``TopicMappingError``."""
    if not isinstance(topic, str) or not _LEGAL.match(topic) or topic in (".", ".."):
        raise TopicMappingError(
            subject,
            f"{topic!r} is not a Kafka topic name (1-249 of letters, digits, '.', '_', '-')",
        )
    return topic


def aggregate_type(stream_id: str) -> str | None:
    """The aggregate type of a stream id (the part before the first '-'), if any."""
    head, dash, _ = stream_id.partition("-")
    return head if dash and head else None


class TopicMapping:
    """Event -> topic: ``function`` if given, else ``mapping`` by aggregate type, else
    ``prefix + aggregate type``; ``default`` catches streams without a type."""

    def __init__(
        self,
        *,
        prefix: str = DEFAULT_PREFIX,
        mapping: Mapping[str, str] | None = None,
        function: Callable[[RecordedEvent], str] | None = None,
        default: str | None = None,
        outbox_prefix: str = OUTBOX_PREFIX,
    ) -> None:
        self.prefix = prefix
        self.mapping = dict(mapping or {})
        self.function = function
        self.default = default
        self.outbox_prefix = outbox_prefix
        # A prefix Kafka rejects would otherwise fail on every event, one at a time.
        for role, value in (("prefix", prefix), ("outbox_prefix", outbox_prefix)):
            if not isinstance(value, str):
                raise TopicMappingError(f"the topic {role}", f"{value!r} is not a string")
            check_topic(value + "x", f"the topic {role} {value!r}")
        if function is not None and not callable(function):
            raise TopicMappingError("the topic function", f"{function!r} is not callable")
        for kind, topic in self.mapping.items():
            check_topic(topic, f"aggregate type {kind!r} (in the topic mapping)")
        if default is not None:
            check_topic(default, "the default topic")
        self._by_type: dict[str | None, str] = {}

    def topic_for(self, event: RecordedEvent) -> str:
        if self.function is not None:
            return check_topic(self.function(event), _describe(event))
        return self.topic_for_stream(event.stream_id, lambda: _describe(event))

    def topic_for_stream(self, stream_id: str, subject: Callable[[], str]) -> str:
        """The topic by aggregate type (not for a ``function`` mapping, which needs the
        event); ``subject()`` names the event in errors."""
        kind = aggregate_type(stream_id)
        found = self._by_type.get(kind)
        if found is not None:
            return found
        if kind is not None and kind in self.mapping:
            topic = self.mapping[kind]
        elif kind is not None:
            topic = check_topic(self.prefix + kind, subject())
        elif self.default is not None:
            topic = self.default
        else:
            raise TopicMappingError(
                subject(),
                f"stream {stream_id!r} has no '<type>-' prefix and no default topic is set",
            )
        self._by_type[kind] = topic
        return topic

    def outbox_topic(self, aggregatetype: str, explicit: str | None, message_id: str) -> str:
        subject = f"outbox message {message_id}"
        if explicit:
            return check_topic(explicit, subject)
        return check_topic(self.outbox_prefix + aggregatetype, subject)


def _describe(event: RecordedEvent) -> str:
    return f"event {event.event_id} ({event.type}, {event.stream_id}@{event.version})"
