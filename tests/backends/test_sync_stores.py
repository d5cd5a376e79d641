"""The event store and snapshot store contracts on the generated synchronous API.

The contract classes are async; ``support.async_view.AsyncView`` (tests only)
exposes each sync store through ``async def`` methods that call the sync ones
directly, so the very same tests pin the sync stores' behaviour.  Live
subscriptions are not part of the sync API (they stay async with the runners),
so the four ``subscribe`` tests are skipped here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from contracts.event_store import EventStoreContract, MakeStore
from contracts.snapshot_store import MakeStore as MakeSnapshotStore
from contracts.snapshot_store import SnapshotStoreContract
from support.async_view import AsyncView

from eventstore import EventStore
from eventstore.sync import InMemoryEventStore, PostgresEventStore
from snapshots.sync import InMemorySnapshotStore, PostgresSnapshotStore

NO_SUBSCRIBE = "the sync API has no subscribe(): live feeds stay async with the runners"


class _WithoutSubscribe(EventStoreContract):
    @pytest.mark.skip(reason=NO_SUBSCRIBE)
    async def test_subscribe_catches_up_then_follows(self) -> None: ...

    @pytest.mark.skip(reason=NO_SUBSCRIBE)
    async def test_subscribe_from_a_position(self) -> None: ...

    @pytest.mark.skip(reason=NO_SUBSCRIBE)
    async def test_subscribe_is_woken_by_an_append(self) -> None: ...

    @pytest.mark.skip(reason=NO_SUBSCRIBE)
    async def test_subscribe_rejects_bad_arguments(self) -> None: ...


@pytest.fixture(scope="module")
def sync_pg_store(pg_dsn: str) -> Iterator[PostgresEventStore]:
    """One sync store on the shared ``chronik`` schema; tests use fresh stream ids."""
    with PostgresEventStore.connect(pg_dsn, pool_size=4) as store:
        yield store


class TestSyncInMemoryEventStore(_WithoutSubscribe):
    @pytest.fixture
    async def store(self) -> EventStore:
        view: Any = AsyncView(InMemoryEventStore())
        return view

    @pytest.fixture
    async def make_store(self) -> AsyncIterator[MakeStore]:
        async def make(**options: int) -> EventStore:
            view: Any = AsyncView(InMemoryEventStore(**options))
            return view

        yield make


class TestSyncPostgresEventStore(_WithoutSubscribe):
    @pytest.fixture
    async def store(self, sync_pg_store: PostgresEventStore) -> EventStore:
        view: Any = AsyncView(sync_pg_store)
        return view

    @pytest.fixture
    async def make_store(self, pg_dsn: str) -> AsyncIterator[MakeStore]:
        stores: list[PostgresEventStore] = []

        async def make(**options: int) -> EventStore:
            schema = f"t_{uuid.uuid4().hex[:12]}"
            store = PostgresEventStore.connect(pg_dsn, schema=schema, pool_size=2, **options)
            stores.append(store)
            view: Any = AsyncView(store)
            return view

        yield make
        for store in stores:
            store.close()


class TestSyncInMemorySnapshotStore(SnapshotStoreContract):
    @pytest.fixture
    def make_store(self) -> MakeSnapshotStore:
        async def make(keep: int = 5) -> Any:
            return AsyncView(InMemorySnapshotStore(keep=keep))

        return make


class TestSyncPostgresSnapshotStore(SnapshotStoreContract):
    @pytest.fixture
    def make_store(self, sync_pg_store: PostgresEventStore) -> MakeSnapshotStore:
        async def make(keep: int = 5) -> Any:
            return AsyncView(PostgresSnapshotStore.from_event_store(sync_pg_store, keep=keep))

        return make
