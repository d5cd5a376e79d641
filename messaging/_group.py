"""The consumer-group loop every chronik consumer shares.

One loop: fetch a batch, hand it to a *processor* (a projection or a handler),
commit the offsets the processor finished, fetch again.  Why this makes
rebalances safe: librdkafka runs the assign/revoke callbacks only inside
``consume()`` (and ``close()``), and the loop never calls them while a batch is
being processed.  So a revocation always finds the batch at hand finished and its
offsets committed: in-flight work is finished before partitions go, never lost
and never handed to the next owner half-done.  With the cooperative-sticky
assignor only the partitions that move are revoked; the others keep flowing.

A processor may choose where a partition starts (a read model that keeps its own
offsets, written atomically with the view, starts there instead of at the
group's committed offset), and messages of retry topics wait, paused, until the
time their header names.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import confluent_kafka
from confluent_kafka import TopicPartition

from ._inbound import NOT_BEFORE, header_map

log = logging.getLogger("chronik.messaging")

Partition = tuple[str, int]


class Processor(Protocol):
    """What the loop drives: a projection or a handler consumer."""

    name: str

    async def starting_offsets(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        """Offsets to start newly assigned partitions at (absent: the group's commit)."""
        ...

    async def revoked(self, partitions: Sequence[Partition]) -> None:
        """Partitions this member no longer owns (forget their state)."""
        ...

    async def process(self, messages: Sequence[confluent_kafka.Message]) -> None:
        """Handle a batch (messages in partition order); return once it is committed."""
        ...


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    """Tuning of a consumer; the defaults suit a service."""

    batch_size: int = 500
    poll_timeout: float = 0.5
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    #: Extra librdkafka settings (security, client id, ...).
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ConsumerStats:
    """What one member did, for in-process status and tests."""

    batches: int = 0
    messages: int = 0
    assigned: set[Partition] = field(default_factory=set)
    rebalances: int = 0


def consumer_config(bootstrap: str, group: str, options: ConsumerOptions) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": options.session_timeout_ms,
        "heartbeat.interval.ms": options.heartbeat_interval_ms,
        "topic.metadata.refresh.interval.ms": 1000,
        **options.config,
    }


class GroupConsumer:
    """A member of consumer group ``group`` reading ``topics`` into ``processor``."""

    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: Sequence[str],
        processor: Processor,
        options: ConsumerOptions | None = None,
    ) -> None:
        self.group = group
        self.topics = list(topics)
        self.processor = processor
        self.options = options or ConsumerOptions()
        self.stats = ConsumerStats()
        self._config = consumer_config(bootstrap, group, self.options)
        self._paused: dict[Partition, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer: confluent_kafka.Consumer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then leave the group cleanly."""
        self._loop = asyncio.get_running_loop()
        consumer = confluent_kafka.Consumer(self._config)
        self._consumer = consumer
        consumer.subscribe(
            self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        try:
            while not stop.is_set():
                self._resume_due(consumer)
                messages = await asyncio.to_thread(
                    consumer.consume, self.options.batch_size, self.options.poll_timeout
                )
                batch = self._usable(consumer, messages)
                if batch:
                    await self.processor.process(batch)
                    self._commit(consumer, batch)
        finally:
            # close() revokes the assignment (no batch is in flight here) and leaves
            # the group, so the others take over without waiting for a session timeout.
            await asyncio.to_thread(consumer.close)
            self._consumer = None

    # -- rebalance callbacks (run inside consume()/close(), in its thread) -------

    def _on_assign(self, consumer: confluent_kafka.Consumer, parts: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in parts]
        assert self._loop is not None
        starts = asyncio.run_coroutine_threadsafe(
            self.processor.starting_offsets(keys), self._loop
        ).result()
        chosen = [
            TopicPartition(p.topic, p.partition, starts[(p.topic, p.partition)])
            if (p.topic, p.partition) in starts
            else p
            for p in parts
        ]
        consumer.incremental_assign(chosen)
        self.stats.assigned.update(keys)
        self.stats.rebalances += 1
        log.info("consumer %s: assigned %s", self.group, _names(keys))

    def _on_revoke(self, consumer: confluent_kafka.Consumer, parts: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in parts]
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self.processor.revoked(keys), self._loop).result()
        for key in keys:
            self.stats.assigned.discard(key)
            self._paused.pop(key, None)
        self.stats.rebalances += 1
        log.info("consumer %s: revoked %s", self.group, _names(keys))

    def _on_lost(self, consumer: confluent_kafka.Consumer, parts: list[TopicPartition]) -> None:
        # Lost (session expired) is a revocation without the chance to commit; the
        # read model's fence keeps a late writer from applying anything twice.
        self._on_revoke(consumer, parts)

    # -- batches -----------------------------------------------------------------

    def _usable(
        self, consumer: confluent_kafka.Consumer, messages: list[confluent_kafka.Message]
    ) -> list[confluent_kafka.Message]:
        """Messages of partitions still assigned and due; errors raised or logged."""
        now = time.time()
        batch: list[confluent_kafka.Message] = []
        held: set[Partition] = set()
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                    continue
                if error.fatal():
                    raise confluent_kafka.KafkaException(error)
                log.warning("consumer %s: %s", self.group, error)
                continue
            key = (message.topic() or "", message.partition() or 0)
            if key not in self.stats.assigned or key in held:
                continue
            # Only copies on retry topics wait (the header check is per message).
            due = header_map(message.headers()).get(NOT_BEFORE) if ".retry." in key[0] else None
            if due is not None and float(due) > now:
                # Wait without blocking the others: go back to this message, pause
                # its partition and resume when it is due.
                held.add(key)
                part = TopicPartition(key[0], key[1], message.offset() or 0)
                consumer.pause([part])
                consumer.seek(part)
                self._paused[key] = float(due)
                continue
            batch.append(message)
        return batch

    def _resume_due(self, consumer: confluent_kafka.Consumer) -> None:
        now = time.time()
        due = [key for key, until in self._paused.items() if until <= now]
        if due:
            consumer.resume([TopicPartition(t, p) for t, p in due])
            for key in due:
                del self._paused[key]

    def _commit(
        self, consumer: confluent_kafka.Consumer, batch: list[confluent_kafka.Message]
    ) -> None:
        last: dict[Partition, int] = {}
        for message in batch:
            key = (message.topic() or "", message.partition() or 0)
            last[key] = max(last.get(key, -1), message.offset() or 0)
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except confluent_kafka.KafkaException as error:
            # The processor committed already (a read model holds its offsets, a
            # handler's effects are done): a failed group commit means redelivery,
            # which the processors treat as a no-op.
            log.warning("consumer %s: offset commit failed: %s", self.group, error)
        self.stats.batches += 1
        self.stats.messages += len(batch)


def _names(keys: Sequence[Partition]) -> str:
    return ", ".join(f"{t}[{p}]" for t, p in sorted(keys)) or "(none)"
