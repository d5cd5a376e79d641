"""The EventStore contract on PostgreSQL, plus what only the Postgres store does."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from contracts.event_store import (
    EventStoreContract,
    MakeStore,
    collect,
    new_events,
    new_stream,
)
from psycopg import sql
from psycopg.conninfo import make_conninfo

from eventstore import (
    NO_STREAM,
    ConcurrencyError,
    DuplicateEventError,
    EventStore,
    InvalidConfigurationError,
    NewEvent,
    PostgresEventStore,
    StoreUnavailableError,
    describe_dsn,
    mask_password,
)
from eventstore._pg_schema import LATEST_VERSION
from snapshots import PostgresSnapshotStore


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture
    async def store(self, pg_store: PostgresEventStore) -> EventStore:
        return pg_store

    async def until_subscriber_waits(self, store: EventStore) -> None:
        # Registered in the listeners table means LISTEN is in place.
        assert isinstance(store, PostgresEventStore)
        async with asyncio.timeout(60):
            while not await _listeners(store):  # noqa: ASYNC110 (a table, not an event)
                await asyncio.sleep(0.01)

    @pytest.fixture
    async def make_store(self, pg_dsn: str) -> AsyncIterator[MakeStore]:
        stores: list[EventStore] = []

        async def make(**options: int) -> EventStore:
            schema = f"t_{uuid.uuid4().hex[:12]}"
            store = await PostgresEventStore.connect(pg_dsn, schema=schema, pool_size=4, **options)
            stores.append(store)
            return store

        yield make
        for store in stores:
            await store.close()


@pytest.fixture
async def own_store(pg_dsn: str) -> AsyncIterator[PostgresEventStore]:
    """A store in a fresh schema, closed after the test (the shared one stays open)."""
    store = await PostgresEventStore.connect(
        pg_dsn, schema=f"t_{uuid.uuid4().hex[:12]}", pool_size=6
    )
    yield store
    await store.close()


async def _orders_table(store: PostgresEventStore) -> sql.Composed:
    table = sql.Identifier(store.schema, "orders")
    async with store.connection() as connection:
        await connection.execute(sql.SQL("CREATE TABLE {} (id text PRIMARY KEY)").format(table))
    return table


async def _order_ids(store: PostgresEventStore, table: sql.Composed) -> list[str]:
    async with store.connection() as connection:
        cursor = await connection.execute(sql.SQL("SELECT id FROM {} ORDER BY id").format(table))
        return [row[0] for row in await cursor.fetchall()]


# -- appends inside the caller's transaction --------------------------------------


async def test_an_append_commits_with_the_callers_own_rows(own_store: PostgresEventStore) -> None:
    store = own_store
    orders = await _orders_table(store)
    stream = new_stream("order")
    async with store.connection() as connection, connection.transaction():
        await connection.execute(sql.SQL("INSERT INTO {} VALUES ('o-1')").format(orders))
        result = await store.append(stream, new_events(2), NO_STREAM, connection=connection)
        assert result.version == 2
        # Not visible to anyone else before the commit.
        assert await store.stream_version(stream) == 0
        assert await collect(store.read_all()) == []
        assert await _order_ids(store, orders) == []
    assert await _order_ids(store, orders) == ["o-1"]
    feed = await collect(store.read_all())
    assert [e.position for e in feed] == list(result.positions)
    assert await store.stream_version(stream) == 2


async def test_two_batches_of_one_transaction_re_append_as_no_ops(
    own_store: PostgresEventStore,
) -> None:
    # An outbox-style retry of either batch must return its original result,
    # though both share a transaction id (as the in-memory store does).
    store = own_store
    stream = new_stream("twice")
    first_batch, second_batch = new_events(2), new_events(1)
    async with store.connection() as connection, connection.transaction():
        first = await store.append(stream, first_batch, NO_STREAM, connection=connection)
        second = await store.append(stream, second_batch, 2, connection=connection)
    assert await store.append(stream, first_batch, NO_STREAM) == first
    assert await store.append(stream, second_batch, 2) == second
    with pytest.raises(DuplicateEventError):
        await store.append(stream, [*first_batch, *second_batch])
    with pytest.raises(DuplicateEventError):
        await store.append(stream, first_batch[:1])
    assert await store.stream_version(stream) == 3


async def test_a_rolled_back_transaction_leaves_no_events(own_store: PostgresEventStore) -> None:
    store = own_store
    orders = await _orders_table(store)
    stream = new_stream("order")
    batch = new_events(2)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with store.connection() as connection, connection.transaction():
            await connection.execute(sql.SQL("INSERT INTO {} VALUES ('o-1')").format(orders))
            await store.append(stream, batch, connection=connection)
            raise Abort
    assert await store.stream_version(stream) == 0
    assert await collect(store.read_all()) == []
    assert await _order_ids(store, orders) == []
    # The ids were never taken: the same batch appends normally now.
    assert (await store.append(stream, batch, NO_STREAM)).version == 2


async def test_a_rejected_append_leaves_the_callers_transaction_usable(
    own_store: PostgresEventStore,
) -> None:
    store = own_store
    orders = await _orders_table(store)
    stream, other = new_stream("order"), new_stream("order")
    earlier = new_events(2)
    await store.append(stream, earlier)
    async with store.connection() as connection, connection.transaction():
        with pytest.raises(ConcurrencyError):
            await store.append(stream, new_events(1), NO_STREAM, connection=connection)
        with pytest.raises(DuplicateEventError):
            await store.append(other, earlier, connection=connection)
        with pytest.raises(DuplicateEventError):
            await store.append(stream, [earlier[0], *new_events(1)], connection=connection)
        # A re-append of the original batch is still the original result.
        replay = await store.append(stream, earlier, connection=connection)
        assert replay.version == 2
        await connection.execute(sql.SQL("INSERT INTO {} VALUES ('o-2')").format(orders))
        result = await store.append(other, new_events(1), connection=connection)
    assert await _order_ids(store, orders) == ["o-2"]
    assert await store.stream_version(stream) == 2
    assert await store.stream_version(other) == 1
    feed = await collect(store.read_all())
    assert [e.stream_id for e in feed] == [stream, stream, other]
    assert feed[-1].position == result.positions[0]


async def test_several_appends_in_one_transaction_share_its_id(
    own_store: PostgresEventStore, pg_dsn: str
) -> None:
    store = own_store
    one, two = new_stream(), new_stream()
    # A plain (non-autocommit) connection of the caller's own, not the store's pool.
    async with await psycopg.AsyncConnection.connect(pg_dsn) as connection:
        first = await store.append(one, new_events(2), connection=connection)
        second = await store.append(two, new_events(1), connection=connection)
        third = await store.append(one, new_events(1), 2, connection=connection)
        await connection.commit()
    positions = [*first.positions, *second.positions, *third.positions]
    assert len({p.transaction_id for p in positions}) == 1
    feed = await collect(store.read_all())
    assert [e.position for e in feed] == positions
    assert [(e.stream_id, e.version) for e in feed] == [(one, 1), (one, 2), (two, 1), (one, 3)]


async def test_a_non_autocommit_callers_rollback_undoes_the_append(
    own_store: PostgresEventStore, pg_dsn: str
) -> None:
    stream = new_stream()
    async with await psycopg.AsyncConnection.connect(pg_dsn) as connection:
        # The append is the first statement: nothing has begun the caller's transaction.
        await own_store.append(stream, new_events(2), connection=connection)
        await connection.rollback()
    assert await own_store.stream_version(stream) == 0
    assert await collect(own_store.read_all()) == []


# -- the database clock, plans, open transactions ---------------------------------


async def test_recorded_at_is_the_database_clock(pg_store: PostgresEventStore) -> None:
    stream = new_stream()
    async with pg_store.connection() as connection:
        before = await (await connection.execute("SELECT clock_timestamp()")).fetchone()
        await pg_store.append(stream, new_events(3))
        after = await (await connection.execute("SELECT clock_timestamp()")).fetchone()
    assert before is not None and after is not None
    times = [e.recorded_at for e in await collect(pg_store.read_stream(stream))]
    assert all(before[0] <= t <= after[0] for t in times)
    assert all(t.utcoffset() is not None for t in times)


async def test_reads_are_never_prepared_appends_are(pg_dsn: str) -> None:
    # A generic plan built while a table was small keeps seq-scanning once it is
    # large: reads must be planned with their real parameters every time.
    # psycopg prepares a statement on its 5th execution; run each well past that.
    schema = f"t_{uuid.uuid4().hex[:12]}"
    async with await PostgresEventStore.connect(pg_dsn, schema=schema, pool_size=1) as store:
        stream = f"plans-{uuid.uuid4().hex}"
        for _ in range(8):
            await store.append(stream, [NewEvent("E", {})])
            await collect(store.read_stream(stream))
            await collect(store.read_all())
            await store.stream_version(stream)
            await store.head()
        async with store.connection() as connection:
            assert connection.autocommit
            cursor = await connection.execute("SELECT statement FROM pg_prepared_statements")
            prepared = [row[0] for row in await cursor.fetchall()]
    assert any("INSERT INTO" in text for text in prepared), prepared
    assert not any(text.lstrip().startswith("SELECT") for text in prepared), prepared


async def _listeners(store: PostgresEventStore) -> list[int]:
    async with store.connection() as connection:
        query = sql.SQL("SELECT pid FROM {} ORDER BY pid").format(
            sql.Identifier(store.schema, "listeners")
        )
        return [row[0] for row in await (await connection.execute(query)).fetchall()]


async def test_reads_pause_the_collector_only_while_a_page_is_built(
    pg_store: PostgresEventStore,
) -> None:
    # A page is decoded with the cyclic collector paused (see _pg_read); the caller's
    # own code between events must run with the collector as the caller left it.
    stream = f"gc-{uuid.uuid4().hex}"
    await pg_store.append(stream, [NewEvent("Noted", {"n": n}) for n in range(3)])
    assert gc.isenabled()
    seen = [gc.isenabled() async for _ in pg_store.read_stream(stream)]
    seen += [gc.isenabled() async for _ in pg_store.read_stream_backwards(stream)]
    assert seen == [True] * 6
    head = await pg_store.head()
    assert head is not None
    async for _ in pg_store.read_all(after=None, limit=5):
        assert gc.isenabled()
    gc.disable()
    try:
        # An application that switched the collector off keeps it off.
        async for _ in pg_store.read_stream(stream):
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_a_subscriber_registers_while_it_listens(own_store: PostgresEventStore) -> None:
    # Appends notify only while someone is registered; a subscriber must be
    # registered while it waits and gone once it stops.  A row left by a
    # session that no longer exists is removed by the next registration.
    async with own_store.connection() as connection:
        await connection.execute(
            sql.SQL("INSERT INTO {} (pid) VALUES (2147483000)").format(
                sql.Identifier(own_store.schema, "listeners")
            )
        )
    stream = f"listen-{uuid.uuid4().hex}"
    subscription = own_store.subscribe(poll_interval=30)
    first = asyncio.ensure_future(anext(subscription))

    # A condition wait with a generous deadline: on a busy machine registering took
    # longer than the two seconds this loop used to allow.
    async def registered_alone() -> bool:
        found = await _listeners(own_store)
        return bool(found) and 2147483000 not in found

    async with asyncio.timeout(60):
        while not await registered_alone():  # noqa: ASYNC110 (a table row has no event)
            await asyncio.sleep(0.02)
    registered = await _listeners(own_store)
    assert len(registered) == 1 and 2147483000 not in registered
    await own_store.append(stream, [NewEvent("Woken", {})])
    # The hint wakes the subscriber long before its 30 s poll.
    event = await asyncio.wait_for(first, timeout=10)
    assert event.stream_id == stream
    await subscription.aclose()
    assert await _listeners(own_store) == []


async def _terminate(store: PostgresEventStore, pids: list[int]) -> None:
    async with await psycopg.AsyncConnection.connect(store.dsn, autocommit=True) as admin:
        for pid in pids:
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def test_a_dropped_connection_is_replaced_not_surfaced(pg_dsn: str) -> None:
    # A database restart or a killed backend must not reach callers as a raw
    # driver error: the store retries once on a fresh connection (appends are
    # idempotent by event id, so a repeat of one that committed is harmless).
    schema = f"t_{uuid.uuid4().hex[:12]}"
    async with await PostgresEventStore.connect(pg_dsn, schema=schema, pool_size=1) as store:
        stream = f"drop-{uuid.uuid4().hex}"
        await store.append(stream, [NewEvent("Before", {})])
        async with store.connection() as connection:
            pid = connection.info.backend_pid
        await _terminate(store, [pid])
        result = await store.append(stream, [NewEvent("After", {})], 1)
        assert result.version == 2
        await _terminate(store, await _pool_pids(store))
        assert [e.type for e in await collect(store.read_stream(stream))] == ["Before", "After"]


async def _pool_pids(store: PostgresEventStore) -> list[int]:
    async with store.connection() as connection:
        return [connection.info.backend_pid]


async def test_a_subscription_survives_losing_its_listener(own_store: PostgresEventStore) -> None:
    stream = f"relisten-{uuid.uuid4().hex}"
    subscription = own_store.subscribe(poll_interval=0.2)
    await own_store.append(stream, [NewEvent("First", {})])
    first = await asyncio.wait_for(anext(subscription), timeout=10)
    assert first.type == "First"
    await _terminate(own_store, await _listeners(own_store))
    await own_store.append(stream, [NewEvent("Second", {})])
    second = await asyncio.wait_for(anext(subscription), timeout=10)
    assert (second.stream_id, second.type) == (stream, "Second")
    # It listens (and is registered) again.
    # A hang guard, not a timing check: re-registering can be slow on a busy machine.
    deadline = asyncio.get_running_loop().time() + 60
    while not await _listeners(own_store) and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert len(await _listeners(own_store)) == 1
    await subscription.aclose()


UNUSABLE_SCHEMAS = [
    "",
    " ",
    "x" * 49,
    "bad\x00name",
    "$body$",
    "a$body$b",
    "%s",
    "%%",
    "x%sy",
    "information_schema",
    "INFORMATION_SCHEMA",
    "pg_catalog",
    "pg_toast",
    "pg_anything",
    "Pg_Temp",
    "has-dash",
    "has space",
    '"quoted"',
    "1starts_with_digit",
    "é",
    None,
    7,
]


@pytest.mark.parametrize("schema", UNUSABLE_SCHEMAS)
async def test_unusable_schema_names_are_refused(pg_dsn: str, schema: Any) -> None:
    with pytest.raises(InvalidConfigurationError, match="schema") as caught:
        await PostgresEventStore.connect(pg_dsn, schema=schema)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(InvalidConfigurationError, match="schema"):
        await PostgresSnapshotStore.connect(pg_dsn, schema=schema)
    with pytest.raises(InvalidConfigurationError, match="schema"):
        PostgresSnapshotStore(own_connection_never_used, pg_dsn, schema=schema)


def own_connection_never_used() -> Any:
    raise AssertionError("a refused schema must not reach the database")


@pytest.mark.parametrize("schema", ["chronik", "_private", "Tenant_42", "x" * 48])
async def test_usable_schema_names_work(pg_dsn: str, schema: str) -> None:
    store = await PostgresEventStore.connect(pg_dsn, schema=schema, pool_size=1)
    try:
        await store.append(new_stream(), new_events(1))
    finally:
        await store.close()


async def test_open_transactions_hold_the_feed_back(own_store: PostgresEventStore) -> None:
    store = own_store
    early, late = new_stream(), new_stream()
    head = await store.head()
    async with store.connection() as connection:
        await connection.execute("BEGIN")
        held = await store.append(early, new_events(1), connection=connection)
        backend = connection.info.backend_pid
        committed = await store.append(late, new_events(2))
        # The later commit is invisible to the feed while the older transaction runs:
        # the feed never hands out a position that something older could land behind.
        assert await collect(store.read_all(head)) == []
        assert await store.head() == head
        assert await store.count_after(head) == 0
        assert await store.held_back_count() == 2  # committed, waiting behind ours
        assert await store.stream_version(late) == 2
        open_now = await store.open_transactions()
        mine = [t for t in open_now if t.pid == backend]
        assert [t.transaction_id for t in mine] == [held.positions[0].transaction_id]
        assert mine[0].started_at is not None and mine[0].started_at.utcoffset() is not None
        assert [t.transaction_id for t in open_now] == sorted(t.transaction_id for t in open_now)
        await connection.execute("COMMIT")
    assert backend not in [t.pid for t in await store.open_transactions()]
    feed = await collect(store.read_all(head))
    assert [e.position for e in feed] == [*held.positions, *committed.positions]
    assert await store.count_after(head) == 3
    assert await store.count_after(feed[0].position) == 2
    assert await store.held_back_count() == 0
    assert held.positions[0] < committed.positions[0]
    assert held.positions[0].global_position < committed.positions[0].global_position


# -- errors that must not leak the password ---------------------------------------


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://alice:s3cret-Pa55@127.0.0.1:1/ledger_db",
        "host=127.0.0.1 port=1 dbname=ledger_db user=alice password=s3cret-Pa55",
    ],
)
async def test_an_unreachable_database_names_host_and_database_not_password(dsn: str) -> None:
    with pytest.raises(StoreUnavailableError) as caught:
        await PostgresEventStore.connect(dsn, connect_timeout=3)
    error = caught.value
    text = f"{error} {error!r} {error.args} {error.target} {error.reason}"
    assert "127.0.0.1" in str(error)
    assert "ledger_db" in str(error)
    assert "s3cret-Pa55" not in text
    # The driver's exception may quote the DSN: it must not ride along as the cause.
    assert error.__cause__ is None and error.__suppress_context__


async def test_a_missing_database_is_named_without_the_password(pg_dsn: str) -> None:
    dsn = make_conninfo(pg_dsn, dbname="no_such_db_here", password="hunter2-secret")
    with pytest.raises(StoreUnavailableError) as caught:
        await PostgresEventStore.connect(dsn, connect_timeout=3)
    text = f"{caught.value} {caught.value!r}"
    assert "no_such_db_here" in str(caught.value)
    assert "hunter2-secret" not in text


async def test_repr_and_describe_never_show_the_password() -> None:
    dsn = "postgresql://alice:s3cret-Pa55@db.example:5433/ledger_db"
    assert "s3cret-Pa55" not in describe_dsn(dsn)
    assert "ledger_db" in describe_dsn(dsn) and "db.example" in describe_dsn(dsn)
    assert mask_password(f"failed for {dsn}", dsn) == (
        "failed for postgresql://alice:***@db.example:5433/ledger_db"
    )


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://alice:s3cret-Pa55@[::1/ledger_db",
        "host=db.example password=s3cret-Pa55 dbname",
        "host=db.example password='s3cret-Pa55' port=notaport dbname=ledger_db",
    ],
)
async def test_a_malformed_dsn_never_echoes_the_password(dsn: str) -> None:
    with pytest.raises(StoreUnavailableError) as caught:
        await PostgresEventStore.connect(dsn, connect_timeout=2)
    error = caught.value
    assert "s3cret-Pa55" not in f"{error} {error!r} {error.args}"
    assert error.__cause__ is None and error.__suppress_context__
    assert "s3cret-Pa55" not in describe_dsn(dsn)


async def test_the_dsns_own_options_are_kept(pg_dsn: str) -> None:
    dsn = make_conninfo(pg_dsn, options="-c statement_timeout=4321")
    async with (
        await PostgresEventStore.connect(
            dsn, schema=f"t_{uuid.uuid4().hex[:12]}", pool_size=1
        ) as store,
        store.connection() as c,
    ):
        assert await (await c.execute("SHOW statement_timeout")).fetchone() == ("4321ms",)


# -- schema migrations --------------------------------------------------------------


async def _migration_rows(store: PostgresEventStore) -> list[int]:
    async with store.connection() as connection:
        cursor = await connection.execute(
            sql.SQL("SELECT version FROM {} ORDER BY version").format(
                sql.Identifier(store.schema, "migrations")
            )
        )
        return [row[0] for row in await cursor.fetchall()]


async def test_migrating_again_changes_nothing(own_store: PostgresEventStore, pg_dsn: str) -> None:
    stream = new_stream()
    await own_store.append(stream, new_events(2))
    assert await own_store.migrate() == 0
    async with await PostgresEventStore.connect(pg_dsn, schema=own_store.schema) as again:
        assert await again.stream_version(stream) == 2
        assert await again.migrate() == 0
    assert await _migration_rows(own_store) == list(range(1, LATEST_VERSION + 1))


async def test_concurrent_start_ups_migrate_once(pg_dsn: str) -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    stores = await asyncio.gather(
        *(PostgresEventStore.connect(pg_dsn, schema=schema, pool_size=2) for _ in range(6))
    )
    try:
        assert await _migration_rows(stores[0]) == list(range(1, LATEST_VERSION + 1))
        stream = new_stream()
        for index, store in enumerate(stores):
            assert (await store.append(stream, new_events(1), index)).version == index + 1
    finally:
        for store in stores:
            await store.close()


async def test_a_store_without_create_schema_uses_the_existing_one(
    own_store: PostgresEventStore, pg_dsn: str
) -> None:
    stream = new_stream()
    await own_store.append(stream, new_events(1))
    async with await PostgresEventStore.connect(
        pg_dsn, schema=own_store.schema, create_schema=False
    ) as plain:
        assert await plain.stream_version(stream) == 1
        assert (plain.schema, plain.dsn) == (own_store.schema, pg_dsn)


# -- append-only --------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {} SET data = '{{}}'::jsonb",
        "UPDATE {} SET version = version + 100",
        "DELETE FROM {}",
        "TRUNCATE {}",
    ],
)
async def test_events_are_append_only(own_store: PostgresEventStore, statement: str) -> None:
    stream = new_stream()
    await own_store.append(stream, new_events(2))
    before = await collect(own_store.read_all())
    events = sql.Identifier(own_store.schema, "events")
    async with own_store.connection() as connection:
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            await connection.execute(sql.SQL(statement).format(events))
    assert await collect(own_store.read_all()) == before
