"""The snapshot store contract on real PostgreSQL, plus what only Postgres does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from contracts.snapshot_store import MakeStore, SnapshotStoreContract, new_stream, snap
from psycopg import sql

from eventstore import NewEvent, PostgresEventStore
from snapshots import PostgresSnapshotStore, SnapshotStore, SnapshotStoreError

MakePgStore = Callable[..., Awaitable[PostgresEventStore]]


class TestPostgresSnapshotStore(SnapshotStoreContract):
    @pytest.fixture
    def make_store(self, pg_store: PostgresEventStore) -> MakeStore:
        async def make(keep: int = 5) -> SnapshotStore:
            return PostgresSnapshotStore.from_event_store(pg_store, keep=keep)

        return make


async def _columns(store: PostgresEventStore, table: str) -> dict[str, str]:
    async with store.connection() as connection:
        cursor = await connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s",
            (store.schema, table),
        )
        return dict(await cursor.fetchall())


async def test_the_table_is_created_on_first_use_in_the_event_stores_schema(
    make_pg_store: MakePgStore,
) -> None:
    events = await make_pg_store()
    snapshots = PostgresSnapshotStore.from_event_store(events)
    assert await _columns(events, "snapshots") == {}
    stream = new_stream()
    await snapshots.save(snap(stream, 1))
    columns = await _columns(events, "snapshots")
    assert columns["state"] == "jsonb"
    assert columns["version"] == "bigint"
    assert await snapshots.migrate() == 0


async def test_concurrent_first_use_migrates_once(make_pg_store: MakePgStore) -> None:
    events = await make_pg_store()
    stores = [PostgresSnapshotStore.from_event_store(events, keep=3) for _ in range(6)]
    stream = new_stream()
    await asyncio.gather(*(s.save(snap(stream, n)) for n, s in enumerate(stores, start=1)))
    async with events.connection() as connection:
        cursor = await connection.execute(
            sql.SQL("SELECT count(*) FROM {}.snapshot_migrations").format(
                sql.Identifier(events.schema)
            )
        )
        assert await cursor.fetchone() == (1,)
    assert [s.version for s in await stores[0].load_all(stream)] == [4, 5, 6]


async def test_state_is_stored_as_a_jsonb_object(pg_store: PostgresEventStore) -> None:
    store = PostgresSnapshotStore.from_event_store(pg_store)
    stream = new_stream()
    await store.save(snap(stream, 5, {"balance": "10.50", "open": True}))
    async with pg_store.connection() as connection:
        cursor = await connection.execute(
            sql.SQL(
                "SELECT jsonb_typeof(state), state->>'balance', aggregate_type, fingerprint"
                " FROM {}.snapshots WHERE stream_id = %s AND version = 5"
            ).format(sql.Identifier(pg_store.schema)),
            (stream,),
        )
        assert await cursor.fetchone() == ("object", "10.50", "ledger", "fp-1")


async def test_sharing_the_pool_leaves_it_open_on_close(pg_store: PostgresEventStore) -> None:
    async with PostgresSnapshotStore.from_event_store(pg_store) as store:
        await store.save(snap(new_stream(), 1))
    stream = new_stream()
    result = await pg_store.append(stream, [NewEvent("ledger.Opened", {"owner": "ada"})])
    assert result.version == 1


async def test_snapshots_live_beside_events_and_outlive_no_event(
    pg_store: PostgresEventStore,
) -> None:
    store = PostgresSnapshotStore.from_event_store(pg_store)
    stream = new_stream()
    await pg_store.append(stream, [NewEvent("ledger.Opened", {"n": i}) for i in range(3)])
    await store.save(snap(stream, 3, {"count": 3}))
    assert await store.delete(stream) == 1
    assert await pg_store.stream_version(stream) == 3


@pytest.fixture
async def standalone(pg_dsn: str) -> AsyncIterator[PostgresSnapshotStore]:
    store = await PostgresSnapshotStore.connect(pg_dsn, schema="snap_standalone", keep=2)
    yield store
    await store.close()


async def test_a_standalone_store_has_its_own_pool_and_schema(
    standalone: PostgresSnapshotStore,
) -> None:
    stream = new_stream()
    for version in (1, 2, 3):
        await standalone.save(snap(stream, version))
    assert [s.version for s in await standalone.load_all(stream)] == [2, 3]
    assert standalone.schema == "snap_standalone"
    assert "snap_standalone" in repr(standalone)


async def test_connect_is_idempotent_on_an_existing_schema(pg_dsn: str) -> None:
    for _ in range(2):
        store = await PostgresSnapshotStore.connect(pg_dsn, schema="snap_standalone")
        assert await store.migrate() == 0
        await store.close()


async def test_an_unreachable_database_names_the_target_but_not_the_password() -> None:
    dsn = "postgresql://chronik:hunter2-secret@127.0.0.1:1/nowhere"
    with pytest.raises(SnapshotStoreError) as caught:
        await PostgresSnapshotStore.connect(dsn, connect_timeout=1)
    message = str(caught.value)
    assert "nowhere" in message
    assert "hunter2-secret" not in message and "hunter2-secret" not in repr(caught.value.args)


async def test_driver_errors_during_use_become_snapshot_store_errors(pg_dsn: str) -> None:
    store = await PostgresSnapshotStore.connect(pg_dsn, schema="snap_standalone")
    await store.close()
    stream = new_stream()
    with pytest.raises(SnapshotStoreError) as caught:
        await store.load(stream)
    assert caught.value.stream_id == stream


def test_from_event_store_refuses_other_stores() -> None:
    from eventstore import InMemoryEventStore

    with pytest.raises(TypeError, match="PostgresEventStore"):
        PostgresSnapshotStore.from_event_store(InMemoryEventStore())  # type: ignore[arg-type]
