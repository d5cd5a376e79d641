"""Poison and bad messages: retried, sent through the retry topic to the DLQ with
the documented headers, the partition never blocked; replayed after the fix into
the read model exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import ClassVar

from kafka_support import fresh_topic, publish, until_applied

from eventstore import START, Event, EventCodec, RecordedEvent
from messaging import (
    ConsumerOptions,
    DeliveryPolicy,
    KafkaProjection,
    consume,
    list_dead_letters,
    replay_dead_letters,
)
from projections import Projection, RedisReadModel, RedisWrites

FAST = ConsumerOptions(batch_size=50, poll_timeout=0.05, session_timeout_ms=6000)
POLICY = DeliveryPolicy(attempts=2, initial_delay=0.0, retry_topics=1, retry_delay=0.1)


class Noted(Event):
    event_type: ClassVar[str] = "test.Noted"
    n: int


#: Numbers whose handling fails while the "bug" is in.
BROKEN: set[int] = set()

NOTES: Projection[RedisWrites] = Projection("notes", writes=RedisWrites)


@NOTES.on(Noted)
def _noted(event: Noted, envelope: RecordedEvent, w: RedisWrites) -> None:
    if event.n in BROKEN:
        raise ValueError(f"cannot note {event.n}")
    w.rpush("applied", event.n)  # a list: an event applied twice shows twice


def noted(stream: str, version: int, n: int, schema: int = 1) -> RecordedEvent:
    return RecordedEvent(
        stream,
        version,
        START,
        uuid.uuid4(),
        "test.Noted",
        schema,
        {"n": n},
        {},
        datetime.now(UTC),
    )


def bad_messages(stream: str) -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]:
    good_headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", b"tests"),
        ("content-type", b"application/json"),
    ]
    return [
        (stream.encode(), b'{"n": 1}', []),  # not a CloudEvent
        (stream.encode(), b"{not json", [*good_headers, ("ce_type", b"test.Noted")]),
        (
            stream.encode(),
            b'{"n": 1}',
            [
                *good_headers[:1],
                ("ce_id", str(uuid.uuid4()).encode()),
                *good_headers[2:],
                ("ce_type", b"test.Unknown"),
            ],
        ),
    ]


async def applied(read_model: RedisReadModel) -> list[int]:
    view = await read_model.view("notes")
    return [int(v) for v in await view.client.lrange(view.key("applied"), 0, -1)]


async def test_poison_goes_through_retries_to_the_dlq_and_replays_exactly_once(
    read_models: list[RedisReadModel], kafka_bootstrap: str
) -> None:
    read_model = read_models[0]
    topic, group = fresh_topic(), f"g-{uuid.uuid4().hex[:8]}"
    stream = "note-1"
    events = [noted(stream, v, v) for v in range(1, 11)]
    BROKEN.update({3, 7})
    # Schema v9 with no upcaster to v1: an incomplete chain.
    events.append(noted(stream, 11, 11, schema=9))
    publish(kafka_bootstrap, topic, events, raw=bad_messages(stream))
    stop = asyncio.Event()
    # The app's codec: a type it does not know is bad input, not a type to skip.
    processor = KafkaProjection(NOTES, read_model, policy=POLICY, known=EventCodec([Noted]))
    member = asyncio.create_task(
        consume(
            processor,
            bootstrap=kafka_bootstrap,
            group=group,
            topics=[topic],
            stop=stop,
            options=FAST,
        )
    )
    try:
        # 11 events + 3 bad messages on the topic, then 2 copies on the retry topic.
        await until_applied(read_model, "notes", 14 + 2)
        letters = await _until_letters(kafka_bootstrap, topic, 6)
        assert await applied(read_model) == [1, 2, 4, 5, 6, 8, 9, 10]  # never blocked
        by_offset = sorted(letters, key=lambda d: d.original_offset or 0)
        assert [d.original_offset for d in by_offset] == [2, 6, 10, 11, 12, 13]
        assert {d.original_topic for d in letters} == {topic}
        assert {d.group for d in letters} == {group}
        poison = [d for d in by_offset if d.original_offset in (2, 6)]
        assert [d.attempts for d in poison] == [4, 4]  # 2 in place, 2 from the retry topic
        assert {d.error_type for d in poison} == {"builtins.ValueError"}
        assert [d.error for d in poison] == ["cannot note 3", "cannot note 7"]
        reasons = {d.original_offset: d.error or "" for d in by_offset}
        assert "upcast" in reasons[10].lower() or "v9" in reasons[10]
        assert "not a CloudEvent" in reasons[11]
        assert "not JSON" in reasons[12]
        assert "test.Unknown" in reasons[13]
        assert all(d.attempts == 1 for d in by_offset if d.original_offset not in (2, 6))

        BROKEN.clear()  # the fix is deployed
        assert await replay_dead_letters(kafka_bootstrap, topic) == 6
        assert await replay_dead_letters(kafka_bootstrap, topic) == 0  # sent once
        await until_applied(read_model, "notes", 16 + 6)
        # Replayed by hand a second time (a copy of a copy): still applied once.
        await _send_again(kafka_bootstrap, topic, letters_of=poison)
        await until_applied(read_model, "notes", 16 + 6 + 2)
    finally:
        stop.set()
        await member
    assert sorted(await applied(read_model)) == list(range(1, 11))
    letters = await list_dead_letters(kafka_bootstrap, topic)
    # The bad input failed again on replay and is parked again, marked not replayed.
    assert sum(not d.replayed for d in letters) == 4


async def _until_letters(bootstrap: str, topic: str, count: int) -> list:  # type: ignore[type-arg]
    async with asyncio.timeout(90):
        while len(letters := await list_dead_letters(bootstrap, topic)) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return letters


async def _send_again(bootstrap: str, topic: str, *, letters_of: list) -> None:  # type: ignore[type-arg]
    import confluent_kafka

    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "t-again"})
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap})
    try:
        for letter in letters_of:
            consumer.assign(
                [confluent_kafka.TopicPartition(letter.dlq, letter.partition, letter.offset)]
            )
            message = consumer.poll(30)
            assert message is not None and message.error() is None
            producer.produce(
                topic, key=message.key(), value=message.value(), headers=message.headers()
            )
        assert producer.flush(30) == 0
    finally:
        consumer.close()
