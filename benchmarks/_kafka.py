"""Publishing the feed to Kafka: the relay beside a raw producer.

N events (``bench.Credited {amount}``, 100 per stream) are in a schema of
their own.

chronik: ``Relay.publish_pending()`` from the start of the feed: reads the
gap-safe feed in pages of 1,000 (and the empty outbox), encodes every event as
a CloudEvent (binary mode: ``ce_*`` headers + JSON value, key = stream id),
produces it through the delivery-tracking producer (idempotent, acks=all,
at most 10,000 in flight) and saves the checkpoint in PostgreSQL as delivery
reports come in; done when every report is in.  ``relay_kafka_exactly_once``:
the same with ``exactly_once=True``: one Kafka transaction per 1,000 events
holding the messages and the checkpoint record.

raw: confluent-kafka producing the very same records (encoded beforehand by
the relay's encoder: same topics, keys, values and headers) with the same
producer settings, counting delivery reports, then ``flush()``.  No database,
no encoding, no checkpoint.

Kafka: ``KAFKA_BOOTSTRAP_SERVERS`` when set; else librdkafka's mock cluster,
a fresh one per round (it keeps every message in memory) for both sides.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, ClassVar

from eventstore import Event, PostgresEventStore

from ._brokers import broker_description, kafka_cluster, kafka_missing
from ._cases import Case, not_available
from ._context import BenchContext
from ._harness import CaseResult, Round, Stopwatch, measure, per_second

GROUP = "kafka"
PER_STREAM = 100
MAX_IN_FLIGHT = 10_000


class Credited(Event):
    event_type: ClassVar[str] = "bench.Credited"
    amount: int


async def _seed(store: PostgresEventStore, events: int) -> None:
    for start in range(0, events, PER_STREAM):
        batch = [Credited(amount=(start + i) % 97 + 1) for i in range(PER_STREAM)]
        await store.append(f"acct-{uuid.uuid4().hex}", batch, 0)


async def _records(store: PostgresEventStore, prefix: str) -> list[Any]:
    """The relay's own encoding of every event (topic names without the round prefix)."""
    from messaging import TopicMapping
    from messaging._encoding import Encoder

    encoder = Encoder(TopicMapping(prefix=prefix), f"chronik/{store.schema}", _binary())
    return [encoder.event(event) async for event in store.read_all()]


def _binary() -> Any:
    from messaging import CloudEventMode

    return CloudEventMode.BINARY


async def _relay_round(store: PostgresEventStore, events: int, exactly_once: bool) -> float:
    from messaging import Relay, RelayOptions, TopicMapping

    name = f"bench-{uuid.uuid4().hex[:8]}"
    with kafka_cluster() as servers:
        options = RelayOptions(
            name=name,
            topics=TopicMapping(prefix=f"{name}."),
            exactly_once=exactly_once,
            max_in_flight=MAX_IN_FLIGHT,
            create_checkpoint_topic=False,
            checkpoint_topic=f"{name}.checkpoints",
        )
        relay = Relay(store, servers, options)
        await relay.migrate()
        watch = Stopwatch()
        with watch.running():
            checkpoint = await relay.publish_pending()
    if checkpoint.published_events != events:
        raise RuntimeError(f"relay published {checkpoint.published_events} of {events} events")
    return per_second(events, watch.seconds)


def _raw_round(records: list[Any], events: int) -> float:
    from confluent_kafka import Producer

    from messaging import producer_config

    prefix = f"raw-{uuid.uuid4().hex[:8]}."
    with kafka_cluster() as servers:
        producer = Producer(producer_config(servers, max_in_flight=MAX_IN_FLIGHT))
        delivered = [0]

        def report(error: Any, _message: Any) -> None:
            if error is None:
                delivered[0] += 1

        start = time.perf_counter()
        for record in records:
            while True:
                try:
                    producer.produce(
                        prefix + record.topic,
                        record.value,
                        record.key,
                        headers=record.headers,
                        on_delivery=report,
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        producer.flush(60)
        seconds = time.perf_counter() - start
        del producer
    if delivered[0] != events:
        raise RuntimeError(f"raw producer delivered {delivered[0]} of {events}")
    return per_second(events, seconds)


async def relay_kafka(context: BenchContext) -> list[CaseResult]:
    reason = kafka_missing()
    if reason is not None:
        return [
            not_available(name, GROUP, "events/s", "throughput", reason)
            for name in ("relay_kafka", "relay_kafka_exactly_once")
        ]
    import asyncio

    events = context.size(50_000, 500)
    store = await context.chronik_store("relay")
    await _seed(store, events)
    records = await _records(store, "")

    async def raw_round() -> float:
        return await asyncio.to_thread(_raw_round, records, events)

    rows = []
    for name, exactly_once, target in (
        ("relay_kafka", False, 0.5),
        ("relay_kafka_exactly_once", True, None),
    ):

        async def chronik_round(exactly_once: bool = exactly_once) -> float:
            return await _relay_round(store, events, exactly_once)

        rounds: dict[str, Round] = {"chronik": chronik_round, "raw": raw_round}
        measured = await measure(rounds, repetitions=context.repetitions, warmup=context.warmup)
        mode = (
            "exactly-once (a Kafka transaction per 1,000 events)"
            if exactly_once
            else ("at-least-once (checkpoint in PostgreSQL)")
        )
        rows.append(
            CaseResult(
                name=name,
                unit="events/s",
                kind="throughput",
                group=GROUP,
                description=f"relay {events} events from the store to Kafka, {mode}",
                raw_does=(
                    "confluent-kafka producing the same records (same topics, keys, values, "
                    "headers, producer settings) from memory, then flush; no database"
                ),
                target=target,
                target_text=">= 0.5x raw" if target else "reported (no target)",
                extra={
                    "events": events,
                    "broker": broker_description(per_round=True),
                    "eventsourcing_note": "not measured in this case",
                },
            ).record(measured)
        )
    return rows


CASES = (
    Case(
        "relay_kafka",
        GROUP,
        relay_kafka,
        summary="relay the feed to Kafka (at-least-once and exactly-once) vs raw producing",
    ),
)
