"""The Postgres store on a table that already holds thousands of events.

Plan-cache traps hide in empty tables: a plan that is fine for ten rows can scan
and sort the whole table at twenty thousand.  So the read statements' generic plans
(``EXPLAIN (GENERIC_PLAN)``, PostgreSQL 16) must reach rows through an index both on
a nearly empty schema and on a big one, and appends and reads must stay correct.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from psycopg import sql

from eventstore import NO_STREAM, NewEvent, PostgresEventStore, RecordedEvent
from eventstore._pg_read import ReadStatements

STREAMS = 380
EVENTS_PER_STREAM = 50
LONG_STREAM = "big-long"
LONG_STREAM_EVENTS = 1_000
SEEDED = STREAMS * EVENTS_PER_STREAM + LONG_STREAM_EVENTS  # 20,000

# statement -> the index it must use; the feed and head must also never sort: their
# ORDER BY must be served by the (transaction_id, global_position) index itself.
INDEXES = {
    "stream_forward": "events_stream_version",
    "stream_backward": "events_stream_version",
    "feed": "events_feed",
    "head": "events_feed",
    "version": "streams_pkey",
    "version_as_of": "events_stream_version",
    "version_at_position": "events_stream_version",
}
NO_SORT = {"feed", "head", "stream_forward", "stream_backward"}


async def collect(source: AsyncIterator[RecordedEvent]) -> list[RecordedEvent]:
    return [event async for event in source]


def numbered_placeholders(query: str) -> str:
    """``%s`` -> ``$1, $2, ...``: what EXPLAIN (GENERIC_PLAN) takes."""
    counter = iter(range(1, 100))
    return re.sub("%s", lambda _: f"${next(counter)}", query)


async def generic_plan(store: PostgresEventStore, statement: sql.Composed) -> str:
    async with store.connection() as connection:
        query = numbered_placeholders(statement.as_string(connection))
        cursor = await connection.execute(f"EXPLAIN (GENERIC_PLAN) {query}")
        return "\n".join(row[0] for row in await cursor.fetchall())


async def assert_index_plans(store: PostgresEventStore) -> None:
    reads = ReadStatements(store.schema)
    for name, index in INDEXES.items():
        plan = await generic_plan(store, getattr(reads, name))
        assert "Seq Scan" not in plan, f"{name}:\n{plan}"
        assert re.search(
            rf"(Index|Index Only) Scan( Backward)? using {index}|"
            rf"Bitmap Index Scan on {index}",
            plan,
        ), f"{name}:\n{plan}"
        if name in NO_SORT:
            assert "Sort" not in plan, f"{name}:\n{plan}"


@pytest.fixture(scope="module")
async def big_store(pg_dsn: str) -> AsyncIterator[PostgresEventStore]:
    store = await PostgresEventStore.connect(
        pg_dsn, schema=f"t_{uuid.uuid4().hex[:12]}", pool_size=4
    )
    for stream in range(STREAMS):
        await store.append(
            f"big-{stream:04d}",
            [
                NewEvent("big.Seeded", {"stream": stream, "n": n, "pad": "x" * 40})
                for n in range(EVENTS_PER_STREAM)
            ],
            NO_STREAM,
        )
    for start in range(0, LONG_STREAM_EVENTS, 250):
        await store.append(
            LONG_STREAM, [NewEvent("big.Seeded", {"n": start + n}) for n in range(250)]
        )
    yield store
    await store.close()


@pytest.fixture
async def small_store(pg_dsn: str) -> AsyncIterator[PostgresEventStore]:
    store = await PostgresEventStore.connect(
        pg_dsn, schema=f"t_{uuid.uuid4().hex[:12]}", pool_size=2
    )
    await store.append("small-1", [NewEvent("small.Seeded", {})])
    yield store
    await store.close()


async def test_the_seed_is_there(big_store: PostgresEventStore) -> None:
    async with big_store.connection() as connection:
        cursor = await connection.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(big_store.schema, "events"))
        )
        assert await cursor.fetchone() == (SEEDED,)


async def test_reads_use_indexes_on_a_nearly_empty_schema(
    small_store: PostgresEventStore,
) -> None:
    await assert_index_plans(small_store)


async def test_reads_use_indexes_on_a_big_table(big_store: PostgresEventStore) -> None:
    await assert_index_plans(big_store)


async def test_reads_use_indexes_on_a_big_analyzed_table(big_store: PostgresEventStore) -> None:
    async with big_store.connection() as connection:
        await connection.execute(
            sql.SQL("ANALYZE {}").format(sql.Identifier(big_store.schema, "events"))
        )
    await assert_index_plans(big_store)
    # The store plans every call with its real parameters: reading the feed from the
    # start a page at a time must walk the feed index, not sort the table per page.
    async with big_store.connection() as connection:
        query = ReadStatements(big_store.schema).feed
        cursor = await connection.execute(sql.SQL("EXPLAIN ") + query, ("0", 0, 1000))
        plan = "\n".join(row[0] for row in await cursor.fetchall())
    assert "Index Scan using events_feed" in plan and "Sort" not in plan, plan


async def test_appends_and_reads_on_a_big_table(big_store: PostgresEventStore) -> None:
    store = big_store
    stream = f"big-{STREAMS // 2:04d}"
    result = await store.append(
        stream, [NewEvent("big.More", {"k": k}) for k in range(3)], EVENTS_PER_STREAM
    )
    assert result.version == EVENTS_PER_STREAM + 3
    tail = await collect(store.read_stream(stream, EVENTS_PER_STREAM - 1))
    assert [e.version for e in tail] == list(range(EVENTS_PER_STREAM - 1, EVENTS_PER_STREAM + 4))
    assert [e.data.get("k") for e in tail[2:]] == [0, 1, 2]
    assert await store.head() == result.positions[-1]

    fresh = f"big-new-{uuid.uuid4().hex[:8]}"
    created = await store.append(fresh, [NewEvent("big.New", {})], NO_STREAM)
    assert await store.stream_version(fresh) == 1
    feed_tail = await collect(store.read_all(result.positions[0]))
    assert [e.position for e in feed_tail] == [*result.positions[1:], *created.positions]

    assert await store.stream_version(stream, at_position=result.positions[0]) == (
        EVENTS_PER_STREAM + 1
    )
    first = tail[0]
    assert (
        await store.stream_version(stream, as_of=first.recorded_at - timedelta(microseconds=1))
        <= first.version - 1
    )
    assert await store.stream_version(stream, as_of=tail[-1].recorded_at) == result.version


async def test_long_stream_reads_on_a_big_table(big_store: PostgresEventStore) -> None:
    forward = await collect(big_store.read_stream(LONG_STREAM))
    assert [e.data["n"] for e in forward] == list(range(LONG_STREAM_EVENTS))
    backward = await collect(big_store.read_stream_backwards(LONG_STREAM, 600, 401))
    assert [e.version for e in backward] == list(range(600, 400, -1))


async def test_the_whole_feed_of_a_big_table(big_store: PostgresEventStore) -> None:
    feed = await collect(big_store.read_all())
    assert len(feed) >= SEEDED
    positions = [e.position for e in feed]
    assert positions == sorted(set(positions))
    per_stream: dict[str, int] = {}
    for event in feed:
        assert event.version == per_stream.get(event.stream_id, 0) + 1
        per_stream[event.stream_id] = event.version
    middle = feed[len(feed) // 2]
    page: list[Any] = await collect(big_store.read_all(middle.position, limit=1500))
    assert page == feed[len(feed) // 2 + 1 : len(feed) // 2 + 1501]
    listed = [s async for s in big_store.list_streams("big-00", limit=20)]
    assert [s.stream_id for s in listed] == [f"big-{n:04d}" for n in range(20)]


async def test_paged_reads_never_sort_even_before_analyze(pg_dsn: str) -> None:
    # Seeded like a bulk import and read before autovacuum analyzes: the planner
    # then prefers bitmap scan + sort for a page, i.e. sorting everything after
    # it on every page.  The paged-read functions forbid that choice.
    schema = f"t_{uuid.uuid4().hex[:12]}"
    async with await PostgresEventStore.connect(pg_dsn, schema=schema, pool_size=2) as store:
        for start in range(0, 20_000, 500):
            events = [NewEvent("Seeded", {"n": start + i}) for i in range(500)]
            await store.append(f"bulk-{start}", events, NO_STREAM)
        feed = await collect(store.read_all())
        assert [e.data["n"] for e in feed] == list(range(20_000))
        middle = feed[10_000].position
        async with store.connection() as connection:
            configs = await (
                await connection.execute(
                    "SELECT proname, proconfig FROM pg_proc p JOIN pg_namespace n"
                    " ON n.oid = p.pronamespace WHERE n.nspname = %s ORDER BY proname",
                    (schema,),
                )
            ).fetchall()
            paged = {name: config for name, config in configs if name.endswith("_page")}
            assert set(paged) == {"feed_page", "stream_backward_page", "stream_forward_page"}
            assert all(config == ["enable_sort=off"] for config in paged.values()), paged
            # What the setting does to the very statement inside feed_page:
            query = ReadStatements(schema).feed
            params = (str(middle.transaction_id), middle.global_position, 1000)
            async with connection.transaction():
                plain = await _plan(connection, query, params)
                await connection.execute("SET LOCAL enable_sort = off")
                guarded = await _plan(connection, query, params)
    assert "Index Scan using events_feed" in guarded and "Sort" not in guarded, guarded
    # The bare statement is what the guard exists for (if the planner ever stops
    # choosing a sort here, this is still harmless; it documents the trap).
    assert "events_feed" in plain


async def _plan(connection: Any, query: sql.Composed, params: tuple[Any, ...]) -> str:
    cursor = await connection.execute(sql.SQL("EXPLAIN ") + query, params, prepare=False)
    return "\n".join(row[0] for row in await cursor.fetchall())
