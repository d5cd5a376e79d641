"""Plain handlers: ``async def handle(event, context)`` for work that is not a projection.

Sending an email or calling a service has no read model to keep offsets in, so a
handler consumer is at-least-once: the group's offsets are committed only after
the handler returned, and a crash redelivers what was in flight.  The handler
gets the typed event at its current schema version and a ``HandlerContext`` with
the envelope, where the message came from, and the correlation/causation ids and
trace context the event was recorded with.  Pair it with ``PostgresIdempotency``
(``idempotent(...)``) to act once per event id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import confluent_kafka

from eventstore import Event, EventCodec, RecordedEvent, caused_by, trace_span

from ._apply import Failure, decode_message, origin_of_message, typed, with_retries
from ._consume_errors import ConsumerError
from ._consumer_checks import check_codec, check_group, check_handler, check_instance
from ._inbound import Origin
from ._routing import DeliveryPolicy, Router

log = logging.getLogger("chronik.messaging")

Partition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What a handler knows about the event besides its data."""

    envelope: RecordedEvent
    group: str
    topic: str
    partition: int
    offset: int
    #: 1 for the first try; counts retries in place and through retry topics.
    attempt: int
    origin: Origin
    #: A connection in an open transaction when the handler runs under ``idempotent``.
    connection: Any = None

    @property
    def correlation_id(self) -> str | None:
        return self.envelope.metadata.get("correlation_id")

    @property
    def causation_id(self) -> str | None:
        return self.envelope.metadata.get("causation_id")

    @property
    def traceparent(self) -> str | None:
        return self.envelope.metadata.get("traceparent")


EventHandler = Callable[[Event, HandlerContext], Awaitable[None]]


class HandlerConsumer:
    """A consumer-group processor that runs ``handler`` once per message, in order."""

    def __init__(
        self,
        name: str,
        handler: EventHandler,
        codec: EventCodec,
        *,
        policy: DeliveryPolicy | None = None,
        router: Router | None = None,
    ) -> None:
        subject = f"handler consumer {check_group(name, 'handler consumer')!r}"
        check_handler(handler, subject)
        check_codec(codec, "codec", subject)
        if policy is not None:
            check_instance(policy, DeliveryPolicy, "policy", subject)
        self.name = name
        self.handler = handler
        self.codec = codec
        self.policy = policy or DeliveryPolicy()
        self.router = router
        self.handled = 0

    async def starting_offsets(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        return {}  # the group's committed offsets

    async def revoked(self, partitions: Sequence[Partition]) -> None:
        return None

    async def process(self, messages: Sequence[confluent_kafka.Message]) -> None:
        for message in messages:
            origin = origin_of_message(message)

            async def work(
                attempt: int, message: confluent_kafka.Message = message, origin: Origin = origin
            ) -> None:
                inbound = decode_message(message)
                event, envelope = typed(self.codec, inbound)
                context = HandlerContext(
                    envelope,
                    self.name,
                    inbound.topic,
                    inbound.partition,
                    inbound.offset,
                    origin.attempts + attempt,
                    origin,
                )
                # What the handler appends is caused by this event and keeps its
                # correlation; its span continues the trace the message carries.
                with (
                    caused_by(envelope),
                    trace_span(
                        "chronik.consume",
                        {"chronik.consumer": self.name, "chronik.topic": inbound.topic},
                        parents=(envelope.metadata,),
                    ),
                ):
                    await self.handler(event, context)

            failure = await with_retries(work, message, origin, self.policy)
            if failure is not None:
                await self._send(failure)
            else:
                self.handled += 1

    async def _send(self, failure: Failure) -> None:
        if self.router is None:
            raise ConsumerError(self.name, f"a message failed with no producer: {failure.error}")
        target = await self.router.send(
            failure.message, failure.origin, failure.error, failure.attempts, dead=failure.dead
        )
        log.error(
            "consumer %s: message %s[%s]@%s sent to %s: %s",
            self.name,
            failure.message.topic(),
            failure.message.partition(),
            failure.message.offset(),
            target,
            failure.error,
        )
