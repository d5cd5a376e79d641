"""The dead-letter topics: list what is parked in ``<topic>.dlq``, send it back.

A dead letter is the original message (key, value, CloudEvents headers) plus the
headers the consumer added: attempts, first topic/partition/offset, error type
and message, the consumer group.  ``replay_dead_letters`` copies each one back to
its original topic, after the fix is deployed, and records how far it got as the
offsets of a consumer group of its own (``chronik.deadletters``), so a replay
that runs twice sends each dead letter once.  A consumer treats the replayed copy
like a retry: a Kafka-fed projection applies an event id at most once, a handler
under ``idempotent`` acts once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import confluent_kafka
from confluent_kafka import TopicPartition

from ._consume_errors import DeadLetterReplayError
from ._inbound import (
    ATTEMPTS,
    ERROR_MESSAGE,
    ERROR_TYPE,
    NOT_BEFORE,
    ORIGINAL_OFFSET,
    ORIGINAL_PARTITION,
    ORIGINAL_TOPIC,
    SOURCE_GROUP,
    header_map,
)
from ._routing import dlq_topic

REPLAY_GROUP = "chronik.deadletters"


@dataclass(frozen=True, slots=True)
class KafkaDeadLetter:
    """One message parked in a dead-letter topic."""

    dlq: str
    partition: int
    offset: int
    key: str | None
    event_type: str | None
    event_id: str | None
    original_topic: str | None
    original_partition: int | None
    original_offset: int | None
    attempts: int
    error_type: str | None
    error: str | None
    group: str | None
    replayed: bool

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _reader(bootstrap: str, group: str, config: dict[str, Any] | None) -> confluent_kafka.Consumer:
    return confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **(config or {}),
        }
    )


def _read_to_end(
    consumer: confluent_kafka.Consumer, topic: str, timeout: float
) -> list[confluent_kafka.Message]:
    """Every message of ``topic`` now present, from the beginning."""
    metadata = consumer.list_topics(topic, timeout=timeout)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        return []
    ends: dict[int, int] = {}
    for partition in described.partitions:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
        if high > 0:
            ends[partition] = high
    if not ends:
        return []
    consumer.assign([TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in ends])
    found: list[confluent_kafka.Message] = []
    done: set[int] = set()
    while len(done) < len(ends):
        message = consumer.poll(timeout)
        if message is None:
            raise DeadLetterReplayError(topic, f"no message within {timeout} s reading to the end")
        if message.error() is not None:
            continue
        found.append(message)
        if (message.offset() or 0) >= ends[message.partition() or 0] - 1:
            done.add(message.partition() or 0)
    return found


def _replayed_up_to(
    consumer: confluent_kafka.Consumer, topic: str, partitions: set[int]
) -> dict[int, int]:
    committed = consumer.committed(
        [TopicPartition(topic, p) for p in sorted(partitions)], timeout=10
    )
    return {c.partition: c.offset for c in committed if c.offset >= 0}


def _letter(message: confluent_kafka.Message, replayed: bool) -> KafkaDeadLetter:
    headers = header_map(message.headers())
    key = message.key()

    def number(name: str) -> int | None:
        value = headers.get(name)
        return int(value) if value is not None and value.lstrip("-").isdigit() else None

    return KafkaDeadLetter(
        dlq=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=key.decode(errors="replace") if isinstance(key, bytes) else key,
        event_type=headers.get("ce_type"),
        event_id=headers.get("ce_id"),
        original_topic=headers.get(ORIGINAL_TOPIC),
        original_partition=number(ORIGINAL_PARTITION),
        original_offset=number(ORIGINAL_OFFSET),
        attempts=number(ATTEMPTS) or 0,
        error_type=headers.get(ERROR_TYPE),
        error=headers.get(ERROR_MESSAGE),
        group=headers.get(SOURCE_GROUP),
        replayed=replayed,
    )


def _list(
    bootstrap: str, topic: str, config: dict[str, Any] | None, timeout: float
) -> list[KafkaDeadLetter]:
    dlq = topic if topic.endswith(".dlq") else dlq_topic(topic)
    consumer = _reader(bootstrap, REPLAY_GROUP, config)
    try:
        messages = _read_to_end(consumer, dlq, timeout)
        done = _replayed_up_to(consumer, dlq, {m.partition() or 0 for m in messages})
        return [_letter(m, (m.offset() or 0) < done.get(m.partition() or 0, 0)) for m in messages]
    finally:
        consumer.close()


async def list_dead_letters(
    bootstrap: str, topic: str, *, config: dict[str, Any] | None = None, wait: float = 30.0
) -> list[KafkaDeadLetter]:
    """What ``<topic>.dlq`` holds (``topic`` may name the DLQ), oldest first per partition.

    ``wait``: seconds the broker may take per request."""
    return await asyncio.to_thread(_list, bootstrap, topic, config, wait)


def _replay(bootstrap: str, topic: str, config: dict[str, Any] | None, timeout: float) -> int:
    dlq = topic if topic.endswith(".dlq") else dlq_topic(topic)
    consumer = _reader(bootstrap, REPLAY_GROUP, config)
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            **(config or {}),
        }
    )
    sent = 0
    try:
        messages = _read_to_end(consumer, dlq, timeout)
        done = _replayed_up_to(consumer, dlq, {m.partition() or 0 for m in messages})
        for message in messages:
            partition, offset = message.partition() or 0, message.offset() or 0
            if offset < done.get(partition, 0):
                continue
            headers = header_map(message.headers())
            original = headers.get(ORIGINAL_TOPIC)
            if not original:
                raise DeadLetterReplayError(
                    dlq, f"dead letter {dlq}[{partition}]@{offset} names no original topic"
                )
            raw = message.headers() or []
            pairs = list(raw.items()) if isinstance(raw, dict) else raw
            # A fresh start for the copy: no wait, the full retries again.
            kept = [(name, value) for name, value in pairs if name not in (NOT_BEFORE, ATTEMPTS)]
            errors: list[confluent_kafka.KafkaError] = []

            def report(
                error: confluent_kafka.KafkaError | None,
                _: confluent_kafka.Message,
                errors: list[confluent_kafka.KafkaError] = errors,
            ) -> None:
                if error is not None:
                    errors.append(error)

            producer.produce(
                original, key=message.key(), value=message.value(), headers=kept, on_delivery=report
            )
            if producer.flush(timeout) or errors:
                raise DeadLetterReplayError(
                    dlq, f"could not send {dlq}[{partition}]@{offset} back to {original}: {errors}"
                )
            # Recorded only once the copy is acknowledged: nothing is lost, and a
            # second replay does not send it again.
            consumer.commit(
                offsets=[TopicPartition(dlq, partition, offset + 1)], asynchronous=False
            )
            sent += 1
        return sent
    finally:
        consumer.close()
        producer.flush(timeout)


async def replay_dead_letters(
    bootstrap: str, topic: str, *, config: dict[str, Any] | None = None, wait: float = 30.0
) -> int:
    """Send every not yet replayed dead letter of ``topic`` back to its original topic;
    the number sent.  ``wait``: seconds the broker may take per request."""
    return await asyncio.to_thread(_replay, bootstrap, topic, config, wait)
