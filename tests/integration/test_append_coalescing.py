"""Coalesced appends (``_pg_coalesce``) on real PostgreSQL: same outcomes, fewer commits.

Tasks started together by ``asyncio.gather`` reach the store in one pass of the
event loop: the first takes the single path, the others queue and go out as one
statement, so these tests coalesce without waiting on time.  No test asserts
anything about speed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql

from eventstore import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    ConcurrencyError,
    DuplicateEventError,
    ExpectedVersion,
    NewEvent,
    PostgresEventStore,
    RecordedEvent,
    StreamOrderConflict,
)
from eventstore._pg_coalesce import AppendCoalescer, CoalesceStats

HANG_GUARD = 60.0


def events(count: int, **data: Any) -> list[NewEvent]:
    return [
        NewEvent("coalesce.Happened", {"i": i, **data}, event_id=uuid.uuid4()) for i in range(count)
    ]


def coalescer(store: PostgresEventStore) -> AppendCoalescer:
    found = store._coalescer
    assert found is not None
    return found


def stats(store: PostgresEventStore) -> CoalesceStats:
    return CoalesceStats(**{f: getattr(coalescer(store).stats, f) for f in CoalesceStats.__slots__})


async def feed(store: PostgresEventStore) -> list[RecordedEvent]:
    return [event async for event in store.read_all()]


def check_feed(recorded: list[RecordedEvent], results: Sequence[AppendResult]) -> None:
    """Every successful append in the feed exactly once, at its positions, each
    stream in order; nothing else in it (no half-written append)."""
    expected = {
        position: (result.stream_id, result.version - len(result.positions) + 1 + offset)
        for result in results
        for offset, position in enumerate(result.positions)
    }
    seen = {event.position: (event.stream_id, event.version) for event in recorded}
    assert len(seen) == len(recorded)
    assert seen == expected
    last: dict[str, int] = {}
    for event in recorded:
        assert event.version == last.get(event.stream_id, 0) + 1, event
        last[event.stream_id] = event.version


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[PostgresEventStore]:
    """A store of its own (schema and pool), so the whole feed is this test's."""
    store = await PostgresEventStore.connect(
        pg_dsn, schema=f"t_{uuid.uuid4().hex[:12]}", pool_size=8
    )
    yield store
    await store.close()


async def test_concurrent_appends_share_a_statement_and_a_transaction(
    store: PostgresEventStore,
) -> None:
    streams = [f"acct-{n}-{uuid.uuid4().hex[:8]}" for n in range(6)]

    async def writer(stream: str) -> list[AppendResult]:
        return [await store.append(stream, events(1), version) for version in range(10)]

    results = [r for rs in await asyncio.gather(*map(writer, streams)) for r in rs]
    done = stats(store)
    assert done.statements > 0 and done.carried > done.statements
    # The feature is alive: appends to different streams committed in one transaction.
    by_transaction: defaultdict[int, set[str]] = defaultdict(set)
    for result in results:
        by_transaction[result.positions[0].transaction_id].add(result.stream_id)
    assert max(len(shared) for shared in by_transaction.values()) > 1
    check_feed(await feed(store), results)
    for stream in streams:
        assert await store.stream_version(stream) == 10


async def test_an_append_alone_takes_the_single_path(store: PostgresEventStore) -> None:
    stream = f"alone-{uuid.uuid4().hex[:8]}"
    for version in (0, 2, 4):
        await store.append(stream, events(2), version)
    done = stats(store)
    assert (done.alone, done.statements) == (3, 0)


async def test_coalescing_can_be_turned_off(pg_dsn: str) -> None:
    store = await PostgresEventStore.connect(
        pg_dsn, schema=f"t_{uuid.uuid4().hex[:12]}", pool_size=4, coalesce_appends=False
    )
    try:
        assert store._coalescer is None
        streams = [f"off-{n}" for n in range(4)]
        results = await asyncio.gather(*(store.append(s, events(1), NO_STREAM) for s in streams))
        assert len({r.positions[0].transaction_id for r in results}) == 4
    finally:
        await store.close()


async def test_every_append_gets_its_own_outcome(store: PostgresEventStore) -> None:
    """Contended, replayed, stale and fresh appends at once: the right result or
    typed error for each, and only for it."""
    hot = f"hot-{uuid.uuid4().hex[:8]}"
    stale = f"stale-{uuid.uuid4().hex[:8]}"
    replayed = f"replay-{uuid.uuid4().hex[:8]}"
    fresh = [f"fresh-{n}-{uuid.uuid4().hex[:8]}" for n in range(5)]
    await store.append(stale, events(2), NO_STREAM)
    original_batch = events(2)
    original = await store.append(replayed, original_batch, NO_STREAM)
    stolen = events(1)
    await store.append(f"owner-{uuid.uuid4().hex[:8]}", stolen, NO_STREAM)
    results = await asyncio.gather(
        *(store.append(s, events(1), NO_STREAM) for s in fresh[:2]),
        # Five writers want version 1 of one stream: exactly one gets it.
        *(store.append(hot, events(1), NO_STREAM) for _ in range(5)),
        store.append(stale, events(1), 1),  # stale: the stream is at 2
        store.append(stale, events(1), NO_STREAM),  # it exists
        store.append(f"missing-{uuid.uuid4().hex[:8]}", events(1), STREAM_EXISTS),
        store.append(replayed, original_batch, NO_STREAM),  # an idempotent replay
        store.append(fresh[2], stolen, NO_STREAM),  # another stream's event id
        *(store.append(s, events(3), ANY) for s in fresh[3:]),
        return_exceptions=True,
    )
    fresh_ok, hot_outcomes = results[:2], results[2:7]
    stale_exact, stale_new, missing, replay, duplicate = results[7:12]
    assert all(isinstance(r, AppendResult) and r.version == 1 for r in fresh_ok)
    winners = [r for r in hot_outcomes if isinstance(r, AppendResult)]
    assert len(winners) == 1
    losers = [r for r in hot_outcomes if not isinstance(r, AppendResult)]
    assert all(isinstance(e, ConcurrencyError) and e.actual == 1 for e in losers), losers
    assert isinstance(stale_exact, ConcurrencyError)
    assert (stale_exact.stream_id, stale_exact.expected, stale_exact.actual) == (stale, 1, 2)
    assert isinstance(stale_new, ConcurrencyError) and stale_new.actual == 2
    assert isinstance(missing, ConcurrencyError) and missing.actual == 0
    assert replay == original
    assert isinstance(duplicate, DuplicateEventError) and duplicate.stream_id == fresh[2]
    assert all(isinstance(r, AppendResult) and r.version == 3 for r in results[12:])
    # Nothing of a failed append was written, every success is in the feed once.
    successes = [r for r in results if isinstance(r, AppendResult) and r is not replay]
    recorded = [e for e in await feed(store) if e.stream_id in {hot, *fresh}]
    check_feed(recorded, [r for r in successes if r.stream_id in {hot, *fresh}])
    assert await store.stream_version(stale) == 2
    assert await store.stream_version(fresh[2]) == 0
    done = stats(store)
    # The replays failed their statement whole: its appends went the single path.
    assert done.statements > 0 and done.handed_back > 0


async def test_a_batch_of_existing_streams_takes_the_update_only_statement(
    store: PostgresEventStore,
) -> None:
    """Exact versions and STREAM_EXISTS only: the UPDATE-only form, with the right
    result or ConcurrencyError for each append in it."""
    streams = [f"existing-{n}-{uuid.uuid4().hex[:8]}" for n in range(4)]
    for stream in streams:
        await store.append(stream, events(2), NO_STREAM)
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    before = stats(store)
    outcomes = await asyncio.gather(
        store.append(streams[0], events(1), 2),  # alone: the others queue
        store.append(streams[1], events(2), 2),
        store.append(streams[2], events(1), STREAM_EXISTS),
        store.append(streams[3], events(1), 1),  # stale: the stream is at 2
        store.append(missing, events(1), STREAM_EXISTS),
        return_exceptions=True,
    )
    after = stats(store)
    assert after.statements - before.statements == after.existing_only - before.existing_only > 0
    assert [o.version if isinstance(o, AppendResult) else None for o in outcomes[:3]] == [3, 4, 3]
    stale, absent = outcomes[3:]
    assert isinstance(stale, ConcurrencyError)
    assert (stale.stream_id, stale.expected, stale.actual) == (streams[3], 1, 2)
    assert isinstance(absent, ConcurrencyError) and (absent.stream_id, absent.actual) == (
        missing,
        0,
    )
    recorded = [e for e in await feed(store) if e.version > 2]
    check_feed_tail(recorded, [o for o in outcomes if isinstance(o, AppendResult)])
    assert await store.stream_version(streams[3]) == 2
    assert await store.stream_version(missing) == 0


def check_feed_tail(recorded: list[RecordedEvent], results: Sequence[AppendResult]) -> None:
    """The events past version 2 are exactly the results' events, at their positions."""
    assert sorted((e.position, e.stream_id, e.version) for e in recorded) == sorted(
        (position, r.stream_id, r.version - len(r.positions) + 1 + offset)
        for r in results
        for offset, position in enumerate(r.positions)
    )


async def test_one_stream_is_never_twice_in_a_statement(store: PostgresEventStore) -> None:
    streams = [f"twice-{n}-{uuid.uuid4().hex[:8]}" for n in range(3)]
    results = await asyncio.gather(*(store.append(s, events(1), ANY) for s in streams * 4))
    per_stream: defaultdict[str, list[int]] = defaultdict(list)
    for result in results:
        per_stream[result.stream_id].append(result.positions[0].transaction_id)
    assert all(len(set(xids)) == len(xids) == 4 for xids in per_stream.values())
    assert stats(store).statements > 0
    check_feed(await feed(store), results)


async def test_the_order_guard_holds_in_a_coalesced_statement(
    store: PostgresEventStore,
) -> None:
    """A stream last written by a newer transaction than the statement's (only a
    writer bypassing the queue lock can do that): the statement leaves it alone."""
    guarded = {f"guarded-{kind}-{uuid.uuid4().hex[:8]}": kind for kind in ("exact", "any")}
    for stream in guarded:
        await store.append(stream, events(1), NO_STREAM)
    async with store.connection() as connection:
        await connection.execute(
            sql.SQL(
                "UPDATE {} SET last_xid = (pg_current_xact_id()::text::bigint + 1000000)"
                "::text::xid8 WHERE stream_id = ANY(%s)"
            ).format(sql.Identifier(store.schema, "streams")),
            (list(guarded),),
        )
    outcomes = await asyncio.gather(
        store.append(f"first-{uuid.uuid4().hex[:8]}", events(1), NO_STREAM),
        *(store.append(s, events(1), 1 if k == "exact" else ANY) for s, k in guarded.items()),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], AppendResult)
    assert all(isinstance(o, StreamOrderConflict) for o in outcomes[1:]), outcomes
    assert stats(store).carried >= len(guarded)
    for stream in guarded:
        assert await store.stream_version(stream) == 1


# -- random interleavings against a model ---------------------------------------


@dataclass(frozen=True)
class Step:
    expected: str  # "any", "no_stream", "exists", or an offset from the current version
    count: int
    replay: bool  # re-send this stream's previous batch, same event ids


steps = st.builds(
    Step,
    st.sampled_from(["any", "no_stream", "exists", "-1", "0", "0", "0", "+1"]),
    st.integers(1, 2),
    st.booleans(),
)


# Only expectations of an existing stream: batches of these take the UPDATE-only
# statement (once the streams exist).
existing_steps = st.builds(
    Step, st.sampled_from(["exists", "-1", "0", "0", "0", "+1"]), st.integers(1, 2), st.booleans()
)


@settings(max_examples=25)
@given(plans=st.lists(st.lists(steps, min_size=1, max_size=5), min_size=2, max_size=5))
async def test_random_interleavings_match_the_model(
    pg_store: PostgresEventStore, plans: list[list[Step]]
) -> None:
    """One task per stream, all at once: the appends coalesce in ever other ways,
    yet every outcome is what one append at a time would give."""
    before = stats(pg_store).statements
    await play_model(pg_store, plans, created=False)
    assert stats(pg_store).statements > before


@settings(max_examples=15)
@given(plans=st.lists(st.lists(existing_steps, min_size=1, max_size=5), min_size=2, max_size=5))
async def test_random_interleavings_of_existing_streams_match_the_model(
    pg_store: PostgresEventStore, plans: list[list[Step]]
) -> None:
    """As above, every stream created first: the batches take the UPDATE-only
    statement, matching and mismatching expectations mixed in it."""
    before = stats(pg_store)
    await play_model(pg_store, plans, created=True)
    after = stats(pg_store)
    assert after.statements > before.statements
    assert after.existing_only - before.existing_only == after.statements - before.statements


async def play_model(store: PostgresEventStore, plans: list[list[Step]], *, created: bool) -> None:
    """Run each plan on a stream of its own, all at once, checking each outcome
    against a model of one append at a time, then the feed."""
    run = uuid.uuid4().hex[:8]
    initial: list[AppendResult] = []
    if created:
        for index in range(len(plans)):
            initial.append(await store.append(f"model-{run}-{index}", events(1), NO_STREAM))

    async def play(index: int, plan: list[Step]) -> list[AppendResult]:
        stream, version = f"model-{run}-{index}", 1 if created else 0
        succeeded: list[AppendResult] = []
        previous: tuple[list[NewEvent], AppendResult | None] | None = None
        for step in plan:
            expected: ExpectedVersion | int
            if step.expected in ("any", "no_stream", "exists"):
                expected = {"any": ANY, "no_stream": NO_STREAM, "exists": STREAM_EXISTS}[
                    step.expected
                ]
                matches = {"any": True, "no_stream": version == 0, "exists": version > 0}[
                    step.expected
                ]
            else:
                # Created streams: never 0 (NO_STREAM), which is not an existing-stream claim.
                expected = max(1 if created else 0, version + int(step.expected))
                matches = expected == version
            batch = previous[0] if step.replay and previous else events(step.count)
            earlier = previous[1] if step.replay and previous else None
            try:
                result = await store.append(stream, batch, expected)
            except ConcurrencyError as error:
                assert earlier is None and not matches, (step, version)
                assert (error.stream_id, error.actual) == (stream, version)
                previous = (batch, None)
                continue
            if earlier is not None:
                assert result == earlier  # the replay answers with the original
                continue
            assert matches, (step, version)
            assert result.version == version + len(batch)
            version = result.version
            succeeded.append(result)
            previous = (batch, result)
        return succeeded

    outcomes = await asyncio.gather(*(play(i, plan) for i, plan in enumerate(plans)))
    streams = {f"model-{run}-{i}" for i in range(len(plans))}
    recorded = [e async for e in store.read_all() if e.stream_id in streams]
    check_feed(recorded, [*initial, *(r for results in outcomes for r in results)])


# -- a connection killed mid-statement --------------------------------------------


async def blocked_by(connection: psycopg.AsyncConnection[Any], pid: int) -> list[int]:
    """The backends waiting for a lock that backend ``pid`` holds, once there are any."""
    async with asyncio.timeout(HANG_GUARD):
        while True:
            cursor = await connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (pid,)
            )
            found = [row[0] for row in await cursor.fetchall()]
            if found:
                return found
            await asyncio.sleep(0.02)  # polling a condition, bounded by the timeout


async def test_a_killed_statement_hands_every_append_back(store: PostgresEventStore) -> None:
    """Kill the coalesced statement's backend while it waits: every caller still gets
    its result, and appending again returns the same result."""
    shared = events(1)
    batches = {f"kill-{n}-{uuid.uuid4().hex[:8]}": events(1) for n in range(4)}
    batches[next(iter(batches))] = shared
    first, first_batch = f"first-{uuid.uuid4().hex[:8]}", events(1)
    # The statement must still be waiting when it is killed, not given up (LOCK_WAIT).
    coalescer(store).lock_wait = "10min"
    async with store.connection() as holder, store.connection() as admin:
        await holder.execute("BEGIN")
        # An uncommitted insert of the same event id: the coalesced statement's
        # insert of it waits on this transaction, so it is truly in flight.
        await store.append(f"holder-{uuid.uuid4().hex[:8]}", shared, NO_STREAM, connection=holder)
        holder_pid = holder.info.backend_pid
        appends = asyncio.gather(
            store.append(first, first_batch, NO_STREAM),  # alone: the others queue
            *(store.append(s, b, NO_STREAM) for s, b in batches.items()),
            return_exceptions=True,
        )
        victims = await blocked_by(admin, holder_pid)
        assert stats(store).statements == 1  # the one waiting is the coalesced statement
        for pid in victims:
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # Handed back, the shared event's own append waits for the holder again.
        await blocked_by(admin, holder_pid)
        await holder.execute("ROLLBACK")
        results = await asyncio.wait_for(appends, HANG_GUARD)
    assert all(isinstance(r, AppendResult) for r in results), results
    assert stats(store).handed_back >= len(batches)
    again = await asyncio.gather(
        store.append(first, first_batch, NO_STREAM),
        *(store.append(s, b, NO_STREAM) for s, b in batches.items()),
    )
    assert again == results  # idempotent: the same events, the same positions
    check_feed(await feed(store), again)


# -- a lock taken without the queue lock -------------------------------------------


async def test_a_row_locked_by_hand_holds_up_only_the_append_that_needs_it(
    store: PostgresEventStore,
) -> None:
    """A stream row locked without chronik's queue lock (by hand, or by an older
    chronik during an upgrade) holds the coalesced statement that claims it for at
    most LOCK_WAIT: the appends it carried to other streams then go through while
    the lock is still held, and the one that needs the row waits alone."""
    locked = f"locked-{uuid.uuid4().hex[:8]}"
    created = await store.append(locked, events(1), NO_STREAM)
    free = {f"free-{n}-{uuid.uuid4().hex[:8]}": events(1) for n in range(3)}
    streams = sql.Identifier(store.schema, "streams")
    async with store.connection() as locker:
        await locker.execute("BEGIN")
        await locker.execute(
            sql.SQL("SELECT 1 FROM {} WHERE stream_id = %s FOR UPDATE").format(streams),
            (locked,),
        )
        # Started together: the first goes alone, so the others are sent as one
        # statement, which claims the locked row too.
        alone = asyncio.ensure_future(
            store.append(f"alone-{uuid.uuid4().hex[:8]}", events(1), NO_STREAM)
        )
        held_up = asyncio.ensure_future(store.append(locked, events(1), 1))
        others = [asyncio.ensure_future(store.append(s, b, NO_STREAM)) for s, b in free.items()]
        done, _ = await asyncio.wait([alone, *others], timeout=HANG_GUARD)
        assert len(done) == 1 + len(others), "appends to other streams waited for the lock"
        assert not held_up.done()
        assert stats(store).statements >= 1 and stats(store).handed_back >= 1
        await locker.execute("ROLLBACK")
        result = await asyncio.wait_for(held_up, HANG_GUARD)
    assert result.version == 2
    check_feed(
        await feed(store), [created, alone.result(), result, *(task.result() for task in others)]
    )
