"""Fixtures for the Kafka tests: a store of its own per test, unique topic prefixes."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from eventstore import NewEvent, PostgresEventStore


@pytest.fixture
async def relay_store(
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
) -> PostgresEventStore:
    """A schema of its own: the relay reads the whole feed."""
    store = await make_pg_store()
    # Plan-cache traps hide in empty tables: start with some history.
    await store.append("seed-0", [NewEvent("seed.Planted", {"n": i}) for i in range(20)])
    return store


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."
