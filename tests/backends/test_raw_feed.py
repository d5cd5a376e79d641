"""``read_raw_page`` is the feed of ``read_all``, only unparsed; ``listen_for_appends``
wakes a waiting reader on an append (both stores)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import (
    EventStore,
    InMemoryEventStore,
    InvalidInputError,
    NewEvent,
    Position,
    PostgresEventStore,
    RawEvent,
)
from eventstore.sync import PostgresEventStore as SyncPostgresEventStore


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[PostgresEventStore]:
    """A schema of its own (raw pages read the whole feed), closed after the test: the
    suite shares one server's connection limit."""
    store = await PostgresEventStore.connect(
        pg_dsn, schema=f"t_{uuid.uuid4().hex[:12]}", pool_size=2
    )
    yield store
    await store.close()


# PostgreSQL's JSON holds neither NUL nor lone surrogates (appends refuse them).
_characters = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_text = st.text(_characters)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _text,
    lambda inner: (
        # min_size=1: with an empty extension Hypothesis sees no recursion and warns.
        st.lists(inner, min_size=1, max_size=3)
        | st.dictionaries(
            st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF)),
            inner,
            min_size=1,
            max_size=3,
        )
    ),
    max_leaves=8,
)


async def _raw_feed(
    store: PostgresEventStore, after: Position | None, limit: int
) -> list[RawEvent]:
    found: list[RawEvent] = []
    while True:
        page = await store.read_raw_page(after, limit)
        assert len(page) <= limit
        if not page:
            return found
        found.extend(page)
        after = page[-1].position


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.lists(
        st.dictionaries(st.text(_characters, max_size=5), _json_values, max_size=3),
        min_size=1,
        max_size=12,
    ),
    limit=st.integers(1, 5),
    correlated=st.booleans(),
)
async def test_raw_pages_are_the_feed_unparsed(
    store: PostgresEventStore, data: list[dict[str, Any]], limit: int, correlated: bool
) -> None:
    # One schema for all examples: each compares the whole feed, earlier examples' too.
    metadata = {"correlation_id": "c-1", "n": 1} if correlated else None
    for i, document in enumerate(data):
        await store.append(f"raw-{i % 3}", [NewEvent("t.Raw", document, 2, metadata=metadata)])
    events = [event async for event in store.read_all()]

    raw = await _raw_feed(store, None, limit)

    assert [r.position for r in raw] == [e.position for e in events]
    for row, event in zip(raw, events, strict=True):
        assert (row.stream_id, row.version, row.type, row.schema_version) == (
            event.stream_id,
            event.version,
            event.type,
            event.schema_version,
        )
        assert row.event_id == str(event.event_id)
        assert row.recorded_at == event.recorded_at
        assert json.loads(row.data) == event.data
        assert json.loads(row.metadata) == event.metadata
    # From the middle: exactly what follows that position.
    middle = events[len(events) // 2].position
    assert [r.position for r in await _raw_feed(store, middle, limit)] == [
        e.position for e in events if e.position > middle
    ]


async def test_a_raw_page_stops_where_an_open_transaction_holds_the_feed(
    store: PostgresEventStore,
) -> None:
    await store.append("raw-a", [NewEvent("t.Raw", {"n": 1})])
    async with store.connection() as held, held.transaction():
        # An older transaction that has not committed: nothing after it shows.
        await store.append("raw-b", [NewEvent("t.Raw", {"n": 2})], connection=held)
        await store.append("raw-c", [NewEvent("t.Raw", {"n": 3})])
        assert [r.stream_id for r in await store.read_raw_page(None, 10)] == ["raw-a"]
    assert [r.stream_id for r in await store.read_raw_page(None, 10)] == ["raw-a", "raw-b", "raw-c"]


@pytest.mark.parametrize("limit", [0, -1, True, 1.5, None])
async def test_a_bad_limit_is_refused(pg_store: PostgresEventStore, limit: Any) -> None:
    with pytest.raises(InvalidInputError, match="limit"):
        await pg_store.read_raw_page(None, limit)


async def test_a_bad_position_is_refused(pg_store: PostgresEventStore) -> None:
    with pytest.raises(InvalidInputError, match="position"):
        await pg_store.read_raw_page(Position(-1, 0), 10)  # type: ignore[arg-type]


def test_the_sync_store_reads_raw_pages_too(pg_dsn: str) -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with SyncPostgresEventStore.connect(pg_dsn, schema=schema, pool_size=2) as store:
        store.append("raw-sync", [NewEvent("t.Raw", {"n": 7})])
        (row,) = store.read_raw_page(None, 5)
    assert (row.stream_id, json.loads(row.data)) == ("raw-sync", {"n": 7})


@pytest.mark.parametrize("kind", ["memory", "postgres"])
async def test_listen_for_appends_wakes_a_waiting_reader(
    kind: str, store: PostgresEventStore
) -> None:
    chosen: EventStore = InMemoryEventStore() if kind == "memory" else store
    async with chosen.listen_for_appends() as wait:
        # A wait far longer than any test: it can only end early by the append's hint.
        waiting = asyncio.create_task(wait(3600))
        await asyncio.sleep(0)
        await chosen.append("woken-1", [NewEvent("t.Raw", {})])
        async with asyncio.timeout(60):
            await waiting
