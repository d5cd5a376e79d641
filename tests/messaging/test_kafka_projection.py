"""A projection fed by a consumer group into Redis equals the store-fed rebuild."""

from __future__ import annotations

import asyncio
import uuid

from kafka_support import fresh_topic, publish, until_applied

from aggregates import Repository
from aggregates.ledger import Ledger
from eventstore import PostgresEventStore
from messaging import ConsumerOptions, KafkaProjection, consume, consumer_lag
from projections import RedisReadModel, StoreFeedSource, rebuild
from projections.shipped import LEDGER_BALANCES

FAST = ConsumerOptions(batch_size=200, poll_timeout=0.1, session_timeout_ms=6000)


async def seed_ledgers(store: PostgresEventStore, ledgers: int, moves: int) -> None:
    repository = Repository(store, [Ledger])
    for n in range(ledgers):
        stream = f"ledger-{uuid.uuid4().hex[:8]}"
        await repository.create(Ledger, stream, lambda ledger, n=n: ledger.open(f"o{n % 3}", "EUR"))
        for m in range(moves):
            await repository.update(
                Ledger, stream, lambda ledger, m=m: ledger.deposit(f"{m + 1}.25")
            )


async def all_events(store: PostgresEventStore) -> list:  # type: ignore[type-arg]
    return [event async for event in store.read_all()]


async def test_one_member_projects_a_topic_like_the_store_feed(
    store: PostgresEventStore, read_models: list[RedisReadModel], kafka_bootstrap: str
) -> None:
    await seed_ledgers(store, 6, 4)
    events = await all_events(store)
    topic = fresh_topic()
    publish(kafka_bootstrap, topic, events)
    kafka_model, store_model = read_models
    stop = asyncio.Event()
    processor = KafkaProjection(LEDGER_BALANCES, kafka_model)
    member = asyncio.create_task(
        consume(
            processor,
            bootstrap=kafka_bootstrap,
            group=f"g-{topic}",
            topics=[topic],
            stop=stop,
            options=FAST,
        )
    )
    await until_applied(kafka_model, LEDGER_BALANCES.name, len(events))
    stop.set()
    await member
    # The group's commits (sent without waiting; the read model keeps the offsets
    # that count) have all landed once the member has left: no lag is reported.
    lag = await consumer_lag(kafka_bootstrap, f"g-{topic}", [topic])
    assert lag and all(p.events == 0 and (p.committed or 0) == p.high_watermark for p in lag)
    await rebuild(LEDGER_BALANCES, store_model, StoreFeedSource(store))
    assert await kafka_model.snapshot(LEDGER_BALANCES.name) == await store_model.snapshot(
        LEDGER_BALANCES.name
    )
