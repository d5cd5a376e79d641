"""Topic plumbing the consumers need: partition counts and the retry/DLQ topics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from ._consume_errors import ConsumerError


def admin_client(bootstrap: str, config: dict[str, Any] | None = None) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, **(config or {})})


async def partition_counts(admin: AdminClient, topics: Iterable[str]) -> dict[str, int]:
    """Partitions per existing topic (absent topics are left out)."""
    metadata = await asyncio.to_thread(admin.list_topics, timeout=10)
    wanted = set(topics)
    return {
        name: len(topic.partitions)
        for name, topic in metadata.topics.items()
        if name in wanted and topic.error is None
    }


async def ensure_topics(
    admin: AdminClient, partitions: dict[str, int], producer: confluent_kafka.Producer
) -> None:
    """Make the topics exist: a broker that auto-creates topics does so on a
    producer's metadata request (librdkafka's mock cluster only does that, with
    its default partition count); others get an explicit CreateTopics with the
    given partition counts."""
    for name in partitions:
        await asyncio.to_thread(producer.list_topics, name, 10)
    existing = await partition_counts(admin, partitions)
    missing = [NewTopic(n, count) for n, count in partitions.items() if n not in existing]
    if not missing:
        return
    futures = admin.create_topics(missing, operation_timeout=10)
    for name, future in futures.items():
        try:
            await asyncio.wrap_future(future)
        except confluent_kafka.KafkaException as error:
            if error.args[0].code() != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                raise ConsumerError("(topics)", f"cannot create topic {name!r}: {error}") from error


async def ensure_side_topics(
    admin: AdminClient,
    producer: confluent_kafka.Producer,
    topics: Sequence[str],
    side: Sequence[str],
    base_of: Any,
) -> None:
    """Give each retry/DLQ topic in ``side`` as many partitions as its base topic (so a
    key lands in the same-numbered partition and per-stream order holds there too)."""
    counts = await partition_counts(admin, topics)
    missing = [t for t in topics if t not in counts]
    if missing:
        raise ConsumerError("(topics)", f"unknown topic(s): {', '.join(sorted(missing))}")
    await ensure_topics(admin, {name: counts[base_of(name)] for name in side}, producer)
