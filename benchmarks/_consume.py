"""Consuming a topic into Redis: chronik's Kafka-fed projection beside a raw loop.

N events (``bench.Credited {amount}``, 100 per stream) are on a topic as the relay
writes them (CloudEvents binary mode, key = stream id); each round is a fresh
consumer group reading the whole backlog into a fresh keyspace, which is also the
*lag recovery* of a group that fell N events behind:
``HINCRBY balance <stream_id> <amount>`` per event.

chronik: ``messaging.consume`` with a ``KafkaProjection`` (cooperative-sticky group,
batches of 500, CloudEvents decoding, the codec, the handler, one Lua commit of the
batch's writes with its per-partition offsets, then the group's offset commit).

raw: confluent-kafka with the same group settings and batches of 500: ``consume``,
``json.loads`` of each value, the same HINCRBYs in one non-transactional redis-py
pipeline per batch, a synchronous offset commit per batch; nothing else.

events/s counts from the first batch to the last (the mock cluster holds a new
group's first join for about 3 s, which says nothing about either loop);
``lag_recovery_s`` is the wall time from starting the consumer, join included,
to having applied the whole backlog.  Kafka: ``KAFKA_BOOTSTRAP_SERVERS`` when set,
else librdkafka's mock cluster in this process.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from eventstore import Event, Position, RecordedEvent

from ._brokers import broker_description, cluster_for_run
from ._cases import Case, not_available
from ._context import BenchContext
from ._harness import CaseResult, Round, measure, per_second
from ._projection import _delete_prefix, _redis_url

GROUP = "messaging"
PER_STREAM = 100
BATCH = 500
#: librdkafka's mock broker keeps only the newest ~5 MB of each partition and
#: silently drops older segments (no setting changes that, and it creates topics
#: only with its default 4 partitions).  A relay-shaped event is ~350 bytes, so an
#: uncompressed 100,000-event backlog lost ~40% of its start and both loops
#: waited for events that no longer existed.  Compressed batches fit.
COMPRESSION = "lz4"
#: A hang guard per round, not a measurement.
DEADLINE = 600.0


class Credited(Event):
    event_type: ClassVar[str] = "bench.Credited"
    amount: int


def _missing() -> str | None:
    try:
        import confluent_kafka  # noqa: F401

        from messaging import KafkaProjection, MockCluster  # noqa: F401
    except ImportError as error:
        return f"messaging (or confluent-kafka) cannot be imported ({error})"
    return None


def _publish(bootstrap: str, topic: str, events: int) -> dict[str, int]:
    """Produce the backlog; the balances it adds up to."""
    import confluent_kafka

    from messaging import encode_event

    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "enable.idempotence": True,
            "compression.type": COMPRESSION,
        }
    )
    balances: dict[str, int] = {}
    now = datetime.now(UTC)
    for start in range(0, events, PER_STREAM):
        stream = f"acct-{uuid.uuid4().hex}"
        for i in range(PER_STREAM):
            amount = (start + i) % 97 + 1
            event = RecordedEvent(
                stream, i + 1, Position(1, start + i + 1), uuid.uuid4(), Credited.event_type, 1,
                {"amount": amount}, {}, now,
            )  # fmt: skip
            record = encode_event(event, topic, "bench")
            while True:
                try:
                    headers: list[tuple[str, str | bytes | None]] = list(record.headers)
                    producer.produce(topic, key=record.key, value=record.value, headers=headers)
                    break
                except BufferError:
                    producer.poll(0.05)
            balances[stream] = balances.get(stream, 0) + amount
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError("the backlog was not fully delivered")
    _check_retained(bootstrap, topic, events)
    return balances


def _check_retained(bootstrap: str, topic: str, events: int) -> None:
    """Fail now, not after a 10-minute wait, when the broker already dropped some."""
    import confluent_kafka

    probe = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-probe"})
    try:
        parts = probe.list_topics(topic, 30).topics[topic].partitions
        marks = [
            probe.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p), 30)
            for p in sorted(parts)
        ]
    finally:
        probe.close()
    kept = sum(high - low for low, high in marks)
    if kept != events:
        raise RuntimeError(
            f"topic {topic} holds {kept} of the {events} events produced "
            f"(low/high watermarks {marks}): the broker's retention dropped the start"
        )


def _raw_round(
    bootstrap: str, topic: str, client: Any, key: str, events: int
) -> tuple[float, float]:
    """The raw loop (run in a thread: confluent-kafka and redis-py, both blocking)."""
    import confluent_kafka
    import redis

    started = time.perf_counter()
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-raw-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
        }
    )
    sync = redis.Redis.from_url(client, decode_responses=True)
    consumer.subscribe([topic])
    first, count = 0.0, 0
    try:
        while count < events:
            if time.perf_counter() - started > DEADLINE:
                raise RuntimeError(f"raw consumer stuck at {count} of {events}")
            messages = consumer.consume(BATCH, 0.5)
            if not messages:
                continue
            first = first or time.perf_counter()
            pipe = sync.pipeline(transaction=False)
            for message in messages:
                if message.error() is not None:
                    continue
                stream = (message.key() or b"").decode()
                pipe.hincrby(key, stream, json.loads(message.value() or b"{}")["amount"])
                count += 1
            pipe.execute()
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
        sync.close()
    end = time.perf_counter()
    return per_second(count, end - first), end - started


async def consume_kafka_redis(context: BenchContext) -> list[CaseResult]:
    reason = _missing()
    if reason is not None:
        return [not_available("consume_kafka_redis", GROUP, "events/s", "throughput", reason)]
    import redis.asyncio as aioredis

    from messaging import ConsumerOptions, KafkaProjection, consume
    from projections import Projection, RedisReadModel, RedisWrites

    events = context.size(100_000, 2_000)
    bootstrap = cluster_for_run(context)
    kafka = broker_description()
    topic = f"bench.{context.run_id}.{uuid.uuid4().hex[:6]}"
    expected = await asyncio.to_thread(_publish, bootstrap, topic, events)
    url = await _redis_url(context)
    prefix = f"bench:{context.run_id}:consume:"
    client = aioredis.Redis.from_url(url, decode_responses=True)
    context.push_async(client.aclose)
    context.push_async(lambda: _delete_prefix(client, prefix))

    projection: Projection[RedisWrites] = Projection("kafka_balances", writes=RedisWrites)

    @projection.on(Credited)
    def credited(event: Credited, envelope: Any, writes: RedisWrites) -> None:
        writes.hincrby("balance", envelope.stream_id, event.amount)

    recoveries: dict[str, list[float]] = {"chronik": [], "raw": []}
    options = ConsumerOptions(batch_size=BATCH, poll_timeout=0.5)

    async def chronik_round() -> float:
        round_prefix = f"{prefix}{uuid.uuid4().hex[:8]}:"
        read_model = RedisReadModel(client, prefix=round_prefix)
        processor = KafkaProjection(projection, read_model)
        first: list[float] = []
        process: Callable[..., Any] = processor.process

        async def timed(messages: Any) -> None:
            if not first:
                first.append(time.perf_counter())
            await process(messages)

        processor.process = timed  # type: ignore[method-assign]
        stop = asyncio.Event()
        started = time.perf_counter()
        member = asyncio.create_task(
            consume(processor, bootstrap=bootstrap, group=f"bench-{uuid.uuid4().hex}",
                    topics=[topic], stop=stop, options=options)
        )  # fmt: skip
        try:
            async with asyncio.timeout(DEADLINE):
                while processor.applied < events:  # noqa: ASYNC110 (counted in process)
                    await asyncio.sleep(0.002)
            end = time.perf_counter()
        finally:
            stop.set()
            await member
        recoveries["chronik"].append(end - started)
        view = await read_model.view(projection.name)
        await _check("chronik", await client.hgetall(view.key("balance")), expected)
        await _delete_prefix(client, round_prefix)
        return per_second(events, end - first[0])

    async def raw_round() -> float:
        key = f"{prefix}raw:{uuid.uuid4().hex[:8]}"
        rate, recovery = await asyncio.to_thread(_raw_round, bootstrap, topic, url, key, events)
        recoveries["raw"].append(recovery)
        await _check("raw", await client.hgetall(key), expected)
        await client.delete(key)
        return rate

    rounds: dict[str, Round] = {"chronik": chronik_round, "raw": raw_round}
    measured = await measure(rounds, repetitions=context.repetitions, warmup=context.warmup)
    result = CaseResult(
        name="consume_kafka_redis",
        unit="events/s",
        kind="throughput",
        group=GROUP,
        description=f"a fresh consumer group reads a {events}-event backlog into Redis",
        raw_does=(
            "confluent-kafka consume() batches of 500 + json.loads + the same HINCRBYs in a "
            "redis-py pipeline per batch + a synchronous offset commit; no decoding of "
            "CloudEvents, no codec, no offsets in Redis"
        ),
        target=0.5,
        target_text=">= 0.5x raw",
        extra={
            "events": events,
            "backlog": events,
            "lag_recovery_s_chronik": _median(recoveries["chronik"]),
            "lag_recovery_s_raw": _median(recoveries["raw"]),
            "kafka": kafka,
        },
    ).record(measured)
    return [result]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


async def _check(name: str, found: dict[Any, Any], expected: dict[str, int]) -> None:
    balances = {stream: int(value) for stream, value in found.items()}
    if balances != expected:
        wrong = sum(1 for s, v in expected.items() if balances.get(s) != v)
        raise RuntimeError(f"{name}: {wrong} wrong balances after consuming the backlog")


CASES = (
    Case(
        "consume_kafka_redis",
        GROUP,
        consume_kafka_redis,
        summary="consume a Kafka backlog into Redis",
    ),
)
