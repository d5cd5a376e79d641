"""Appends stamp the current correlation; the store finds events by correlation id."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from eventstore import (
    EventStore,
    InMemoryEventStore,
    InvalidInputError,
    NewEvent,
    PostgresEventStore,
    caused_by,
    correlation,
)


@pytest.fixture(params=["memory", "postgres"])
async def store(
    request: pytest.FixtureRequest, make_pg_store: Callable[..., Awaitable[PostgresEventStore]]
) -> EventStore:
    if request.param == "memory":
        return InMemoryEventStore()
    return await make_pg_store()


def _stream() -> str:
    return f"corr-{uuid.uuid4().hex[:10]}"


async def test_appends_in_a_correlation_are_stamped_and_found(store: EventStore) -> None:
    a, b = _stream(), _stream()
    request = f"req-{uuid.uuid4().hex}"
    await store.append(a, [NewEvent("noise", {})])  # outside: nothing stamped
    with correlation(request):
        await store.append(a, [NewEvent("placed", {"n": 1}), NewEvent("placed", {"n": 2})])
        await store.append(b, [NewEvent("kept", {}, metadata={"causation_id": "mine"})])
    first = [e async for e in store.read_stream(a)]
    assert first[0].metadata == {}
    assert first[1].metadata == {"correlation_id": request, "causation_id": request}
    with caused_by(first[1]):
        await store.append(b, [NewEvent("reacted", {})])
    found = await store.correlated_events(request)
    assert [(e.stream_id, e.type) for e in found] == [
        (a, "placed"),
        (a, "placed"),
        (b, "kept"),
        (b, "reacted"),
    ]
    assert found[2].metadata["causation_id"] == "mine"  # explicit metadata wins
    assert found[3].metadata["causation_id"] == str(first[1].event_id)
    assert [e.type for e in await store.correlated_events(request, limit=1)] == ["placed"]
    assert await store.correlated_events("nobody") == []
    assert await store.find_event(first[1].event_id) == first[1]
    assert await store.find_event(uuid.uuid4()) is None
    with pytest.raises(InvalidInputError):
        await store.correlated_events("")


async def test_a_retry_under_another_correlation_is_still_the_same_event(
    store: EventStore,
) -> None:
    stream, event_id = _stream(), uuid.uuid4()
    with correlation("first-attempt"):
        done = await store.append(stream, [NewEvent("placed", {"n": 1}, event_id=event_id)])
    with correlation("second-attempt"):
        again = await store.append(stream, [NewEvent("placed", {"n": 1}, event_id=event_id)])
    assert again == done
    [stored] = [e async for e in store.read_stream(stream)]
    assert stored.metadata["correlation_id"] == "first-attempt"
