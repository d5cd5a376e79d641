"""Saga tests run on real PostgreSQL, each in a schema of its own (runners read the
whole feed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from aggregates import Repository
from aggregates.ledger import Ledger
from aggregates.order import Order
from eventstore import PostgresEventStore
from sagas import migrate_sagas

MakeStore = Callable[..., Awaitable[PostgresEventStore]]


@pytest.fixture
async def store(make_pg_store: MakeStore) -> PostgresEventStore:
    store = await make_pg_store()
    await migrate_sagas(store)
    return store


@pytest.fixture
def repo(store: PostgresEventStore) -> Repository:
    return Repository(store, [Ledger, Order])
