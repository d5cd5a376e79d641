"""Members of one consumer group SIGKILLed mid-batch: the read model stays exact.

Three real processes share a topic's partitions; while they project, one of them
is killed (SIGKILL: no goodbye, no commit) at a random moment and replaced, a
dozen times.  Afterwards the Kafka-fed read model must equal a full rebuild from
the store: an event applied twice or lost would change a balance.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from kafka_support import applied, fresh_topic, publish, until_applied
from test_kafka_projection import seed_ledgers

from eventstore import PostgresEventStore, RecordedEvent
from projections import RedisReadModel, StoreFeedSource, rebuild
from projections.shipped import LEDGER_BALANCES

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("consumer_process.py")
KILLS = 10
NAME = LEDGER_BALANCES.name
MEMBERS = 3


def start_member(
    bootstrap: str, redis_url: str, prefix: str, group: str, topic: str
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), bootstrap, redis_url, prefix, group, topic],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(os.environ["KILL_LOG"], "ab")
        if "KILL_LOG" in os.environ
        else subprocess.DEVNULL,
    )


async def stop_cleanly(member: subprocess.Popen[bytes]) -> int:
    """SIGTERM once the member handles it; its exit code."""
    assert member.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(member.stdout.readline), 60)
    assert line.strip() == b"ready", line
    member.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(asyncio.to_thread(member.wait), 60)
    member.stdout.close()
    return code


async def test_killing_members_mid_batch_neither_loses_nor_doubles_events(
    store: PostgresEventStore,
    read_models: list[RedisReadModel],
    kafka_bootstrap: str,
    redis_url: str,
) -> None:
    await seed_ledgers(store, 30, 20)
    events: list[RecordedEvent] = [e async for e in store.read_all()]
    # Published in feed order, chunk by chunk, so each stream's events stay in order.
    ordered = sorted(events, key=lambda e: e.position)
    size = len(ordered) // (KILLS + 1) + 1
    chunks = [ordered[i : i + size] for i in range(0, len(ordered), size)]
    kafka_model, store_model = read_models
    topic, group = fresh_topic(), f"g-{uuid.uuid4().hex[:8]}"
    publish(kafka_bootstrap, topic, chunks[0])
    members = [
        start_member(kafka_bootstrap, redis_url, kafka_model.prefix, group, topic)
        for _ in range(MEMBERS)
    ]
    rng = random.Random(os.environ.get("CHRONIK_KILL_SEED", "12"))
    published = len(chunks[0])
    try:
        for chunk in chunks[1:]:
            before = await applied(kafka_model, NAME)
            publish(kafka_bootstrap, topic, chunk)
            published += len(chunk)
            # Kill while the group is working on this chunk: after it started.
            await until_applied(kafka_model, NAME, before + 1)
            await asyncio.sleep(rng.uniform(0, 0.05))  # a random moment, not a wait
            victim = rng.randrange(len(members))
            members[victim].send_signal(signal.SIGKILL)
            members[victim].wait()
            assert members[victim].stdout is not None
            members[victim].stdout.close()
            members[victim] = start_member(
                kafka_bootstrap, redis_url, kafka_model.prefix, group, topic
            )
        await until_applied(kafka_model, NAME, published)
    finally:
        codes = [await stop_cleanly(member) for member in members]
    assert codes == [0] * MEMBERS  # SIGTERM: left the group cleanly
    assert published == len(events)
    assert await applied(kafka_model, NAME) == len(events)  # nothing missing
    await rebuild(LEDGER_BALANCES, store_model, StoreFeedSource(store))
    assert await kafka_model.snapshot(LEDGER_BALANCES.name) == await store_model.snapshot(
        LEDGER_BALANCES.name
    )
