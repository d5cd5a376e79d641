"""Fixtures for the Kafka tests: a store of its own per test, unique topic prefixes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from eventstore import NewEvent, PostgresEventStore


@pytest.fixture
async def relay_store(pg_dsn: str) -> AsyncIterator[PostgresEventStore]:
    """A schema of its own (the relay reads the whole feed), closed after the test: the
    suite shares one server's connection limit."""
    store = await PostgresEventStore.connect(
        pg_dsn, schema=f"t_{uuid.uuid4().hex[:12]}", pool_size=4
    )
    # Plan-cache traps hide in empty tables: start with some history.
    await store.append("seed-0", [NewEvent("seed.Planted", {"n": i}) for i in range(20)])
    yield store
    await store.close()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."
