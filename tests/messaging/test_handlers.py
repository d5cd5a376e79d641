"""Plain handlers: events arrive upcast with their metadata; ``idempotent`` acts once
per event id, in the handler's own PostgreSQL transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import confluent_kafka
import pytest
from psycopg import sql

from aggregates.ledger import LEDGER_EVENTS, LEDGER_UPCASTERS, Deposited, Opened
from eventstore import Event, EventCodec, PostgresEventStore, RecordedEvent
from messaging import (
    CloudEventMode,
    HandlerConsumer,
    HandlerContext,
    PostgresIdempotency,
    encode_event,
    idempotent,
)

CODEC = EventCodec(LEDGER_EVENTS, LEDGER_UPCASTERS)
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def message(event: RecordedEvent, offset: int, mode: CloudEventMode) -> confluent_kafka.Message:
    record = encode_event(event, "chronik.ledger", "tests", mode)
    return confluent_kafka.Message(
        topic="chronik.ledger", partition=0, offset=offset, key=record.key, value=record.value,
        headers=record.headers,
    )  # fmt: skip


def legacy_events(stream: str) -> list[RecordedEvent]:
    """Release-1 events (old type, old schema) with a correlation id and trace context."""
    metadata = {"correlation_id": "corr-1", "causation_id": "cause-1", "traceparent": TRACE}
    now = datetime.now(UTC)
    return [
        RecordedEvent(stream, 1, (10, 1), uuid.uuid4(), "ledger.AccountOpened", 1,
                      {"holder": "ada", "currency": "EUR"}, metadata, now),
        RecordedEvent(stream, 2, (10, 2), uuid.uuid4(), "ledger.Deposited", 1,
                      {"amount": 12.5}, metadata, now),
    ]  # fmt: skip


@pytest.mark.parametrize("mode", list(CloudEventMode))
async def test_a_handler_gets_current_events_with_their_metadata(mode: CloudEventMode) -> None:
    seen: list[tuple[Event, HandlerContext]] = []

    async def handle(event: Event, context: HandlerContext) -> None:
        seen.append((event, context))

    consumer = HandlerConsumer("g", handle, CODEC)
    events = legacy_events("ledger-ada")
    await consumer.process([message(e, i, mode) for i, e in enumerate(events)])
    [(opened, first), (deposited, second)] = seen
    assert opened == Opened(owner="ada", currency="EUR", overdraft_limit=Decimal(0))
    assert isinstance(deposited, Deposited) and deposited.amount == Decimal("12.5")
    assert second.envelope.schema_version == Deposited.event_version
    assert (second.envelope.stream_id, second.envelope.version) == ("ledger-ada", 2)
    assert second.envelope.event_id == events[1].event_id
    assert (second.correlation_id, second.causation_id) == ("corr-1", "cause-1")
    assert second.traceparent == TRACE
    assert (first.topic, first.partition, first.offset, first.attempt) == (
        "chronik.ledger",
        0,
        0,
        1,
    )


async def test_an_idempotent_handler_acts_once_per_event_and_rolls_back_with_its_work(
    pg_store: PostgresEventStore,
) -> None:
    idempotency = PostgresIdempotency(pg_store, f"mailer-{uuid.uuid4().hex[:8]}")
    await idempotency.setup()
    table = sql.Identifier(pg_store.schema, f"sent_{uuid.uuid4().hex[:8]}")
    async with pg_store.connection() as connection:
        await connection.execute(sql.SQL("CREATE TABLE {} (stream text)").format(table))
        await connection.commit()
    failures = {"left": 1}

    async def send(event: Event, context: HandlerContext) -> None:
        await context.connection.execute(
            sql.SQL("INSERT INTO {} VALUES (%s)").format(table), (context.envelope.stream_id,)
        )
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("mail server down")  # after the write: it must roll back

    consumer = HandlerConsumer("mailer", idempotent(send, idempotency), CODEC)
    consumer.policy = consumer.policy.__class__(attempts=3, initial_delay=0)
    events = legacy_events(f"ledger-{uuid.uuid4().hex[:6]}")
    batch = [message(e, i, CloudEventMode.BINARY) for i, e in enumerate(events)]
    await consumer.process(batch)
    await consumer.process(batch)  # redelivered: a no-op
    await consumer.process(list(reversed(batch)))
    async with pg_store.connection() as connection:
        cursor = await connection.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
        row: Any = await cursor.fetchone()
    assert row[0] == 2  # once per event, the failed attempt rolled back
    assert all([await idempotency.processed(e.event_id) for e in events])
    assert await idempotency.purge() == 0  # within the retention window
    assert await idempotency.purge(older_than=timedelta(0)) == 2
    assert not await idempotency.processed(events[0].event_id)
