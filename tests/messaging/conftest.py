"""Fixtures for the Kafka tests: a store of its own per test, unique topic prefixes,
Redis read models for the consumers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from eventstore import NewEvent, PostgresEventStore
from projections import RedisReadModel


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


@pytest.fixture
async def read_models(redis_url: str) -> AsyncIterator[list[RedisReadModel]]:
    """Two fresh-prefixed Redis read models: the Kafka-fed one and a rebuild to compare."""
    prefix = f"kc{uuid.uuid4().hex[:8]}:"
    made = [
        await RedisReadModel.connect(redis_url, prefix=prefix + "kafka:"),
        await RedisReadModel.connect(redis_url, prefix=prefix + "store:"),
    ]
    yield made
    for model in made:
        await model.close()


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[PostgresEventStore]:
    """A schema of its own (a consumer test compares with a rebuild from the whole feed),
    closed after the test: the session's PostgreSQL has a limited number of connections."""
    store = await PostgresEventStore.connect(
        pg_dsn, schema=f"t_{uuid.uuid4().hex[:12]}", pool_size=4
    )
    yield store
    await store.close()
