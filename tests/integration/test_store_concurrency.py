"""The Postgres store under real concurrency: many connections, threads, open transactions.

No test here asserts anything about speed.  Waits are bounded only so that a lost
event or a deadlock fails the test instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from psycopg import AsyncConnection, AsyncRawCursor

from eventstore import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    ConcurrencyError,
    NewEvent,
    Position,
    PostgresEventStore,
    RecordedEvent,
    StreamOrderConflict,
)
from eventstore._pg_append import _CURSOR_ATTRIBUTE, AppendStatements, append_batch
from eventstore._validation import DEFAULT_MAX_EVENT_BYTES, prepare_batch

HANG_GUARD = 60.0


def events(count: int, **data: Any) -> list[NewEvent]:
    return [
        NewEvent("conc.Happened", {"i": i, **data}, event_id=uuid.uuid4()) for i in range(count)
    ]


async def collect(source: AsyncIterator[RecordedEvent]) -> list[RecordedEvent]:
    return [event async for event in source]


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[PostgresEventStore]:
    """A store of its own (schema and pool), so the whole feed is this test's."""
    store = await PostgresEventStore.connect(
        pg_dsn, schema=f"t_{uuid.uuid4().hex[:12]}", pool_size=12
    )
    yield store
    await store.close()


async def wait_until_blocked(store: PostgresEventStore, count: int) -> None:
    """Until ``count`` backends on this schema wait for a lock (they are truly in flight)."""
    query = """
        SELECT count(*) FROM pg_stat_activity
         WHERE wait_event_type = 'Lock' AND position(%s in query) > 0
    """
    async with store.connection() as connection:
        for _ in range(int(HANG_GUARD / 0.01)):
            row = await (await connection.execute(query, (f'"{store.schema}"',))).fetchone()
            if row is not None and row[0] >= count:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"{count} appenders never queued up on the lock")


# -- writers and a live reader ----------------------------------------------------


@dataclass
class Committed:
    """What the writers know they committed: event id -> (stream, position)."""

    events: dict[uuid.UUID, tuple[str, Position]] = field(default_factory=dict)

    def add(self, stream_id: str, batch: Sequence[NewEvent], result: AppendResult) -> None:
        assert len(result.positions) == len(batch)
        for event, position in zip(batch, result.positions, strict=True):
            assert event.event_id is not None and event.event_id not in self.events
            self.events[event.event_id] = (stream_id, position)


async def own_path_writer(
    store: PostgresEventStore, name: str, shared: list[str], committed: Committed
) -> None:
    """Exact expected versions on its own stream, ANY on the shared ones."""
    mine, version = f"{name}-own", 0
    rng = random.Random(name)
    for round_ in range(25):
        batch = events(rng.randint(1, 3), writer=name, round=round_)
        result = await store.append(mine, batch, version)
        version = result.version
        committed.add(mine, batch, result)
        target = rng.choice(shared)
        batch = events(rng.randint(1, 2), writer=name, round=round_)
        committed.add(target, batch, await store.append(target, batch, ANY))


def thread_writer(
    dsn: str, schema: str, name: str, shared: list[str], committed: Committed
) -> None:
    """A writer with its own thread, event loop and pool: parallel in Python too."""

    async def write() -> None:
        async with await PostgresEventStore.connect(
            dsn, schema=schema, pool_size=2, create_schema=False
        ) as own_store:
            await own_path_writer(own_store, name, shared, committed)

    asyncio.run(write())


async def transaction_writer(
    store: PostgresEventStore, name: str, shared: list[str], committed: Committed
) -> None:
    """Appends inside its own transactions that stay open a while, then commit.

    The shared stream comes first, so the transaction holds its row while it waits:
    other writers queue behind it and commits land out of position order.
    """
    rng = random.Random(name)
    for round_ in range(10):
        for _attempt in range(100):
            pending: list[tuple[str, list[NewEvent], AppendResult]] = []
            try:
                async with store.connection() as connection, connection.transaction():
                    for stream_id in (rng.choice(shared), f"{name}-own"):
                        batch = events(rng.randint(1, 3), writer=name, round=round_)
                        pending.append(
                            (
                                stream_id,
                                batch,
                                await store.append(stream_id, batch, ANY, connection=connection),
                            )
                        )
                        await asyncio.sleep(rng.uniform(0, 0.01))
            except StreamOrderConflict:
                continue  # documented: retry the whole transaction
            break
        else:
            raise AssertionError(f"{name} lost the stream order guard 100 times in a row")
        for stream_id, batch, result in pending:
            committed.add(stream_id, batch, result)


async def long_transaction_writer(
    store: PostgresEventStore,
    committed: Committed,
    appended: asyncio.Event,
    seen_before_commit: list[Position],
) -> None:
    """Takes a low position first and commits only after others committed many events."""
    stream_id = "long-own"
    async with store.connection() as connection, connection.transaction():
        batch = events(2, writer="long")
        result = await store.append(stream_id, batch, NO_STREAM, connection=connection)
        appended.set()
        # Thread writers count too, and they cannot set an asyncio.Event of this loop.
        async with asyncio.timeout(HANG_GUARD):
            while len(committed.events) < 150:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        seen_before_commit.extend(p for _, p in list(committed.events.values()))
    committed.add(stream_id, batch, result)


async def test_writers_and_a_live_reader(store: PostgresEventStore, pg_dsn: str) -> None:
    shared = ["shared-0", "shared-1", "shared-2"]
    committed = Committed()
    sentinel = NewEvent("conc.Sentinel", {}, event_id=uuid.uuid4())
    received: list[RecordedEvent] = []

    async def follow() -> None:
        subscription = store.subscribe(page_size=50, poll_interval=0.05)
        async with contextlib.aclosing(subscription):
            async for event in subscription:
                received.append(event)
                if event.event_id == sentinel.event_id:
                    return

    reader = asyncio.create_task(follow())
    long_appended = asyncio.Event()
    seen_before_commit: list[Position] = []
    long_writer = asyncio.create_task(
        long_transaction_writer(store, committed, long_appended, seen_before_commit)
    )
    await asyncio.wait_for(long_appended.wait(), HANG_GUARD)
    await asyncio.gather(
        *(own_path_writer(store, f"task-{n}", shared, committed) for n in range(4)),
        *(
            asyncio.to_thread(thread_writer, pg_dsn, store.schema, f"thread-{n}", shared, committed)
            for n in range(2)
        ),
        *(transaction_writer(store, f"tx-{n}", shared, committed) for n in range(2)),
    )
    await asyncio.wait_for(long_writer, HANG_GUARD)
    await store.append("sentinel", [sentinel])
    await asyncio.wait_for(reader, HANG_GUARD)

    # The scenario that trips a bigserial feed did happen: the long transaction
    # committed events below positions that other transactions had committed before it.
    long_positions = [p for s, p in committed.events.values() if s == "long-own"]
    assert max(p.global_position for p in seen_before_commit) > max(
        p.global_position for p in long_positions
    )

    delivered = [event for event in received if event.event_id != sentinel.event_id]
    assert received[-1].event_id == sentinel.event_id
    # Exactly once: nothing missing, nothing twice.
    counts = Counter(event.event_id for event in delivered)
    assert counts.most_common(1)[0][1] == 1
    assert set(counts) == set(committed.events)
    # Where each writer was told its events went.
    assert all(committed.events[e.event_id] == (e.stream_id, e.position) for e in delivered)
    # In feed order, and each stream in version order without gaps.
    assert [e.position for e in received] == sorted({e.position for e in received})
    per_stream: dict[str, list[int]] = defaultdict(list)
    for event in delivered:
        per_stream[event.stream_id].append(event.version)
    assert all(versions == list(range(1, len(versions) + 1)) for versions in per_stream.values())
    for stream_id, versions in per_stream.items():
        assert await store.stream_version(stream_id) == len(versions)
    assert await collect(store.read_all()) == received


# -- optimistic concurrency ---------------------------------------------------------


async def _racing_appends(
    store: PostgresEventStore, stream_id: str, expected: Any, writers: int
) -> tuple[list[tuple[list[NewEvent], AppendResult]], list[ConcurrencyError]]:
    async def attempt(n: int) -> tuple[list[NewEvent], AppendResult]:
        batch = events(1 + n % 3, writer=n)
        return batch, await store.append(stream_id, batch, expected)

    outcomes = await asyncio.gather(*(attempt(n) for n in range(writers)), return_exceptions=True)
    wins = [o for o in outcomes if isinstance(o, tuple)]
    losses = [o for o in outcomes if isinstance(o, ConcurrencyError)]
    assert len(wins) + len(losses) == writers, outcomes
    return wins, losses


@pytest.mark.parametrize("round_", range(4))
async def test_one_of_many_writers_expecting_the_same_version_wins(
    store: PostgresEventStore, round_: int
) -> None:
    stream_id = f"race-{round_}"
    await store.append(stream_id, events(3))
    # A caller's open transaction that appended to the stream holds it (its queue
    # lock and row), so every writer is in flight at once when it rolls back.  (A
    # bare row lock is not enough: a coalesced append queued behind it would hold
    # the others back in the client instead of on the server.)
    async with store.connection() as locker:
        await locker.execute("BEGIN")
        await store.append(stream_id, events(1), 3, connection=locker)
        race = asyncio.ensure_future(_racing_appends(store, stream_id, 3, writers=8))
        await wait_until_blocked(store, 8)
        await locker.execute("ROLLBACK")
        wins, losses = await asyncio.wait_for(race, HANG_GUARD)
    assert len(wins) == 1 and len(losses) == 7
    [(batch, result)] = wins
    assert result.version == 3 + len(batch)
    assert all(
        (e.stream_id, e.expected, e.actual) == (stream_id, 3, result.version) for e in losses
    )
    assert not any(isinstance(e, StreamOrderConflict) for e in losses)
    stored = await collect(store.read_stream(stream_id, 4))
    assert [e.event_id for e in stored] == [e.event_id for e in batch]


@pytest.mark.parametrize("round_", range(4))
async def test_one_of_many_writers_creating_a_stream_wins(
    store: PostgresEventStore, round_: int
) -> None:
    stream_id = f"create-{round_}"
    # A caller's open transaction creating the stream makes every writer wait on it;
    # rolling it back lets them all race for the insert at once.
    async with store.connection() as locker:
        await locker.execute("BEGIN")
        await store.append(stream_id, events(1), NO_STREAM, connection=locker)
        race = asyncio.ensure_future(_racing_appends(store, stream_id, NO_STREAM, writers=8))
        await wait_until_blocked(store, 8)
        await locker.execute("ROLLBACK")
        wins, losses = await asyncio.wait_for(race, HANG_GUARD)
    assert len(wins) == 1 and len(losses) == 7
    [(batch, result)] = wins
    assert all((e.expected, e.actual) == (NO_STREAM, result.version) for e in losses)
    assert [e.event_id for e in await collect(store.read_stream(stream_id))] == [
        e.event_id for e in batch
    ]


@pytest.mark.parametrize("expected", [ANY, NO_STREAM])
async def test_racing_retries_of_one_batch_store_it_once(
    store: PostgresEventStore, expected: Any
) -> None:
    stream_id = f"retry-{uuid.uuid4().hex[:8]}"
    batch = events(3)
    results = await asyncio.gather(*(store.append(stream_id, batch, expected) for _ in range(8)))
    assert len(set(results)) == 1
    assert results[0].version == 3
    assert [e.event_id for e in await collect(store.read_all())] == [e.event_id for e in batch]


# -- the stream order guard ---------------------------------------------------------


@pytest.mark.parametrize("expected_kind", ["any", "exact"])
async def test_an_older_transaction_cannot_append_behind_a_newer_one(
    store: PostgresEventStore, expected_kind: str
) -> None:
    stream_id = f"order-{uuid.uuid4().hex[:8]}"
    await store.append(stream_id, events(1))
    async with store.connection() as older:
        await older.execute("BEGIN")
        row = await (await older.execute("SELECT pg_current_xact_id()::text::bigint")).fetchone()
        assert row is not None
        older_xid = row[0]
        newer = await store.append(stream_id, events(1))  # commits with a newer xid
        assert newer.positions[0].transaction_id > older_xid
        expected = ANY if expected_kind == "any" else 2
        with pytest.raises(StreamOrderConflict) as caught:
            await store.append(stream_id, events(1), expected, connection=older)
        error = caught.value
        assert isinstance(error, ConcurrencyError)
        assert (error.stream_id, error.expected, error.actual) == (stream_id, expected, 2)
        assert "retry" in str(error)
        # The caller's transaction survived (savepoint) and can still do other work.
        elsewhere = await store.append(f"{stream_id}-other", events(1), connection=older)
        await older.execute("COMMIT")
    assert elsewhere.positions[0].transaction_id == older_xid
    assert await store.stream_version(stream_id) == 2
    # A retry in a new transaction goes through, and the feed keeps stream order.
    async with store.connection() as retry, retry.transaction():
        await store.append(stream_id, events(1), expected, connection=retry)
    feed = [e for e in await collect(store.read_all()) if e.stream_id == stream_id]
    assert [e.version for e in feed] == [1, 2, 3]


class _OlderFirstAttempt(AsyncRawCursor[Any]):
    """The append cursor of a store connection whose first append attempt runs in an
    *older* transaction.

    It opens a transaction and takes its id, lets ``interloper`` append to the stream
    and commit (with a newer id), and only then sends the append statement: exactly
    the race the order guard exists for, made deterministic.
    """

    def __init__(self, connection: AsyncConnection[Any], interloper: Any) -> None:
        super().__init__(connection)
        self.interloper = interloper
        self.attempts = 0

    async def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
        self.attempts += 1
        if self.attempts > 1:
            return await super().execute(query, params, **options)
        async with self.connection.transaction():
            await self.connection.execute("SELECT pg_current_xact_id()")
            await self.interloper()
            return await super().execute(query, params, **options)


async def test_the_stores_own_append_retries_past_the_order_guard(
    store: PostgresEventStore,
) -> None:
    stream_id = f"order-{uuid.uuid4().hex[:8]}"
    await store.append(stream_id, events(1))
    statements = AppendStatements(store.schema)
    batch = events(2)
    prepared = prepare_batch(stream_id, batch, DEFAULT_MAX_EVENT_BYTES)
    interloper_result: list[AppendResult] = []

    async def interloper() -> None:
        interloper_result.append(await store.append(stream_id, events(1)))

    async with store.connection() as connection:
        # Installed as the connection's append cursor (the one append_batch keeps).
        wrapped = _OlderFirstAttempt(connection, interloper)
        setattr(connection, _CURSOR_ATTRIBUTE, wrapped)
        result = await append_batch(
            connection, statements, stream_id, prepared, ANY, own_transaction=True
        )
        delattr(connection, _CURSOR_ATTRIBUTE)
    assert wrapped.attempts == 2  # the first lost to the guard, the retry won
    assert result.version == 4
    assert interloper_result[0].version == 2
    feed = [e for e in await collect(store.read_all()) if e.stream_id == stream_id]
    assert [e.version for e in feed] == [1, 2, 3, 4]
    assert [e.event_id for e in feed[2:]] == [e.event_id for e in batch]


async def test_concurrent_own_appends_to_one_stream_never_surface_the_guard(
    store: PostgresEventStore,
) -> None:
    # One connection per writer, all on one stream: the guard loses often here (most
    # attempts, at this many writers), and every loss must stay inside the store.
    stream_id = "hot"
    writers, rounds = 12, 30

    async def writer(n: int) -> list[AppendResult]:
        return [await store.append(stream_id, events(1, writer=n)) for _ in range(rounds)]

    results = await asyncio.gather(*(writer(n) for n in range(writers)))
    total = writers * rounds
    assert sorted(r.version for rs in results for r in rs) == list(range(1, total + 1))
    feed = await collect(store.read_all())
    assert [e.version for e in feed] == list(range(1, total + 1))


@pytest.mark.parametrize("size", [1, 2])
async def test_concurrent_stream_exists_appends_queue_up_in_stream_order(
    store: PostgresEventStore, size: int
) -> None:
    # STREAM_EXISTS claims the row with a plain UPDATE whose order guard takes the
    # transaction id only after the queue lock: writers that waited there must all
    # get through (none surfaces the guard) and land in the feed in stream order.
    # Both statement forms: one event (scalar parameters) and a JSON batch.
    stream_id = f"exists-{uuid.uuid4().hex[:8]}"
    await store.append(stream_id, events(1), NO_STREAM)
    writers, rounds = 8, 10

    async def writer(n: int) -> list[AppendResult]:
        return [
            await store.append(stream_id, events(size, writer=n), STREAM_EXISTS)
            for _ in range(rounds)
        ]

    results = await asyncio.gather(*(writer(n) for n in range(writers)))
    total = 1 + writers * rounds * size
    assert sorted(r.version for rs in results for r in rs) == list(range(1 + size, total + 1, size))
    feed = await collect(store.read_all())
    assert [e.version for e in feed] == list(range(1, total + 1))
    assert await store.stream_version(stream_id) == total


async def test_exact_and_stream_exists_appends_never_create_a_stream(
    store: PostgresEventStore,
) -> None:
    # The UPDATE claim finds no row: a ConcurrencyError naming actual 0, nothing
    # written, and the stream can still be created afterwards.
    stream_id = f"absent-{uuid.uuid4().hex[:8]}"
    for expected in (STREAM_EXISTS, 3):
        for size in (1, 2):
            with pytest.raises(ConcurrencyError) as raised:
                await store.append(stream_id, events(size), expected)
            assert (raised.value.stream_id, raised.value.actual) == (stream_id, 0)
    assert await store.stream_version(stream_id) == 0
    assert await collect(store.read_all()) == []
    assert (await store.append(stream_id, events(2), NO_STREAM)).version == 2
