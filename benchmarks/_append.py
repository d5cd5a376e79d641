"""Appends: 1 event per transaction, 10 per transaction, 4 concurrent writers.

Every round writes to fresh streams, so all three implementations create one
stream and then append to it; throughput is events per second of wall time.

chronik: ``store.append(stream, [NewEvent("Deposited", {"amount": i})],
expected_version=<exact>)`` on the store's pool (the exact expected version is
what a repository save does).

raw: one ``INSERT INTO events (...) VALUES (...)[, (...) x10]`` per transaction
on a plain autocommit connection, into a table with chronik's columns and
indexes (see ``_raw``), version counted on the client.

eventsourcing: ``account.deposit(i)`` then ``app.save(account)`` (1 or 10
pending events per save), default settings (``_peer``).

4 writers: four tasks, each appending 1 event per transaction to its own stream
(chronik: four tasks on the store's pool; raw: four connections; eventsourcing:
four threads on its pool).  Afterwards chronik's
feed is read back: every event appended in every round (warm-up included) must
be there exactly once and in stream order (``skipped`` and ``duplicates``, both
must be 0).  chronik's appends may be coalesced (``coalesce_appends``, on by
default): ``mean_coalesced_batch`` says how many appends a statement carried,
``appends_alone`` how many took the single path.  One more untimed round runs
with a live ``subscribe()`` follower next to the writers, which must also
receive every event (``skipped_live``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections import Counter
from collections.abc import AsyncGenerator
from typing import Any, cast

from eventstore import NewEvent, Position, PostgresEventStore, RecordedEvent
from eventstore._pg_coalesce import CoalesceStats

from . import _peer as peer
from ._cases import Case, peer_application, peer_note
from ._context import BenchContext
from ._harness import CaseResult, Round, Stopwatch, cpu_per_event, measure, per_second
from ._raw import RawEvents

GROUP = "append"
WRITERS = 4


def _event(amount: int) -> NewEvent:
    return NewEvent("Deposited", {"amount": amount})


async def _chronik_sequential(
    store: PostgresEventStore, transactions: int, per_transaction: int, cpu: list[float]
) -> float:
    stream, version = f"acct-{uuid.uuid4().hex}", 0
    watch = Stopwatch()
    with watch.running():
        for _ in range(transactions):
            batch = [_event(version + i) for i in range(per_transaction)]
            result = await store.append(stream, batch, version)
            version = result.version
    events = transactions * per_transaction
    cpu.append(watch.cpu_seconds / events * 1e6)
    return per_second(events, watch.seconds)


async def _raw_sequential(
    raw: RawEvents, connection: Any, transactions: int, per_transaction: int
) -> float:
    stream, version = f"acct-{uuid.uuid4().hex}", 0
    watch = Stopwatch()
    with watch.running():
        for _ in range(transactions):
            batch = [("Deposited", {"amount": version + i}) for i in range(per_transaction)]
            await raw.append(connection, stream, version + 1, batch)
            version += per_transaction
    return per_second(transactions * per_transaction, watch.seconds)


def _peer_sequential(app: Any, transactions: int, per_transaction: int) -> float:
    account = peer.new_account(app)
    start = time.perf_counter()
    count = peer.append(app, account, transactions, per_transaction)
    return per_second(count, time.perf_counter() - start)


async def _sequential_case(
    context: BenchContext, name: str, per_transaction: int, transactions: int, target: float
) -> list[CaseResult]:
    store = await context.chronik_store(name)
    raw = RawEvents(context.schema(f"{name}_raw"))
    connection = await context.raw_connection()
    await raw.create(connection)
    app = await peer_application(context, f"{name}_es")
    cpu: list[float] = []
    rounds: dict[str, Round] = {
        "chronik": lambda: _chronik_sequential(store, transactions, per_transaction, cpu),
        "raw": lambda: _raw_sequential(raw, connection, transactions, per_transaction),
    }
    if app is not None:
        rounds["eventsourcing"] = lambda: asyncio.to_thread(
            _peer_sequential, app, transactions, per_transaction
        )
    measured = await measure(rounds, repetitions=context.repetitions, warmup=context.warmup)
    result = CaseResult(
        name=name,
        unit="events/s",
        kind="throughput",
        group=GROUP,
        description=(
            f"{transactions} sequential transactions of {per_transaction} event(s) "
            "to one fresh stream per round"
        ),
        raw_does=(
            f"one INSERT ... VALUES of {per_transaction} row(s) per autocommit statement "
            "into a table with chronik's columns and indexes; no streams row, no triggers"
        ),
        target=target,
        target_text=f">= {target:.1f}x raw",
        extra={
            "events_per_round": transactions * per_transaction,
            "chronik_cpu_us_per_event": cpu_per_event(cpu, context.warmup),
        },
    ).record(measured)
    peer_note(result)
    return [result]


async def append_1(context: BenchContext) -> list[CaseResult]:
    return await _sequential_case(context, "append_1", 1, context.size(1000, 20), target=0.9)


async def append_10(context: BenchContext) -> list[CaseResult]:
    return await _sequential_case(context, "append_10", 10, context.size(200, 3), target=0.7)


# -- four writers --------------------------------------------------------------


class _Written:
    """What the chronik writers appended: stream -> number of events."""

    def __init__(self) -> None:
        self.streams: dict[str, int] = {}


async def _chronik_writer(store: PostgresEventStore, stream: str, events: int) -> None:
    for version in range(events):
        await store.append(stream, [_event(version)], version)


async def _chronik_writers(
    store: PostgresEventStore,
    per_writer: int,
    written: _Written,
    prefix: str = "w",
    cpu: list[float] | None = None,
) -> float:
    streams = [f"{prefix}{n}-{uuid.uuid4().hex}" for n in range(WRITERS)]
    written.streams.update(dict.fromkeys(streams, per_writer))
    watch = Stopwatch()
    with watch.running():
        await asyncio.gather(*(_chronik_writer(store, s, per_writer) for s in streams))
    if cpu is not None:
        cpu.append(watch.cpu_seconds / (WRITERS * per_writer) * 1e6)
    return per_second(WRITERS * per_writer, watch.seconds)


async def _raw_writers(raw: RawEvents, connections: list[Any], per_writer: int) -> float:
    async def writer(connection: Any) -> None:
        stream = f"w-{uuid.uuid4().hex}"
        for version in range(1, per_writer + 1):
            await raw.append(connection, stream, version, [("Deposited", {"amount": version})])

    watch = Stopwatch()
    with watch.running():
        await asyncio.gather(*(writer(c) for c in connections))
    return per_second(WRITERS * per_writer, watch.seconds)


def _peer_writers(app: Any, per_writer: int) -> float:
    from concurrent.futures import ThreadPoolExecutor

    accounts = [peer.new_account(app) for _ in range(WRITERS)]
    with ThreadPoolExecutor(WRITERS) as pool:
        start = time.perf_counter()
        counts = list(pool.map(lambda a: peer.append(app, a, per_writer, 1), accounts))
        elapsed = time.perf_counter() - start
    return per_second(sum(counts), elapsed)


async def _check_feed(
    store: PostgresEventStore, after: Position | None, written: _Written
) -> dict[str, int]:
    """Read the feed back: every written event exactly once, each stream in order."""
    seen: Counter[tuple[str, int]] = Counter()
    last_version: dict[str, int] = {}
    out_of_order = 0
    async for recorded in store.read_all(after=after):
        if recorded.stream_id not in written.streams:
            continue
        seen[(recorded.stream_id, recorded.version)] += 1
        if recorded.version <= last_version.get(recorded.stream_id, 0):
            out_of_order += 1
        last_version[recorded.stream_id] = recorded.version
    expected = {(s, v) for s, n in written.streams.items() for v in range(1, n + 1)}
    return {
        "expected": len(expected),
        "skipped": len(expected - seen.keys()),
        "duplicates": sum(count - 1 for count in seen.values()),
        "out_of_order": out_of_order,
    }


async def _live_check(store: PostgresEventStore, per_writer: int) -> dict[str, int]:
    """One untimed round with a live follower: it must receive every event once."""
    prefix = f"live-{uuid.uuid4().hex[:8]}-"
    after = await store.head()
    expected = WRITERS * per_writer
    seen: Counter[tuple[str, int]] = Counter()

    async def follow() -> None:
        # subscribe() is an async generator: close it (and its LISTEN connection) here.
        live = cast(AsyncGenerator[RecordedEvent, None], store.subscribe(after, poll_interval=0.05))
        async with contextlib.aclosing(live) as feed:
            async for recorded in feed:
                if recorded.stream_id.startswith(prefix):
                    seen[(recorded.stream_id, recorded.version)] += 1
                    if len(seen) >= expected:
                        return

    follower = asyncio.create_task(follow())
    await _chronik_writers(store, per_writer, _Written(), prefix)
    # A follower that misses an event never gets there; that is what we count.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(follower, timeout=30)
    return {
        "expected_live": expected,
        "skipped_live": expected - len(seen),
        "duplicates_live": sum(count - 1 for count in seen.values()),
    }


def _coalescing(store: PostgresEventStore) -> CoalesceStats | None:
    coalescer = getattr(store, "_coalescer", None)  # None: coalescing is off
    return None if coalescer is None else dataclasses.replace(coalescer.stats)


def _coalescing_since(
    before: CoalesceStats | None, after: CoalesceStats | None
) -> dict[str, float | int]:
    """How chronik's appends ran in the rounds (warm-up included): alone, or
    carried by coalesced statements."""
    if before is None or after is None:
        return {"coalesced": 0}
    statements = after.statements - before.statements
    carried = after.carried - before.carried
    return {
        "coalesced": 1,
        "appends_alone": after.alone - before.alone,
        "coalesced_statements": statements,
        # Of those, the UPDATE-only form (every append to an existing stream).
        "existing_only_statements": after.existing_only - before.existing_only,
        "mean_coalesced_batch": round(carried / statements, 2) if statements else 0.0,
        "handed_back": after.handed_back - before.handed_back,
    }


async def append_4_writers(context: BenchContext) -> list[CaseResult]:
    per_writer = context.size(300, 10)
    store = await context.chronik_store("writers", pool_size=WRITERS + 2)
    raw = RawEvents(context.schema("writers_raw"))
    connections = [await context.raw_connection() for _ in range(WRITERS)]
    await raw.create(connections[0])
    app = await peer_application(context, "writers_es")
    written = _Written()
    start = await store.head()
    before = _coalescing(store)
    cpu: list[float] = []
    rounds: dict[str, Round] = {
        "chronik": lambda: _chronik_writers(store, per_writer, written, cpu=cpu),
        "raw": lambda: _raw_writers(raw, connections, per_writer),
    }
    if app is not None:
        rounds["eventsourcing"] = lambda: asyncio.to_thread(_peer_writers, app, per_writer)
    measured = await measure(rounds, repetitions=context.repetitions, warmup=context.warmup)
    coalescing = _coalescing_since(before, _coalescing(store))
    check = await _check_feed(store, start, written)
    live = await _live_check(store, per_writer)
    result = CaseResult(
        name="append_4_writers",
        unit="events/s",
        kind="throughput",
        group=GROUP,
        description=(
            f"{WRITERS} concurrent writers, each {per_writer} transactions of 1 event "
            "to its own stream, own connection"
        ),
        raw_does=(
            f"{WRITERS} autocommit connections, each one single-row INSERT per transaction "
            "into a table with chronik's columns and indexes"
        ),
        target=0.8,
        target_text=">= 0.8x raw, 0 skipped",
        extra={
            **check,
            **live,
            **coalescing,
            "per_writer": per_writer,
            "chronik_cpu_us_per_event": cpu_per_event(cpu, context.warmup),
        },
    ).record(measured)
    peer_note(result)
    return [result]


CASES = (
    Case("append_1", GROUP, append_1, summary="append 1 event/transaction, sequential"),
    Case("append_10", GROUP, append_10, summary="append 10 events/transaction, sequential"),
    Case("append_4_writers", GROUP, append_4_writers, summary="4 concurrent writers"),
)
