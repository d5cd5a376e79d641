"""Consumer lag: how far a group (or a Kafka-fed projection) is behind, per partition.

Lag in events is the partition's high watermark minus the group's committed
offset (for a Kafka-fed projection: the offset its read model holds, which is
the truth; the group's commits trail it).  Lag in seconds is the age of the
oldest message not yet processed (its broker timestamp), 0 when there is none.
``lost`` counts messages retention deleted before the group got to them (see
``OffsetGap``): a committed offset below the low watermark.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import confluent_kafka
from confluent_kafka import TopicPartition

from projections import MongoReadModel, RedisReadModel

from ._consumer_checks import check_consumer
from ._redis_offsets import partition_offsets


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition of one topic as a group sees it."""

    group: str
    topic: str
    partition: int
    #: The next offset to process (None: the group has processed nothing here).
    committed: int | None
    high_watermark: int
    low_watermark: int
    events: int
    seconds: float
    #: Messages deleted by retention before the group processed them (the committed
    #: offset is below the low watermark): a gap the consumer stopped at or skipped.
    lost: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _client(bootstrap: str, config: dict[str, Any] | None, group: str) -> confluent_kafka.Consumer:
    return confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            **(config or {}),
        }
    )


def _partitions(
    consumer: confluent_kafka.Consumer, topics: Sequence[str], wait: float
) -> list[TopicPartition]:
    metadata = consumer.list_topics(timeout=wait)
    found = []
    for topic in topics:
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            continue
        found += [TopicPartition(topic, p) for p in sorted(described.partitions)]
    return found


def _age(
    consumer: confluent_kafka.Consumer, topic: str, partition: int, offset: int, wait: float
) -> float:
    """Seconds since the message at ``offset`` was written (0 if it cannot be read)."""
    consumer.assign([TopicPartition(topic, partition, offset)])
    message = consumer.poll(wait)
    if message is None or message.error() is not None:
        return 0.0
    kind, stamp = message.timestamp()
    if kind == confluent_kafka.TIMESTAMP_NOT_AVAILABLE:
        return 0.0
    return max(0.0, time.time() - stamp / 1000)


def _lag(
    bootstrap: str,
    group: str,
    topics: Sequence[str],
    offsets: dict[str, int] | None,
    config: dict[str, Any] | None,
    wait: float,
) -> list[PartitionLag]:
    # Reading committed offsets does not join the group (no subscribe), so status
    # never triggers a rebalance of the members it reports on.
    reader = _client(bootstrap, config, group)
    peeker = _client(bootstrap, config, f"chronik.lag.{uuid.uuid4().hex}")
    try:
        parts = _partitions(reader, topics, wait)
        if not parts:
            return []
        if offsets is None:
            committed = {
                (c.topic, c.partition): (c.offset if c.offset >= 0 else None)
                for c in reader.committed(parts, timeout=wait)
            }
        else:
            committed = {
                (p.topic, p.partition): offsets.get(f"{p.topic}:{p.partition}") for p in parts
            }
        rows = []
        for part in parts:
            low, high = reader.get_watermark_offsets(part, timeout=wait)
            done = committed[(part.topic, part.partition)]
            start = low if done is None else max(done, low)
            events = max(0, high - start)
            seconds = _age(peeker, part.topic, part.partition, start, wait) if events else 0.0
            lost = max(0, low - done) if done is not None else 0
            rows.append(
                PartitionLag(
                    group, part.topic, part.partition, done, high, low, events, seconds, lost
                )
            )
        return rows
    finally:
        reader.close()
        peeker.close()


async def consumer_lag(
    bootstrap: str,
    group: str,
    topics: Sequence[str],
    *,
    config: dict[str, Any] | None = None,
    wait: float = 10.0,
) -> list[PartitionLag]:
    """Lag of consumer group ``group`` on ``topics`` (with its retry topics, if listed)."""
    topics = check_consumer(group, topics, side_topics=True)
    return await asyncio.to_thread(_lag, bootstrap, group, topics, None, config, wait)


async def projection_lag(
    bootstrap: str,
    read_model: RedisReadModel | MongoReadModel,
    name: str,
    topics: Sequence[str],
    *,
    config: dict[str, Any] | None = None,
    wait: float = 10.0,
) -> list[PartitionLag]:
    """Lag of a Kafka-fed projection, from the offsets its read model holds."""
    offsets = await partition_offsets(read_model, name)
    return await asyncio.to_thread(_lag, bootstrap, name, topics, offsets, config, wait)


def topics_of(offsets: dict[str, int]) -> list[str]:
    """The topics a Kafka-fed projection's offsets name."""
    return sorted({field.rpartition(":")[0] for field in offsets})
