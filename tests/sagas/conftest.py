"""Saga tests run on real PostgreSQL, each in a schema of its own (runners read the
whole feed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from aggregates import Repository
from aggregates.ledger import Ledger
from aggregates.order import Order
from eventstore import PostgresEventStore
from sagas import migrate_sagas

MakeStore = Callable[..., Awaitable[PostgresEventStore]]


@pytest.fixture
async def store(make_pg_store: MakeStore) -> AsyncIterator[PostgresEventStore]:
    store = await make_pg_store()
    await migrate_sagas(store)
    yield store
    # Close per test: a saga runner grows the pool, and idle pools of a whole session
    # would exhaust the server's connection slots.
    await store.close()


@pytest.fixture
def repo(store: PostgresEventStore) -> Repository:
    return Repository(store, [Ledger, Order])
