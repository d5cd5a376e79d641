"""The Postgres store under hostile input: the paths the shared contract cannot reach
(a caller's transaction, rows written behind the store's back, driver limits)."""

from __future__ import annotations

from typing import Any

import pytest
from contracts.event_store import collect, new_events, new_stream
from contracts.event_store_shapes import nested
from support.raw_rows import deep_json, insert_raw

from eventstore import (
    MAX_NESTING_DEPTH,
    InvalidAppendError,
    NewEvent,
    PostgresEventStore,
    UnreadableEventError,
)


async def test_a_callers_transaction_gets_the_same_nesting_check(
    pg_store: PostgresEventStore,
) -> None:
    stream = new_stream()
    async with pg_store.connection() as connection, connection.transaction():
        await pg_store.append(stream, new_events(1), connection=connection)
        with pytest.raises(InvalidAppendError, match="nests deeper than"):
            await pg_store.append(
                stream,
                [NewEvent("t.Deep", nested(5_000))],
                connection=connection,
            )
        with pytest.raises(InvalidAppendError, match="non-string key 1"):
            await pg_store.append(stream, [NewEvent("t.Keys", {1: "a"})], connection=connection)
    assert await pg_store.stream_version(stream) == 1


async def test_an_undecodable_row_is_named_after_the_events_before_it(
    make_pg_store: Any,
) -> None:
    store: PostgresEventStore = await make_pg_store()
    stream = new_stream()
    await store.append(stream, new_events(3))
    position = await insert_raw(store, stream, 4, deep_json(5_000), "t.TooDeep")
    await store.append(stream, new_events(1))  # after it: version 5

    for read in (
        lambda: store.read_stream(stream),
        lambda: store.read_all(),
        lambda: store.read_stream_backwards(stream),
    ):
        seen: list[int] = []
        with pytest.raises(UnreadableEventError) as caught:
            async for event in read():
                seen.append(event.version)
        error = caught.value
        assert (error.stream_id, error.version, error.position) == (stream, 4, position)
        assert error.event_type == "t.TooDeep"
        assert "cannot be decoded" in str(error) and stream in str(error)
        assert seen in ([1, 2, 3], [5])
    # A reader can step over it: everything after it still reads.
    after = [e.version async for e in store.read_all(position)]
    assert after == [5]
    assert [e.version for e in await collect(store.read_stream(stream, 5))] == [5]


async def test_a_row_at_the_limit_written_raw_reads_normally(make_pg_store: Any) -> None:
    store: PostgresEventStore = await make_pg_store()
    stream = new_stream()
    await insert_raw(store, stream, 1, deep_json(MAX_NESTING_DEPTH))
    [event] = await collect(store.read_stream(stream))
    assert event.data == nested(MAX_NESTING_DEPTH)
