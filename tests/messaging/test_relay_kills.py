"""SIGKILL the relay at random moments while writers append; nothing is lost.

At-least-once: after every kill a new relay process resumes from the saved
checkpoint; consuming everything afterwards finds every event, and per key the
versions only ever repeat (redelivery) or go up by one (never skip, never
jump back except to redeliver).

Exactly-once: the same, counting only messages of transactions whose
checkpoint record is in the checkpoint topic.  The relay produces that record
after every message of its transaction is delivered, so on librdkafka's mock
cluster (which shows aborted records to read_committed consumers, see
DESIGN.md) "its checkpoint is in the log" is the commit test that matches what
the relay resumes from; there each event appears exactly once, in order.
With KAFKA_BOOTSTRAP_SERVERS set, a read_committed consumer must see the
same without that filter.
"""

from __future__ import annotations

import asyncio
import functools
import random
import uuid
from collections import defaultdict

from support.kafka import REAL_BROKER, Consumed, consume, until_true
from support.projection_runs import last_committed
from support.relay_process import start_relay

from eventstore import NewEvent, PostgresEventStore, RecordedEvent
from messaging import RelayCheckpoint, relay_status

KILLS_AT_LEAST_ONCE = 22
KILLS_EXACTLY_ONCE = 20
STREAMS = [f"ledger-{i}" for i in range(6)] + [f"order-{i}" for i in range(4)]


async def write(store: PostgresEventStore, stop: asyncio.Event, tag: str) -> None:
    rng = random.Random(tag)
    while not stop.is_set():
        stream = f"{rng.choice(STREAMS)}-{tag}"
        await store.append(
            stream, [NewEvent("x.Happened", {"n": i}) for i in range(rng.randint(1, 3))]
        )
        # Paced (load shaping, not a wait): a relay restarted 20 times in a row
        # should still have a backlog it can clear in seconds at the end.
        await asyncio.sleep(0.01)


async def published(store: PostgresEventStore) -> int:
    found = await relay_status(store, "test")
    return found[0].published_events if found else 0


async def published_beyond(store: PostgresEventStore, before: int) -> bool:
    return await published(store) > before


async def kill_repeatedly(
    store: PostgresEventStore, bootstrap: str, prefix: str, mode: str, kills: int
) -> None:
    tag = uuid.uuid4().hex[:6]
    stop = asyncio.Event()
    writers = [asyncio.create_task(write(store, stop, f"{tag}{w}")) for w in range(2)]
    rng = random.Random(tag)
    try:
        for _ in range(kills):
            before = await published(store)
            process = start_relay(store.dsn, store.schema, bootstrap, prefix, mode)
            try:
                # Kill only once it has published something: each kill then lands
                # mid-flow (reading, sending, committing), not during start-up.
                await until_true(functools.partial(published_beyond, store, before))
                await asyncio.sleep(rng.uniform(0, 0.03))  # the random moment, not a wait
            finally:
                process.kill()  # SIGKILL
                await asyncio.to_thread(process.join)
    finally:
        stop.set()
        await asyncio.gather(*writers)
    # A last relay catches up and is stopped cleanly.
    process = start_relay(store.dsn, store.schema, bootstrap, prefix, mode)
    try:
        # The writers are done: the last committed event is final (the feed's head
        # may be held back by a transaction open elsewhere, and the relay goes past it).
        head = await last_committed(store)

        async def caught_up() -> bool:
            found = await relay_status(store, "test")
            return bool(found) and found[0].checkpoint == head

        await until_true(caught_up)
    finally:
        process.terminate()  # SIGTERM: a clean stop
        await asyncio.to_thread(process.join)
        assert process.exitcode == 0


async def stored(store: PostgresEventStore) -> dict[str, list[RecordedEvent]]:
    by_stream: dict[str, list[RecordedEvent]] = defaultdict(list)
    async for event in store.read_all():
        by_stream[event.stream_id].append(event)
    return by_stream


def versions_by_key(messages: list[Consumed]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = defaultdict(list)
    for message in messages:
        assert message.key is not None
        found[message.key.decode()].append(int(message.header("ce_chronikversion") or 0))
    return found


async def test_at_least_once_survives_kills(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    await kill_repeatedly(
        relay_store, kafka_bootstrap, prefix, "at-least-once", KILLS_AT_LEAST_ONCE
    )
    expected = await stored(relay_store)
    messages = consume(kafka_bootstrap, [prefix + "ledger", prefix + "order", prefix + "seed"])
    got = versions_by_key(messages)
    assert set(got) == set(expected)
    for stream, events in expected.items():
        seen = got[stream]
        highest = 0
        for version in seen:
            # A redelivery repeats a version already seen; a new one is the next.
            assert version <= highest or version == highest + 1, (stream, seen)
            highest = max(highest, version)
        assert highest == len(events), stream
    assert len(messages) >= sum(len(e) for e in expected.values())


async def test_exactly_once_survives_kills(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    await kill_repeatedly(relay_store, kafka_bootstrap, prefix, "exactly-once", KILLS_EXACTLY_ONCE)
    expected = await stored(relay_store)
    topics = [prefix + "ledger", prefix + "order", prefix + "seed"]
    records = consume(kafka_bootstrap, [prefix + "checkpoints"])
    checkpoints = [RelayCheckpoint.from_json(r.value or b"") for r in records]
    committed = {c.transaction for c in checkpoints}
    assert checkpoints[-1].events == await last_committed(relay_store)
    messages = [m for m in consume(kafka_bootstrap, topics) if m.header("chronik_txn") in committed]
    got = versions_by_key(messages)
    assert {k: v for k, v in got.items()} == {
        stream: [e.version for e in events] for stream, events in expected.items()
    }
    # The checkpoints themselves only move forward and count what they cover.
    assert [c.events for c in checkpoints] == sorted(c.events for c in checkpoints)
    assert checkpoints[-1].published_events == sum(len(e) for e in expected.values())
    if REAL_BROKER:
        # A real broker hides aborted transactions: no filter needed.
        committed_view = consume(kafka_bootstrap, topics, isolation="read_committed")
        assert versions_by_key(committed_view) == got
