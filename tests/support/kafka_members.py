"""Driving Kafka-fed projection members by hand, as the group loop drives them.

Shared by the redelivery tests (``tests/messaging/test_kafka_read_models.py`` on
every read model, ``tests/property/test_kafka_redelivery.py`` on Redis): messages
as the relay encodes them, and a partition handed out to two members the way
Kafka hands it out, onward from where each member stands, rewound by crashes,
reassigned to start where the read model says.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar

import confluent_kafka
from hypothesis import strategies as st

from eventstore import Event, Position, RecordedEvent
from messaging import KafkaProjection, encode_event


class Counted(Event):
    event_type: ClassVar[str] = "test.Counted"
    n: int


def counted_messages(
    topic: str,
    partition: int,
    first: int,
    count: int,
    stream: str | None = None,
    n: int | None = None,
) -> list[confluent_kafka.Message]:
    """``Counted(n=offset)`` (or ``n``) at ``offset`` = first .. first + count - 1, as
    the relay writes it; one stream per partition (``s-<partition>`` unless ``stream``)."""
    found = []
    for offset in range(first, first + count):
        event = RecordedEvent(
            stream or f"s-{partition}", offset + 1, Position(1, offset + 1), uuid.uuid4(),
            Counted.event_type, 1, {"n": offset if n is None else n}, {}, datetime.now(UTC),
        )  # fmt: skip
        record = encode_event(event, topic, "tests")
        found.append(
            confluent_kafka.Message(
                topic=topic,
                partition=partition,
                offset=offset,
                key=record.key,
                value=record.value,
                headers=record.headers,
            )
        )
    return found


#: ``(action, member, argument)``: deliver the next ``argument`` messages, rewind
#: to offset ``argument`` (never forward), or (re)assign the partition.
Step = tuple[str, int, int]


def redelivery_steps(max_size: int) -> st.SearchStrategy[list[Step]]:
    """Interleavings of deliveries, rewinds and reassignments for two members."""
    return st.lists(
        st.one_of(
            st.tuples(st.just("deliver"), st.integers(0, 1), st.integers(1, 6)),
            st.tuples(st.just("rewind"), st.integers(0, 1), st.integers(0, 30)),
            st.tuples(st.just("assign"), st.integers(0, 1), st.just(0)),
        ),
        max_size=max_size,
    )


async def play_redeliveries(
    members: Sequence[KafkaProjection],
    feed: Sequence[confluent_kafka.Message],
    steps: Sequence[Step],
    topic: str,
    partition: int,
) -> None:
    """Hand ``feed`` (one partition, offsets from 0) to ``members`` per ``steps``, then
    let member 0 own the partition and catch up to the end."""
    positions = [0] * len(members)
    key = (topic, partition)

    async def assign(m: int) -> None:
        start = (await members[m].starting_offsets([key]))[key]
        positions[m] = max(start, 0)  # OFFSET_BEGINNING is negative

    async def deliver(m: int, size: int) -> None:
        batch = feed[positions[m] : positions[m] + size]
        if batch:
            await members[m].process(batch)
            positions[m] += len(batch)

    for action, m, argument in steps:
        if action == "deliver":
            await deliver(m, argument)
        elif action == "rewind":
            positions[m] = min(positions[m], argument)
        else:
            await assign(m)
    await assign(0)
    while positions[0] < len(feed):
        await deliver(0, 5)
