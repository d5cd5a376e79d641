"""The Postgres schema of the event store and its idempotent migrations.

Migrations are numbered and recorded in ``<schema>.migrations``; each runs in
one transaction under an advisory lock, so several processes starting at once
neither race on ``CREATE`` nor apply a step twice.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql

from ._pg_read import PAGED_READS, paged_read_function
from ._pg_schemas import MIGRATION as EVENT_SCHEMAS_TABLE
from ._schema_name import check_schema_name

# Each step is a list of statements; ``{schema}`` is replaced by the quoted
# schema identifier, ``{channel}`` by the quoted NOTIFY channel literal.
_MIGRATIONS: list[list[str]] = [
    [
        """
        CREATE TABLE {schema}.streams (
            stream_id  text PRIMARY KEY,
            version    bigint NOT NULL CHECK (version > 0),
            -- The transaction that appended last: an append from an older
            -- transaction would be ordered before it in the feed (see append).
            last_xid   xid8 NOT NULL,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """,
        """
        CREATE TABLE {schema}.events (
            global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
            stream_id       text NOT NULL,
            version         bigint NOT NULL CHECK (version > 0),
            event_id        uuid NOT NULL,
            type            text NOT NULL,
            schema_version  integer NOT NULL CHECK (schema_version > 0),
            data            jsonb NOT NULL,
            metadata        jsonb NOT NULL,
            -- clock_timestamp, not now(): taken after the stream row lock, so it
            -- never goes backwards within a stream, even for long transactions.
            recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
            CONSTRAINT events_stream_version UNIQUE (stream_id, version),
            CONSTRAINT events_event_id UNIQUE (event_id)
        )
        """,
        "CREATE INDEX events_feed ON {schema}.events (transaction_id, global_position)",
        """
        CREATE FUNCTION {schema}.notify_append() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- A constant payload: NOTIFY folds duplicates within a transaction,
            -- and listeners only use it as a hint to read the feed.
            PERFORM pg_notify({channel}, '');
            RETURN NULL;
        END $$
        """,
        """
        CREATE TRIGGER events_notify AFTER INSERT ON {schema}.events
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_append()
        """,
        """
        CREATE FUNCTION {schema}.reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'chronik events are append-only: % is not allowed', TG_OP
                USING ERRCODE = 'restrict_violation';
        END $$
        """,
        """
        CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON {schema}.events
        FOR EACH ROW EXECUTE FUNCTION {schema}.reject_change()
        """,
        """
        CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON {schema}.events
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.reject_change()
        """,
    ],
    [
        # Appends notify only while a subscriber is registered here: see
        # _pg_listen for why.  UNLOGGED: after a crash nobody is listening.
        """
        CREATE UNLOGGED TABLE {schema}.listeners (
            pid           integer PRIMARY KEY,
            registered_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """,
        """
        CREATE OR REPLACE FUNCTION {schema}.notify_append() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT FROM {schema}.listeners) THEN
                -- A constant payload: NOTIFY folds duplicates within a
                -- transaction, and listeners only use it as a hint.
                PERFORM pg_notify({channel}, '');
            END IF;
            RETURN NULL;
        END $$
        """,
    ],
    [
        # list_streams pages in code-point order and finds a prefix by range.
        'CREATE INDEX streams_listing ON {schema}.streams (stream_id COLLATE "C")',
    ],
    [
        # The version an append's batch began at: tells apart two batches one
        # transaction appended to one stream, so re-appending either is a no-op.
        "ALTER TABLE {schema}.events ADD COLUMN batch_start bigint",
    ],
    [paged_read_function(name) for name in PAGED_READS],
    # The event schema registry (see _pg_schemas).
    EVENT_SCHEMAS_TABLE,
    [
        # 'chronik trace': every event of one correlation.  An expression index,
        # not a GIN on metadata: one key is looked up, by equality only.
        "CREATE INDEX events_correlation ON {schema}.events ((metadata->>'correlation_id'))",
    ],
    [
        # The append statement sends the wake-up itself (see _pg_append: HINT);
        # the trigger cost ~10 µs of server CPU per append (a plpgsql call, its
        # after-trigger queue and an SPI query), a sixth of the statement.  The
        # function stays: the outbox's trigger (messaging) still uses it.
        "DROP TRIGGER events_notify ON {schema}.events",
        # Only events that carry a correlation id are looked up by one, so only
        # they need an index entry: an append without one (no correlation() in
        # effect) skips a btree insertion.  The trace query's ``= %s`` implies
        # IS NOT NULL, so the planner still uses this partial index for it.
        "DROP INDEX {schema}.events_correlation",
        """
        CREATE INDEX events_correlation ON {schema}.events ((metadata->>'correlation_id'))
         WHERE (metadata->>'correlation_id') IS NOT NULL
        """,
    ],
]

LATEST_VERSION = len(_MIGRATIONS)


def notify_channel(schema: str) -> str:
    return f"chronik_events.{schema}"


async def migrate(connection: AsyncConnection[Any], schema: str) -> int:
    """Create or upgrade the event store's tables; return how many steps were applied."""
    return await apply_migrations(
        connection,
        schema,
        ledger="migrations",
        steps=_MIGRATIONS,
        channel=sql.Literal(notify_channel(schema)),
    )


async def apply_migrations(
    connection: AsyncConnection[Any],
    schema: str,
    *,
    ledger: str,
    steps: list[list[str]],
    **names: sql.Composable,
) -> int:
    """Apply the numbered ``steps`` not yet recorded in ``<schema>.<ledger>``.

    Each step is a list of statements; ``{schema}`` becomes the quoted schema and
    each keyword in ``names`` its value.  Every package that keeps tables in the
    schema (snapshots, say) has a ledger of its own, so they upgrade apart, but all
    take the same lock: that serializes ``CREATE SCHEMA`` between them, which
    would otherwise fail on the catalog's unique index when two race.
    """
    check_schema_name(schema)
    schema_id = sql.Identifier(schema)
    ledger_id = sql.Identifier(schema, ledger)
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext('chronik.migrate.' || %s))", (schema,)
        )
        await connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema_id))
        await connection.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                " version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(ledger_id)
        )
        cursor = await connection.execute(
            sql.SQL("SELECT coalesce(max(version), 0) FROM {}").format(ledger_id)
        )
        row: Any = await cursor.fetchone()
        current = int(row[0]) if row else 0
        for number, statements in enumerate(steps[current:], start=current + 1):
            for statement in statements:
                await connection.execute(sql.SQL(statement).format(schema=schema_id, **names))
            await connection.execute(
                sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(ledger_id), (number,)
            )
        return len(steps) - current
