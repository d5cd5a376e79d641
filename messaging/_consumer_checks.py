"""Checks of what a consumer is built from, run before anything is read.

Each of these would otherwise fail late or not at all: ``consume`` restarts a
member that fails (an outage must not end it), so a group id librdkafka refuses
became an endless "failed; restarting" loop; a topic list given as one
string was read as one topic per character; an empty list subscribed to nothing
and waited forever; a handler that is a plain ``def`` failed on every message
and sent each one to the dead-letter topic.  All raise ``MessagingConfigError``
(a ``ValueError``) naming the consumer and the value.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from eventstore import EventCodec

from ._errors import MessagingConfigError, TopicMappingError
from ._routing import base_topic
from ._topics import check_topic


def check_group(group: object, what: str = "consumer group") -> str:
    """``group`` if it can be a consumer group id (a printable, non-blank string)."""
    # librdkafka refuses an empty group.id only when the member starts, inside the
    # restart loop; blanks and control characters are typos (an unset variable).
    if not isinstance(group, str) or not group.strip() or not group.isprintable():
        raise MessagingConfigError(
            f"{what} {group!r}", "a group id is a non-blank string of printable characters"
        )
    return group


def check_topics(topics: object, subject: str, *, side_topics: bool = False) -> list[str]:
    """``topics`` as a list: a non-empty sequence of distinct Kafka topic names, none of
    them (unless ``side_topics``) a retry or dead-letter topic: ``consume`` reads and
    writes those itself."""
    if isinstance(topics, str | bytes) or not isinstance(topics, Sequence):
        raise MessagingConfigError(subject, f"topics must be a list of topic names, not {topics!r}")
    if not topics:
        raise MessagingConfigError(subject, "topics is empty: name at least one topic")
    checked: list[str] = []
    for topic in topics:
        try:
            check_topic(topic, subject)
        except TopicMappingError as error:
            raise MessagingConfigError(subject, f"topics: {error.reason}") from None
        if topic in checked:
            raise MessagingConfigError(subject, f"topic {topic!r} is listed twice")
        if not side_topics and (base_topic(topic)[1] or topic.endswith(".dlq")):
            raise MessagingConfigError(
                subject,
                f"{topic!r} is a retry or dead-letter topic: name the original topic "
                "(its retry topics are read with it; replay a DLQ with replay_dead_letters)",
            )
        checked.append(topic)
    return checked


def check_handler(handler: object, subject: str) -> None:
    """An ``async def handle(event, context)``, or an object whose call is one."""
    if not callable(handler):
        raise MessagingConfigError(subject, f"the handler must be callable, not {handler!r}")
    if inspect.iscoroutinefunction(handler):  # also sees through functools.partial
        return
    if inspect.isfunction(handler) or inspect.ismethod(handler):
        call: object = handler
    else:  # an object: its class's __call__ (other callables are given the benefit)
        call = getattr(type(handler), "__call__", None)  # noqa: B004
        if not inspect.isfunction(call) or inspect.iscoroutinefunction(call):
            return
    # A plain def would fail on every message and send each one to the DLQ.
    name = getattr(call, "__qualname__", repr(call))
    raise MessagingConfigError(
        subject, f"the handler {name} must be an async def (it is awaited per message)"
    )


def check_codec(codec: object, name: str, subject: str) -> None:
    if not isinstance(codec, EventCodec):
        raise MessagingConfigError(subject, f"{name} must be an EventCodec, not {codec!r}")


def check_instance(value: object, kind: type[Any], name: str, subject: str) -> None:
    if not isinstance(value, kind):
        raise MessagingConfigError(subject, f"{name} must be a {kind.__name__}, not {value!r}")


def check_processor(processor: object, subject: str) -> None:
    """What the group loop calls: ``name`` and the three processor methods."""
    methods = ("starting_offsets", "revoked", "process")
    if not isinstance(getattr(processor, "name", None), str) or not all(
        callable(getattr(processor, method, None)) for method in methods
    ):
        raise MessagingConfigError(
            subject,
            f"{processor!r} is not a consumer processor: a KafkaProjection, a "
            "HandlerConsumer, or an object with a str name and the methods "
            "starting_offsets, revoked and process",
        )


def check_consumer(group: str, topics: Sequence[str], *, side_topics: bool = False) -> list[str]:
    """What ``consume`` checks of its group and topics, for a caller that wants the
    error before it starts anything else (the CLI): the topics as a list, or
    ``MessagingConfigError``.  ``side_topics``: retry and dead-letter topics may be
    listed (a lag query)."""
    return check_topics(topics, f"consumer group {check_group(group)!r}", side_topics=side_topics)
