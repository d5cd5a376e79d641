"""The EventStore contract on the in-memory store, plus what only it does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from contracts.event_store import EventStoreContract, MakeStore, collect, new_events, new_stream

from eventstore import EventStore, InMemoryEventStore, InvalidInputError


class TestInMemoryEventStore(EventStoreContract):
    @pytest.fixture
    async def store(self) -> EventStore:
        return InMemoryEventStore()

    @pytest.fixture
    async def make_store(self) -> AsyncIterator[MakeStore]:
        stores: list[EventStore] = []

        async def make(**options: int) -> EventStore:
            store = InMemoryEventStore(**options)
            stores.append(store)
            return store

        yield make
        for store in stores:
            await store.close()


async def test_recorded_at_comes_from_the_injected_clock() -> None:
    ticks = iter(datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=s) for s in range(10))
    store = InMemoryEventStore(clock=lambda: next(ticks))
    stream = new_stream()
    await store.append(stream, new_events(2))
    await store.append(stream, new_events(1))
    times = [e.recorded_at for e in await collect(store.read_stream(stream))]
    start = datetime(2030, 1, 1, tzinfo=UTC)
    assert times == [start, start, start + timedelta(seconds=1)]
    assert await store.stream_version(stream, as_of=start) == 2


async def test_it_cannot_join_a_transaction() -> None:
    store = InMemoryEventStore()
    stream = new_stream()
    with pytest.raises(InvalidInputError, match="transaction"):
        await store.append(stream, new_events(1), connection=object())
    assert await store.stream_version(stream) == 0
    assert await store.head() is None
