"""How fresh a Redis read model, and a Kafka topic, are while events keep arriving.

A writer appends one event (``bench.Stamped {seq}``) at a time at a steady
rate (500 events/s; the schedule is absolute, so a slow append is caught up
rather than shifting every later one) while a ``ProjectionRunner`` over
``StoreFeedSource``, exactly as ``chronik run`` builds it (batch size 500, the
NOTIFY wake-up and the read-ahead), projects each event into Redis as
``SET last <seq>``.  A watcher reads that key back in a loop; when it moves
from a to b, events a+1..b became readable at that moment.  An event's
freshness is that moment minus the moment its ``append`` returned (the commit
plus one reply: a slight understatement, the same for every event).

All three run in this one process and event loop, so they share its CPU with
each other (a projection service would have a process of its own): the
figures are an upper bound for the runner.  The watcher pauses 0.2 ms between
reads, which is its resolution.  Each round runs a few seconds; the rows give
the median over rounds of each round's p50 and p99 (p95 and the achieved rate
are in the JSON).  There is no raw or peer column: the targets are absolute.

``relay_freshness``: the same writer while a ``Relay`` (at-least-once, as
``chronik relay`` runs it: NOTIFY wake-up, pages of 1,000, idempotent producer
with ``acks=all`` and ``linger.ms=5``) publishes to Kafka, and a
``read_committed`` consumer (confluent-kafka, in a thread of this process)
records when each event's message arrives.  An event's freshness is that moment
minus the moment its ``append`` returned: commit -> consumable on the topic.
A warm-up event is relayed and consumed first, so the consumer group's join
is not counted.  Reported only (the issue sets no target for the relay).
Kafka: ``KAFKA_BOOTSTRAP_SERVERS`` when set, else librdkafka's mock cluster in
this process (its brokers' threads share the CPU too).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
import uuid
from typing import Any, ClassVar

from eventstore import Event

from ._brokers import broker_description, kafka_cluster, kafka_missing
from ._cases import Case, not_available
from ._context import BenchContext
from ._harness import CaseResult, Measurement
from ._projection import _delete_prefix, _missing, _redis_url

GROUP = "projections"
GROUP_RELAY = "kafka"
RATE = 500.0
WATCH_PAUSE = 0.0002


class Stamped(Event):
    event_type: ClassVar[str] = "bench.Stamped"
    seq: int


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _write(store: Any, events: int, first: int, committed: dict[int, float]) -> float:
    """Append ``events`` at ``RATE``; return the achieved rate."""
    stream = f"fresh-{uuid.uuid4().hex}"
    start = time.perf_counter()
    for offset in range(events):
        due = start + offset / RATE
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        seq = first + offset
        await store.append(stream, [Stamped(seq=seq)], offset)
        committed[seq] = time.perf_counter()
    return events / (time.perf_counter() - start)


async def _watch(client: Any, key: str, last: int, seen: dict[int, float]) -> None:
    """Record when each seq up to ``last`` became readable."""
    visible = max(seen, default=0)
    while visible < last:
        value = await client.get(key)
        now = time.perf_counter()
        current = int(value) if value is not None else 0
        for seq in range(visible + 1, current + 1):
            seen[seq] = now
        visible = max(visible, current)
        await asyncio.sleep(WATCH_PAUSE)


async def _active_key(read_model: Any, running: asyncio.Task[None]) -> str:
    """The view's key, once the runner has activated the projection's version."""
    from projections import ProjectionNotReadyError

    deadline = time.perf_counter() + 60
    while True:
        try:
            return str((await read_model.view("freshness")).key("last"))
        except ProjectionNotReadyError:
            if running.done():
                running.result()
            if time.perf_counter() > deadline:
                raise
            await asyncio.sleep(0.01)


async def freshness(context: BenchContext) -> list[CaseResult]:
    reason = _missing()
    if reason is not None:
        return [not_available("freshness_p50", GROUP, "ms", "latency", reason)]
    import redis.asyncio as aioredis

    from projections import (
        Projection,
        ProjectionRunner,
        RedisReadModel,
        RedisWrites,
        RunnerOptions,
        StoreFeedSource,
    )

    seconds = 0.5 if context.quick else 4.0
    per_round = int(RATE * seconds)
    rounds = max(1, context.repetitions if context.quick else min(context.repetitions, 3))
    store = await context.chronik_store("freshness")
    url = await _redis_url(context)
    prefix = f"bench:{context.run_id}:fresh:"
    read_model = await RedisReadModel.connect(url, prefix=prefix)
    context.push_async(read_model.close)
    client = aioredis.Redis.from_url(url, decode_responses=True)
    context.push_async(client.aclose)
    context.push_async(lambda: _delete_prefix(client, prefix))

    projection: Projection[RedisWrites] = Projection("freshness", writes=RedisWrites)

    @projection.on(Stamped)
    def stamped(event: Stamped, envelope: Any, writes: RedisWrites) -> None:
        writes.set("last", event.seq)

    runner = ProjectionRunner(
        StoreFeedSource(store),
        [(projection, read_model)],
        options=RunnerOptions(batch_size=500),
    )
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))
    key = await _active_key(read_model, running)
    p50: list[float] = []
    p95: list[float] = []
    p99: list[float] = []
    rates: list[float] = []
    try:
        for number in range(rounds):
            first = number * per_round + 1
            committed: dict[int, float] = {}
            seen: dict[int, float] = {first - 1: 0.0} if first > 1 else {}
            watcher = asyncio.create_task(_watch(client, key, first + per_round - 1, seen))
            rates.append(await _write(store, per_round, first, committed))
            await asyncio.wait_for(watcher, timeout=60)
            if running.done():
                running.result()  # the runner died: raise its error
            lags = [(seen[s] - committed[s]) * 1000.0 for s in committed]
            p50.append(statistics.median(lags))
            p95.append(_percentile(lags, 0.95))
            p99.append(_percentile(lags, 0.99))
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=30)
    common: dict[str, Any] = {
        "events_per_round": per_round,
        "rounds": rounds,
        "target_rate": RATE,
        "achieved_rate": statistics.median(rates),
        "p95_ms": statistics.median(p95),
        "eventsourcing_note": "not measured in this case",
    }
    description = (
        f"append -> readable in Redis under a steady {RATE:.0f} events/s "
        "(ProjectionRunner as chronik run builds it)"
    )
    rows = []
    for name, values, limit in (("freshness_p50", p50, 5.0), ("freshness_p99", p99, 25.0)):
        row = CaseResult(
            name=name,
            unit="ms",
            kind="latency",
            group=GROUP,
            description=description,
            raw_does="(none: an absolute target)",
            target_value=limit,
            target_text=f"<= {limit:g} ms at {RATE:.0f}/s",
            extra=dict(common),
            repetitions=rounds,
        )
        row.chronik = Measurement(tuple(values))
        rows.append(row)
    return rows


def _consume(servers: str, topic: str, seen: dict[int, float], stop: threading.Event) -> None:
    """Record when each ``seq`` became consumable (first arrival only)."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"fresh-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            # The mock broker answers a fetch only when this wait runs out (a real
            # one as soon as data arrives): the default (500 ms) would be most of
            # what is measured.
            "fetch.wait.max.ms": 5,
            "topic.metadata.refresh.interval.ms": 200,
        }
    )
    try:
        consumer.subscribe([topic])
        while not stop.is_set():
            message = consumer.poll(0.05)
            if message is None or message.error() is not None:
                continue
            now = time.perf_counter()
            value = message.value()
            if value is None:
                continue  # a tombstone: not one of the benchmark's events
            seen.setdefault(int(json.loads(value)["seq"]), now)
    finally:
        consumer.close()


async def _until(condition: Any, what: str, *, running: list[asyncio.Task[None]]) -> None:
    deadline = time.perf_counter() + 60
    while not condition():
        for task in running:
            if task.done():
                task.result()  # the relay or the consumer died: raise its error
                raise RuntimeError("the relay or the consumer stopped")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"relay freshness: {what} within 60 s")
        await asyncio.sleep(0.005)


async def relay_freshness(context: BenchContext) -> list[CaseResult]:
    reason = kafka_missing()
    if reason is not None:
        return [not_available("relay_freshness_p50", GROUP_RELAY, "ms", "latency", reason)]
    from messaging import Relay, RelayOptions, TopicMapping

    seconds = 0.5 if context.quick else 4.0
    per_round = int(RATE * seconds)
    rounds = max(1, context.repetitions if context.quick else min(context.repetitions, 3))
    store = await context.chronik_store("relay_freshness")
    name = f"fresh-{uuid.uuid4().hex[:8]}"
    topic = f"{name}.fresh"  # streams "fresh-..." -> aggregate type "fresh"
    seen: dict[int, float] = {}
    p50: list[float] = []
    p95: list[float] = []
    p99: list[float] = []
    rates: list[float] = []
    with kafka_cluster() as servers:
        relay = Relay(
            store,
            servers,
            RelayOptions(name=name, topics=TopicMapping(prefix=f"{name}.")),
        )
        stop = asyncio.Event()
        running = asyncio.create_task(relay.run(stop))
        stop_consumer = threading.Event()
        consumer = asyncio.create_task(
            asyncio.to_thread(_consume, servers, topic, seen, stop_consumer)
        )
        try:
            # Warm-up: the topic exists and the consumer is assigned and reading.
            await _write(store, 1, 0, {})
            await _until(
                lambda: 0 in seen, "the warm-up event was not consumed", running=[running, consumer]
            )
            for number in range(rounds):
                first = number * per_round + 1
                committed: dict[int, float] = {}
                rates.append(await _write(store, per_round, first, committed))
                last = first + per_round - 1
                await _until(
                    lambda first=first, last=last: all(s in seen for s in range(first, last + 1)),
                    "not every event reached the consumer",
                    running=[running, consumer],
                )
                lags = [(seen[s] - committed[s]) * 1000.0 for s in committed]
                p50.append(statistics.median(lags))
                p95.append(_percentile(lags, 0.95))
                p99.append(_percentile(lags, 0.99))
        finally:
            stop.set()
            stop_consumer.set()
            await asyncio.wait_for(running, timeout=30)
            await asyncio.wait_for(consumer, timeout=30)
    common: dict[str, Any] = {
        "events_per_round": per_round,
        "rounds": rounds,
        "target_rate": RATE,
        "achieved_rate": statistics.median(rates),
        "p95_ms": statistics.median(p95),
        "broker": broker_description(),
        "eventsourcing_note": "not measured in this case",
    }
    description = (
        f"append commit -> consumable (read_committed) on the relay's topic under a steady "
        f"{RATE:.0f} events/s (Relay as chronik relay runs it, at-least-once)"
    )
    rows = []
    for row_name, values in (("relay_freshness_p50", p50), ("relay_freshness_p99", p99)):
        row = CaseResult(
            name=row_name,
            unit="ms",
            kind="latency",
            group=GROUP_RELAY,
            description=description,
            raw_does="(none: reported, no target)",
            target_text=f"reported at {RATE:.0f}/s (no target)",
            extra=dict(common),
            repetitions=rounds,
        )
        row.chronik = Measurement(tuple(values))
        rows.append(row)
    return rows


CASES = (
    Case(
        "freshness",
        GROUP,
        freshness,
        summary="append -> visible in a Redis read model at a steady rate",
    ),
    Case(
        "relay_freshness",
        GROUP_RELAY,
        relay_freshness,
        summary="append -> consumable on the relay's Kafka topic at a steady rate",
    ),
)
