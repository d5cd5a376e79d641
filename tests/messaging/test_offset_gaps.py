"""Where a consumer group starts, and what it does when retention deleted its place.

A partition the group has no offset for starts at the oldest retained message.
An offset that is no longer on the broker (a gap: retention deleted messages the
group never processed) is reported (an ERROR log, ``ConsumerStats.gaps``, the
``on_offset_gap`` hook, ``lost`` in the lag), then the partition stops or, when
asked, resumes at the oldest retained message: never a silent jump.

The gap is real: librdkafka's mock broker keeps only the newest ~5 MB of a
partition, so ~8 MB produced behind the group's offset deletes it.  A real broker
keeps its configured retention, hence the skip there.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import replace

import confluent_kafka
import pytest
from confluent_kafka import TopicPartition
from kafka_support import fresh_topic
from support.kafka import REAL_BROKER
from support.projection_runs import until

from messaging import ConsumerOptions, GroupConsumer, KafkaProjection, OffsetGap, consumer_lag
from projections import Projection, RedisReadModel, RedisWrites

pytestmark = pytest.mark.skipif(
    REAL_BROKER is not None, reason="needs the mock broker's ~5 MB per-partition retention"
)

FAST = ConsumerOptions(batch_size=200, poll_timeout=0.1, session_timeout_ms=6000)
#: Behind the group's offset: ~8 MB, past what the mock broker keeps of a partition.
FLOOD, FLOOD_SIZE = 8_000, 1_000
COMMITTED = 3


class Recorder:
    """A processor that only notes what it was given (the group commits its offsets)."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    async def starting_offsets(
        self, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        return {}

    async def revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        return None

    async def process(self, messages: Sequence[confluent_kafka.Message]) -> None:
        self.seen += [(m.partition() or 0, m.offset() or 0) for m in messages]


def _produce(bootstrap: str, topic: str, partition: int, count: int, size: int) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for n in range(count):
        while True:
            try:
                producer.produce(topic, value=b"%d:" % n + b"x" * size, partition=partition)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0


def _commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()


def _low(bootstrap: str, topic: str) -> int:
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), 30, cached=False)[0])
    finally:
        consumer.close()


async def _deleted_behind_group(bootstrap: str, group: str) -> tuple[str, int]:
    """A topic whose partition 0 lost the group's committed offset to retention, and
    whose partition 1 has a few messages the group never committed anything for."""
    topic = fresh_topic("gap")
    await asyncio.to_thread(_produce, bootstrap, topic, 0, 10, 10)
    await asyncio.to_thread(_commit, bootstrap, group, topic, COMMITTED)
    await asyncio.to_thread(_produce, bootstrap, topic, 0, FLOOD, FLOOD_SIZE)
    await asyncio.to_thread(_produce, bootstrap, topic, 1, 5, 10)
    low = await asyncio.to_thread(_low, bootstrap, topic)
    assert low > COMMITTED, "the flood did not push the mock broker's retention past the offset"
    return topic, low


async def _run(bootstrap: str, group: str, topic: str, options: ConsumerOptions) -> Recorder:
    recorder = Recorder()
    gaps: list[OffsetGap] = []
    options = replace(options, on_offset_gap=gaps.append)
    member = GroupConsumer(bootstrap, group, [topic], recorder, options)
    stop = asyncio.Event()
    running = asyncio.create_task(member.run(stop))
    try:
        await until(lambda: bool(gaps) and len([p for p, _ in recorder.seen if p == 1]) == 5)
        if options.offset_gap == "resume":
            await until(lambda: any(p == 0 for p, _ in recorder.seen))
    finally:
        stop.set()
        await running
    assert member.stats.gaps[(topic, 0)] == gaps[0]
    return recorder


async def test_a_gap_stops_the_partition_and_is_reported(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    group = f"g-{uuid.uuid4().hex}"
    topic, low = await _deleted_behind_group(kafka_bootstrap, group)
    with caplog.at_level(logging.ERROR, logger="chronik.messaging"):
        recorder = await _run(kafka_bootstrap, group, topic, FAST)
    # Partition 1 had no committed offset: all of it, from the start.
    assert sorted(o for p, o in recorder.seen if p == 1) == [0, 1, 2, 3, 4]
    # Partition 0: nothing skipped to, nothing consumed.
    assert [o for p, o in recorder.seen if p == 0] == []
    assert any(
        f"{topic}[0] offset {COMMITTED}" in r.getMessage() and "stopped" in r.getMessage()
        for r in caplog.records
    )
    lag = {r.partition: r for r in await consumer_lag(kafka_bootstrap, group, [topic])}
    assert lag[0].committed == COMMITTED and lag[0].lost == lag[0].low_watermark - COMMITTED
    assert lag[0].lost >= low - COMMITTED and lag[1].lost == 0


async def test_a_gap_can_be_resumed_past_and_is_still_reported(kafka_bootstrap: str) -> None:
    group = f"g-{uuid.uuid4().hex}"
    topic, low = await _deleted_behind_group(kafka_bootstrap, group)
    options = replace(FAST, offset_gap="resume")
    recorder = await _run(kafka_bootstrap, group, topic, options)
    first = min(o for p, o in recorder.seen if p == 0)
    assert first >= low  # the oldest message retained when the gap was met


def test_the_policies_are_checked() -> None:
    with pytest.raises(ValueError, match="offset_gap"):
        ConsumerOptions(offset_gap="skip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start"):
        ConsumerOptions(start="beginning")  # type: ignore[arg-type]


async def test_a_projection_whose_topic_lost_its_start_reports_the_gap(
    kafka_bootstrap: str, redis_url: str
) -> None:
    """A new Kafka-fed read model starts at offset 0, not at "the oldest retained":
    a topic whose start retention deleted would build a read model lacking it."""
    topic = fresh_topic("gap")
    await asyncio.to_thread(_produce, kafka_bootstrap, topic, 0, FLOOD, FLOOD_SIZE)
    low = await asyncio.to_thread(_low, kafka_bootstrap, topic)
    assert low > 0
    projection: Projection[RedisWrites] = Projection("gapped", writes=RedisWrites)
    async with await RedisReadModel.connect(
        redis_url, prefix=f"gp{uuid.uuid4().hex[:8]}:"
    ) as read_model:
        processor = KafkaProjection(projection, read_model)
        await processor.setup()
        gaps: list[OffsetGap] = []
        member = GroupConsumer(
            kafka_bootstrap,
            f"g-{uuid.uuid4().hex}",
            [topic],
            processor,
            replace(FAST, on_offset_gap=gaps.append),
        )
        stop = asyncio.Event()
        running = asyncio.create_task(member.run(stop))
        try:
            await until(lambda: bool(gaps))
        finally:
            stop.set()
            await running
        assert (gaps[0].topic, gaps[0].partition, gaps[0].offset) == (topic, 0, 0)
        assert gaps[0].lost >= low and processor.applied == 0
        await read_model.drop_projection("gapped")
