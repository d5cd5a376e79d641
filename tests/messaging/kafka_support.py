"""Kafka in the consumer tests: topics and events published from the store.

Until the relay lands, ``publish_from_store`` writes the same CloudEvents the
relay writes (binary mode, key = stream id, chronik's extension attributes).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence

import confluent_kafka

from eventstore import RecordedEvent

#: Partitions of a topic the mock cluster creates on first use (it has no CreateTopics).
PARTITIONS = 4


def fresh_topic(prefix: str = "t") -> str:
    """A new topic name; the topic is created (``PARTITIONS`` partitions) by ``publish``."""
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


def cloudevent_headers(event: RecordedEvent) -> list[tuple[str, bytes]]:
    attributes = {
        "specversion": "1.0",
        "id": str(event.event_id),
        "source": "chronik/tests",
        "type": event.type,
        "subject": event.stream_id,
        "time": event.recorded_at.isoformat(),
        "chronikversion": str(event.version),
        "chronikschema": str(event.schema_version),
        "chronikposition": str(event.position),
    }
    for key, name in (("correlation_id", "correlationid"), ("causation_id", "causationid")):
        if key in event.metadata:
            attributes[name] = str(event.metadata[key])
    headers = [(f"ce_{k}", v.encode()) for k, v in attributes.items()]
    headers.append(("content-type", b"application/json"))
    return headers


def publish(
    bootstrap: str,
    topic: str,
    events: Iterable[RecordedEvent],
    *,
    raw: Sequence[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = (),
) -> int:
    """Produce ``events`` (key = stream id) and ``raw`` (key, value, headers) messages."""
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    count = 0
    for event in events:
        producer.produce(
            topic,
            key=event.stream_id.encode(),
            value=json.dumps(event.data).encode(),
            headers=cloudevent_headers(event),
        )
        count += 1
        if count % 10000 == 0:
            producer.poll(0)
    for key, value, headers in raw:
        producer.produce(topic, key=key, value=value, headers=headers)
        count += 1
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} messages not delivered"
    return count
