"""Turning one Kafka message into a handled event: decode, upcast, retry in place.

Shared by the projection and the handler consumers.  The outcome says what the
consumer does with the message: done, or send it on (to a retry topic, or
straight to the dead-letter topic for input no retry can fix: not a CloudEvent,
bad JSON, an unknown type, an upcaster chain that does not reach the current
version, data that does not validate).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import confluent_kafka

from eventstore import Event, EventCodec, EventCodecError, RecordedEvent

from ._consume_errors import BadMessageError
from ._inbound import Inbound, Origin, decode, header_map, origin_of
from ._routing import DeliveryPolicy

log = logging.getLogger("chronik.messaging")

Sleep = Callable[[float], Awaitable[object]]


@dataclass(slots=True)
class Failure:
    """A message that must go on to a retry topic (or, ``dead``, to the DLQ)."""

    message: confluent_kafka.Message
    origin: Origin
    error: BaseException
    attempts: int
    dead: bool


def decode_message(message: confluent_kafka.Message) -> Inbound:
    kind, stamp = message.timestamp()
    return decode(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        message.key(),
        message.value(),
        message.headers(),
        stamp if kind else None,
    )


def origin_of_message(message: confluent_kafka.Message) -> Origin:
    return origin_of(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        header_map(message.headers()),
    )


def is_copy(message: confluent_kafka.Message, origin: Origin) -> bool:
    """Whether ``message`` is a copy of one first seen elsewhere (a retry, a replay)."""
    return (origin.topic, origin.partition, origin.offset) != (
        message.topic(),
        message.partition(),
        message.offset(),
    )


def typed(codec: EventCodec, inbound: Inbound) -> tuple[Event, RecordedEvent]:
    """The current-version typed event and its upcast envelope (codec errors raised)."""
    current = codec.upcast(inbound.event)
    # decode raises UnknownEventTypeError for a type the app has no class for.
    return codec.decode(current), current


async def with_retries(
    work: Callable[[int], Awaitable[None]],
    message: confluent_kafka.Message,
    origin: Origin,
    policy: DeliveryPolicy,
    *,
    on_failure: Callable[[], None] = lambda: None,
    sleep: Sleep = asyncio.sleep,
    first_error: Exception | None = None,
) -> Failure | None:
    """Run ``work(attempt)`` up to ``policy.attempts`` times with backoff; the failure if all fail.

    Codec errors and undecodable input are not retried: they go to the DLQ at once.
    ``first_error``: the caller ran the first attempt itself (the hot path, without
    a coroutine per message) and it failed with this; the retries go on from there.
    """
    failures = 0
    error = first_error
    while True:
        if error is None:
            try:
                await work(failures + 1)
                return None
            except Exception as caught:
                error = caught
        on_failure()
        if isinstance(error, BadMessageError | EventCodecError):
            log.error("message %s: %s; to the dead-letter topic", _where(message), error)
            return Failure(message, origin, error, 1, dead=True)
        # Any error of the handler: retried, then sent on, never dropped.
        failures += 1
        log.warning(
            "message %s failed, attempt %d of %d: %s",
            _where(message),
            failures,
            policy.attempts,
            error,
        )
        if failures >= policy.attempts:
            return Failure(message, origin, error, failures, dead=False)
        await sleep(policy.backoff(failures))
        error = None


def _where(message: confluent_kafka.Message) -> str:
    return f"{message.topic()}[{message.partition()}]@{message.offset()}"
