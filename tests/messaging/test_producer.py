"""The delivery watermark never passes a message without a successful report.

Real delivery reports from the cluster: good messages go to a topic that
exists, bad ones to a partition it does not have (librdkafka reports
``_UNKNOWN_PARTITION`` asynchronously, like any failed delivery).
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging import KafkaRecord, PublishError, TrackedProducer, producer_config


@pytest.fixture(scope="module")
def topic(kafka_bootstrap: str) -> str:
    name = f"tracked-{uuid.uuid4().hex[:8]}"
    creator = Producer({"bootstrap.servers": kafka_bootstrap})
    creator.produce(name, b"create")
    assert creator.flush(30) == 0
    return name


def describe(token: int, record: KafkaRecord) -> str:
    return f"message #{token} "


@settings(max_examples=15)
@given(plan=st.lists(st.booleans(), min_size=1, max_size=40), max_in_flight=st.integers(1, 8))
async def test_watermark_stops_before_the_first_failure(
    kafka_bootstrap: str, topic: str, plan: list[bool], max_in_flight: int
) -> None:
    config = producer_config(kafka_bootstrap, delivery_timeout=10, max_in_flight=max_in_flight)
    producer: TrackedProducer[int] = TrackedProducer(config, describe, max_in_flight=max_in_flight)
    first_bad = next((i for i, good in enumerate(plan) if not good), None)
    seen: list[int] = []
    refused_at_send = False
    try:
        for token, good in enumerate(plan):
            record = KafkaRecord(topic, b"k", f"{token}".encode(), [])
            try:
                await producer.send(record, token, partition=None if good else 999)
            except PublishError as error:
                # Either this message was refused before queueing (librdkafka knew
                # the partitions already), or waiting for room met an earlier failure.
                assert f"message #{first_bad} " in str(error)
                refused_at_send = token == first_bad
                break
            assert producer.in_flight <= max_in_flight
            try:
                mark = producer.delivered()
            except PublishError as error:
                # Raised only once the oldest unpassed message is the failed one.
                assert f"message #{first_bad} " in str(error) + " "
                break
            if mark is not None:
                seen.append(mark)
                assert first_bad is None or mark < first_bad
        if first_bad is None:
            assert await producer.drain() == len(plan) - 1
        elif refused_at_send:
            last = await producer.drain()
            assert (last if last is not None else -1) == first_bad - 1
        else:
            with pytest.raises(PublishError, match=f"message #{first_bad} "):
                await producer.drain()
            with pytest.raises(PublishError):
                producer.delivered()
    finally:
        producer.close()
    assert seen == sorted(seen)


async def test_an_oversized_message_is_refused_before_it_is_queued(
    kafka_bootstrap: str, topic: str
) -> None:
    config = producer_config(kafka_bootstrap, extra={"message.max.bytes": 2000})
    producer: TrackedProducer[int] = TrackedProducer(config, describe)
    try:
        with pytest.raises(PublishError, match=rf"message #3  to topic '{topic}'.*too large"):
            await producer.send(KafkaRecord(topic, b"k", b"x" * 5000, []), 3)
        assert producer.in_flight == 0 and producer.delivered() is None
    finally:
        producer.close()


@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(1, 30), min_size=1, max_size=6), max_in_flight=st.integers(1, 8))
async def test_batches_pass_the_watermark_whole_and_in_order(
    kafka_bootstrap: str, topic: str, sizes: list[int], max_in_flight: int
) -> None:
    config = producer_config(kafka_bootstrap, delivery_timeout=10, max_in_flight=max_in_flight)
    producer: TrackedProducer[int] = TrackedProducer(config, describe, max_in_flight=max_in_flight)
    seen: list[int] = []
    try:
        for token, size in enumerate(sizes):
            # A generator, as the relay passes: batches larger than max_in_flight
            # wait for room in the middle.
            records = (KafkaRecord(topic, b"k", f"{token}.{i}".encode(), []) for i in range(size))
            await producer.send_batch(records, token)
            assert producer.in_flight <= max_in_flight
            mark = producer.delivered()
            if mark is not None:
                seen.append(mark)
        assert await producer.drain() == len(sizes) - 1
        assert producer.sent == producer.acknowledged == sum(sizes)
    finally:
        producer.close()
    assert seen == sorted(seen)


async def test_a_batch_refused_half_way_blocks_the_watermark_for_good(
    kafka_bootstrap: str, topic: str
) -> None:
    config = producer_config(kafka_bootstrap, extra={"message.max.bytes": 2000})
    producer: TrackedProducer[int] = TrackedProducer(config, describe)
    try:
        await producer.send_batch([KafkaRecord(topic, b"k", b"ok", [])], 1)
        assert await producer.drain() == 1
        batch = [KafkaRecord(topic, b"k", b"ok", []), KafkaRecord(topic, b"k", b"x" * 5000, [])]
        with pytest.raises(PublishError, match=r"message #2 .*too large"):
            await producer.send_batch(batch, 2)
        # The batch's first message may well be delivered, but the batch never
        # counts as delivered: the watermark stays at 1 and says why.
        with pytest.raises(PublishError, match=r"message #2 .*too large"):
            await producer.drain()
        with pytest.raises(PublishError, match="message #2 "):
            producer.delivered()
    finally:
        producer.close()
