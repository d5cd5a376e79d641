"""Where a message goes when handling it keeps failing: retry topics, then the DLQ.

A message that still fails after its in-place retries is not allowed to block its
partition: it is copied to ``<topic>.retry.1`` (then ``.retry.2``, ...), which the
same consumer group reads after a growing delay, and after the last retry topic
to ``<topic>.dlq``.  Each copy keeps the original key, value and headers, and adds
the attempt count, the first topic/partition/offset, the error type and message
and, for a retry topic, the time before which it must not be retried.  The copy is
confirmed by the broker before the consumer moves past the original, so nothing
is dropped between the two.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import confluent_kafka

from eventstore import trace_span

from ._inbound import (
    ATTEMPTS,
    ERROR_MESSAGE,
    ERROR_TYPE,
    NOT_BEFORE,
    ORIGINAL_OFFSET,
    ORIGINAL_PARTITION,
    ORIGINAL_TOPIC,
    SOURCE_GROUP,
    Headers,
    Origin,
    trace_headers,
)
from ._numbers import check_count, check_seconds

_RETRY = re.compile(r"^(?P<base>.+)\.retry\.(?P<n>[1-9][0-9]*)$")
#: Error messages are cut to this many characters in headers.
MAX_ERROR_TEXT = 2000


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """Retries in place (with backoff), then retry topics, then the dead-letter topic."""

    attempts: int = 3
    initial_delay: float = 0.05
    max_delay: float = 2.0
    #: How many ``<topic>.retry.<n>`` topics a message passes through before the DLQ.
    retry_topics: int = 2
    #: Seconds a message waits in retry topic n: ``retry_delay * 2 ** (n - 1)``.
    retry_delay: float = 1.0

    def __post_init__(self) -> None:
        # Checked here rather than at first failure: a NaN delay makes every
        # comparison false (min() then returns whichever came first) and an infinite
        # one parks a message forever, both only visible when a handler fails.
        for name, least in (("attempts", 1), ("retry_topics", 0)):
            check_count(getattr(self, name), name, "delivery policy", least)
        for name in ("initial_delay", "max_delay", "retry_delay"):
            check_seconds(getattr(self, name), name, "delivery policy", zero_ok=True)

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt in place."""
        return float(min(self.max_delay, self.initial_delay * 2 ** (failures - 1)))

    def topics_for(self, topics: Sequence[str]) -> list[str]:
        """The retry topics a group reading ``topics`` also reads."""
        return [retry_topic(t, n) for t in topics for n in range(1, self.retry_topics + 1)]


def retry_topic(topic: str, n: int) -> str:
    return f"{topic}.retry.{n}"


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def base_topic(topic: str) -> tuple[str, int]:
    """The topic a (retry) topic belongs to, and its retry level (0: the topic itself)."""
    match = _RETRY.match(topic)
    if match is None:
        return topic, 0
    return match.group("base"), int(match.group("n"))


def next_hop(topic: str, policy: DeliveryPolicy) -> tuple[str, bool]:
    """Where a message that failed on ``topic`` goes next, and whether that is the DLQ."""
    base, level = base_topic(topic)
    if level < policy.retry_topics:
        return retry_topic(base, level + 1), False
    return dlq_topic(base), True


def failure_headers(
    headers: Headers,
    origin: Origin,
    error: BaseException,
    attempts: int,
    group: str,
    not_before: float | None,
) -> list[tuple[str, str | bytes | None]]:
    """The original headers minus older bookkeeping, plus this failure's."""
    ours = {
        ATTEMPTS,
        ORIGINAL_TOPIC,
        ORIGINAL_PARTITION,
        ORIGINAL_OFFSET,
        ERROR_TYPE,
        ERROR_MESSAGE,
        NOT_BEFORE,
        SOURCE_GROUP,
    }
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    kept: list[tuple[str, str | bytes | None]] = [
        (name, value) for name, value in pairs if name not in ours and value is not None
    ]
    added = {
        ATTEMPTS: str(attempts),
        ORIGINAL_TOPIC: origin.topic,
        ORIGINAL_PARTITION: str(origin.partition),
        ORIGINAL_OFFSET: str(origin.offset),
        ERROR_TYPE: f"{type(error).__module__}.{type(error).__qualname__}",
        ERROR_MESSAGE: str(error)[:MAX_ERROR_TEXT],
        SOURCE_GROUP: group,
    }
    if not_before is not None:
        added[NOT_BEFORE] = f"{not_before:.3f}"
    return kept + [(name, text.encode()) for name, text in added.items()]


class Router:
    """Sends failed messages on to their retry or dead-letter topic, confirmed."""

    def __init__(self, producer: confluent_kafka.Producer, policy: DeliveryPolicy, group: str):
        self.producer = producer
        self.policy = policy
        self.group = group
        self.sent = 0

    async def send(
        self,
        message: confluent_kafka.Message,
        origin: Origin,
        error: BaseException,
        attempts: int,
        *,
        dead: bool = False,
    ) -> str:
        """Copy ``message`` to its next topic (the DLQ when ``dead``); returns the topic.

        In a span (``chronik.consume.dead_letter`` or ``chronik.consume.retry``, in the
        message's trace) that ends once the broker confirmed the copy: the metrics
        count dead letters there, per group and original topic.
        """
        topic = message.topic() or ""
        original = base_topic(topic)[0]
        target, is_dlq = (dlq_topic(original), True) if dead else next_hop(topic, self.policy)
        with trace_span(
            "chronik.consume.dead_letter" if is_dlq else "chronik.consume.retry",
            {"chronik.consumer": self.group, "chronik.topic": original, "chronik.to": target},
            parents=trace_headers((message,)),
        ):
            await self._send(message, origin, error, attempts, target, is_dlq)
        self.sent += 1
        return target

    async def _send(
        self,
        message: confluent_kafka.Message,
        origin: Origin,
        error: BaseException,
        attempts: int,
        target: str,
        is_dlq: bool,
    ) -> None:
        not_before = None
        if not is_dlq:
            level = base_topic(target)[1]
            not_before = time.time() + self.policy.retry_delay * 2 ** (level - 1)
        headers = failure_headers(
            message.headers(), origin, error, origin.attempts + attempts, self.group, not_before
        )
        await produce_confirmed(self.producer, target, message.key(), message.value(), headers)


async def produce_confirmed(
    producer: confluent_kafka.Producer,
    topic: str,
    key: bytes | str | None,
    value: bytes | str | None,
    headers: list[tuple[str, str | bytes | None]],
    partition: int = -1,
) -> None:
    """Produce one message and wait for the broker's acknowledgement (raise on failure)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def report(error: confluent_kafka.KafkaError | None, _: confluent_kafka.Message) -> None:
        def settle() -> None:
            if done.done():
                return
            if error is not None:
                done.set_exception(confluent_kafka.KafkaException(error))
            else:
                done.set_result(None)

        loop.call_soon_threadsafe(settle)

    producer.produce(
        topic, value=value, key=key, headers=headers, partition=partition, on_delivery=report
    )
    while not done.done():
        await asyncio.to_thread(producer.poll, 0.1)
    await done
