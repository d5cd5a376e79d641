"""Reading the whole global feed, decoded.

chronik: ``async for event in store.read_all()`` over a schema holding exactly
N events (appended 100 per transaction across N/100 streams); each item is a
``RecordedEvent`` with its ``data`` dict and ``Position``.  The feed pages by
1,000 and filters on the snapshot xmin (that is what makes it gap-safe).

raw: one ``SELECT <the same columns> FROM <the same chronik events table>
ORDER BY global_position`` and ``fetchall()`` on a plain connection: tuples,
jsonb parsed to dicts by psycopg.  Same rows, same server, no paging, no
visibility filter, no objects.

wire (the physical limit): the same SELECT, with the rows left in libpq's
result as the server sent them (``cursor.pgresult``), nothing converted to
Python; run in text and in binary format, and the faster one is reported
(``wire_format`` says which).

eventsourcing: ``recorder.select_notifications(start, limit=1000)`` pages over
its notification log (N events in 100-event aggregates) and
``app.mapper.to_domain_event(n)`` for each item.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from psycopg import sql

from eventstore import NewEvent, PostgresEventStore

from . import _peer as peer
from ._cases import Case, peer_application, peer_note
from ._context import BenchContext
from ._harness import CaseResult, Measurement, Round, Stopwatch, measure, per_second
from ._raw import SELECT_COLUMNS

GROUP = "feed"
BATCH = 100


async def seed_store(store: PostgresEventStore, events: int, batch: int = BATCH) -> None:
    for start in range(0, events, batch):
        size = min(batch, events - start)
        await store.append(
            f"acct-{uuid.uuid4().hex}",
            [NewEvent("Deposited", {"amount": start + i}) for i in range(size)],
            0,
        )


async def _chronik_round(store: PostgresEventStore, events: int) -> float:
    watch, count = Stopwatch(), 0
    with watch.running():
        async for _ in store.read_all():
            count += 1
    if count != events:
        raise RuntimeError(f"chronik feed returned {count} events, expected {events}")
    return per_second(count, watch.seconds)


async def _raw_round(connection: Any, query: sql.Composed, events: int) -> float:
    watch = Stopwatch()
    with watch.running():
        cursor = await connection.execute(query)
        rows = await cursor.fetchall()
    if len(rows) != events:
        raise RuntimeError(f"raw select returned {len(rows)} rows, expected {events}")
    return per_second(len(rows), watch.seconds)


async def _wire_round(connection: Any, query: sql.Composed, events: int, *, binary: bool) -> float:
    watch = Stopwatch()
    with watch.running():
        cursor = connection.cursor(binary=binary)
        await cursor.execute(query)
        # execute() has received every row into libpq's result; fetching is
        # what would decode them, and the limit is the transfer without that.
        delivered = cursor.pgresult.ntuples if cursor.pgresult is not None else 0
    if delivered != events:
        raise RuntimeError(f"wire select returned {delivered} rows, expected {events}")
    return per_second(delivered, watch.seconds)


def _faster_wire(measured: dict[str, Measurement]) -> str:
    """Keep the faster wire format as ``wire``; return its name."""
    text, binary = measured.pop("wire_text"), measured.pop("wire_binary")
    measured["wire"] = binary if binary.median >= text.median else text
    return "binary" if measured["wire"] is binary else "text"


def _peer_seed(app: Any, events: int) -> int:
    for _ in range(events // BATCH):
        peer.new_account(app, deposits=BATCH - 1, per_save=BATCH)
    return (events // BATCH) * BATCH


def _peer_round(app: Any, events: int) -> float:
    start = time.perf_counter()
    count = peer.read_feed(app)
    elapsed = time.perf_counter() - start
    if count != events:
        raise RuntimeError(f"eventsourcing log returned {count} events, expected {events}")
    return per_second(count, elapsed)


async def feed_read(context: BenchContext) -> list[CaseResult]:
    events = context.size(30_000, 300)
    store = await context.chronik_store("feed")
    await seed_store(store, events)
    connection = await context.raw_connection()
    query = sql.SQL("SELECT {} FROM {} ORDER BY global_position").format(
        sql.SQL(SELECT_COLUMNS), sql.Identifier(store.schema, "events")
    )
    rounds: dict[str, Round] = {
        "chronik": lambda: _chronik_round(store, events),
        "raw": lambda: _raw_round(connection, query, events),
        "wire_text": lambda: _wire_round(connection, query, events, binary=False),
        "wire_binary": lambda: _wire_round(connection, query, events, binary=True),
    }
    app = await peer_application(context, "feed_es")
    if app is not None:
        peer_events = await asyncio.to_thread(_peer_seed, app, events)
        rounds["eventsourcing"] = lambda: asyncio.to_thread(_peer_round, app, peer_events)
    measured = await measure(rounds, repetitions=context.repetitions, warmup=context.warmup)
    wire_format = _faster_wire(measured)
    result = CaseResult(
        name="feed_read",
        unit="events/s",
        kind="throughput",
        group=GROUP,
        description=f"read and decode the whole feed of {events} events",
        raw_does=(
            "one SELECT of the same columns from the same chronik table ORDER BY "
            "global_position, fetchall() into tuples (jsonb parsed)"
        ),
        target=1.0,
        target_eventsourcing=1.5,
        target_text=">= 1.0x raw, >= 1.5x es",
        extra={"events": events, "wire_format": wire_format},
    ).record(measured)
    peer_note(result)
    return [result]


CASES = (Case("feed_read", GROUP, feed_read, summary="read the whole feed decoded"),)
