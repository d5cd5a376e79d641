"""Running a consumer: the producer for retry/DLQ copies, the topics, restarts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import confluent_kafka

from projections import ProjectionSupersededError

from ._consumer_checks import check_consumer, check_instance, check_processor
from ._consumer_topics import admin_client, ensure_side_topics
from ._errors import MessagingConfigError
from ._group import ConsumerOptions, ConsumerStats, GroupConsumer, Processor
from ._numbers import check_seconds
from ._projection_consumer import KafkaProjection
from ._routing import DeliveryPolicy, Router, base_topic, dlq_topic

log = logging.getLogger("chronik.messaging")


def side_producer(bootstrap: str, config: dict[str, Any] | None = None) -> confluent_kafka.Producer:
    """The producer retry and DLQ copies go through: idempotent, acknowledged by all."""
    return confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 1,
            **(config or {}),
        }
    )


async def consume(
    processor: Processor,
    *,
    bootstrap: str,
    group: str,
    topics: Sequence[str],
    stop: asyncio.Event,
    policy: DeliveryPolicy | None = None,
    options: ConsumerOptions | None = None,
    restart_delay: float = 0.5,
    max_restart_delay: float = 30.0,
) -> ConsumerStats:
    """Run ``processor`` as a member of ``group`` until ``stop``; leaves the group cleanly.

    Creates the retry and dead-letter topics beside ``topics``.  Bad arguments (a
    blank group, no topics, a retry or DLQ topic, a delay that is not finite
    seconds) raise ``MessagingConfigError`` before anything is read.  A failure (broker
    gone, read model down) restarts the member from its committed state with
    backoff; only ``stop`` ends it, or ``ProjectionSupersededError`` (raised) when a
    Kafka-fed projection finds a newer version of itself live.
    """
    # Checked before any topic is created or the restart loop begins: there, a
    # setting librdkafka refuses would only show as "failed; restarting" forever.
    topics = check_consumer(group, topics)
    subject = f"consumer group {group!r}"
    check_processor(processor, subject)
    policy = policy or getattr(processor, "policy", None) or DeliveryPolicy()
    check_instance(policy, DeliveryPolicy, "policy", subject)
    options = options or ConsumerOptions()
    check_instance(options, ConsumerOptions, "options", subject)
    check_seconds(restart_delay, "restart_delay", subject)
    check_seconds(max_restart_delay, "max_restart_delay", subject)
    if max_restart_delay < restart_delay:
        raise MessagingConfigError(
            subject,
            f"max_restart_delay must be >= restart_delay ({restart_delay}), "
            f"not {max_restart_delay!r}",
        )
    retries = policy.topics_for(topics)
    side = retries + [dlq_topic(t) for t in topics]
    producer = side_producer(bootstrap, options.config)
    await ensure_side_topics(
        admin_client(bootstrap, options.config),
        producer,
        topics,
        side,
        lambda name: base_topic(name.removesuffix(".dlq"))[0],
    )
    if hasattr(processor, "router"):
        processor.router = Router(producer, policy, group)
    if isinstance(processor, KafkaProjection):
        await processor.setup()
    member = GroupConsumer(bootstrap, group, [*topics, *retries], processor, options)
    delay = restart_delay
    try:
        while not stop.is_set():
            try:
                await member.run(stop)
            except ProjectionSupersededError:
                # A newer version of the projection is live: restarting would only
                # fight it.  The member has left the group, so its members take over.
                log.error("consumer %s: %s; stopping", group, "a newer projection version is live")
                raise
            except Exception:
                log.exception("consumer %s failed; restarting in %.1fs", group, delay)
                try:
                    async with asyncio.timeout(delay):
                        await stop.wait()
                except TimeoutError:
                    pass
                delay = min(delay * 2, max_restart_delay)
            else:
                delay = restart_delay
    finally:
        await asyncio.to_thread(producer.flush, 10)
    return member.stats
