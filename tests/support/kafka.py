"""Kafka for tests: the broker address, and reading topics back to the end.

``KAFKA_BOOTSTRAP_SERVERS`` selects a real broker; without it the session runs
on librdkafka's mock cluster (``messaging.MockCluster``).  ``consume`` reads
topics from the beginning up to their end at the time of the call, so a test
checks what is there without waiting on time.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from messaging import RelayOptions, TopicMapping

REAL_BROKER = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None


@dataclass(frozen=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode()
        return None


def consume(
    bootstrap: str,
    topics: list[str],
    *,
    isolation: str = "read_uncommitted",
    timeout: float = 30.0,
) -> list[Consumed]:
    """Every message now in ``topics`` (all partitions), in partition order."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            # The end of a partition is signalled, not inferred from offsets: in
            # transactional topics the last offsets are commit markers, which a
            # consumer never receives as messages.
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=timeout)
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:
            if topic not in metadata.topics:
                continue
            for partition in metadata.topics[topic].partitions:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout
                )
                if high > 0:
                    ends[(topic, partition)] = high
        if not ends:
            return []
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in ends])
        found: list[Consumed] = []
        done: set[tuple[str, int]] = set()
        while len(done) < len(ends):
            message: Any = consumer.poll(timeout)
            assert message is not None, f"no message within {timeout} s; still open: {ends}"
            place = (message.topic(), message.partition())
            error = message.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                done.add(place)
                continue
            found.append(
                Consumed(
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    message.key(),
                    message.value(),
                    list(message.headers() or []),
                )
            )
        return found
    finally:
        consumer.close()


def topic_names(bootstrap: str, prefix: str) -> list[str]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-metadata"})
    try:
        return sorted(t for t in consumer.list_topics(timeout=30).topics if t.startswith(prefix))
    finally:
        consumer.close()


def relay_options(prefix: str, **overrides: object) -> RelayOptions:
    settings: dict[str, object] = {
        "name": "test",
        "topics": TopicMapping(prefix=prefix, outbox_prefix=prefix + "outbox."),
        "create_checkpoint_topic": False,
        "checkpoint_topic": prefix + "checkpoints",
        "poll_interval": 0.2,
        "lock_poll_interval": 0.2,
        "delivery_timeout": 10.0,
    }
    settings.update(overrides)
    return RelayOptions(**settings)  # type: ignore[arg-type]


async def until_true(check: Callable[[], Awaitable[bool]], *, deadline: float = 60.0) -> None:
    """Return once ``await check()`` is true; fail the test if it never is."""
    async with asyncio.timeout(deadline):
        while not await check():  # noqa: ASYNC110 (a database state: no event to await)
            await asyncio.sleep(0.02)
