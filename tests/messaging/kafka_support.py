"""Kafka in the consumer tests: fresh topics and events published as the relay does
(its CloudEvents encoder; key = stream id), without running a relay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence

import confluent_kafka

from eventstore import RecordedEvent
from messaging import CloudEventMode, encode_event, partition_offsets
from projections import RedisReadModel

#: A hang guard, not a timing assertion.
DEADLINE = 90.0

#: Partitions of a topic the mock cluster creates on first use (it has no CreateTopics).
PARTITIONS = 4


def fresh_topic(prefix: str = "t") -> str:
    """A new topic name; the topic is created (``PARTITIONS`` partitions) by ``publish``."""
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


def publish(
    bootstrap: str,
    topic: str,
    events: Iterable[RecordedEvent],
    *,
    raw: Sequence[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = (),
    mode: CloudEventMode = CloudEventMode.BINARY,
) -> int:
    """Produce ``events`` (key = stream id) and ``raw`` (key, value, headers) messages."""
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    count = 0
    for event in events:
        record = encode_event(event, topic, "chronik/tests", mode)
        producer.produce(topic, key=record.key, value=record.value, headers=record.headers)
        count += 1
        if count % 10000 == 0:
            producer.poll(0)
    for key, value, headers in raw:
        producer.produce(topic, key=key, value=value, headers=headers)
        count += 1
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} messages not delivered"
    return count


async def applied(read_model: RedisReadModel, name: str) -> int:
    """Messages a Kafka-fed projection has applied: the sum of its next offsets."""
    return sum((await partition_offsets(read_model, name)).values())


async def until_applied(read_model: RedisReadModel, name: str, at_least: int) -> None:
    """Wait (on the condition, with a hang guard) until ``at_least`` are applied."""
    async with asyncio.timeout(DEADLINE):
        while await applied(read_model, name) < at_least:  # noqa: ASYNC110 (no event to await)
            await asyncio.sleep(0.01)
