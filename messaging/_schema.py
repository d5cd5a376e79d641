"""Tables the messaging package keeps in the event store's schema.

``relay_checkpoints``: one row per relay name: how far it has published the
event feed and the outbox, its counts, and the error it is stuck on (if any).

``outbox``: messages of code that is not event-sourced.  The columns ``id``,
``aggregatetype``, ``aggregateid``, ``type`` and ``payload`` are those of
Debezium's outbox event router, so Debezium can read the same table.  The rest
is for the built-in relay: ``transaction_id`` and ``position`` make the outbox a
gap-safe feed exactly like the events table (see ``eventstore._pg_read``), and
inserts send the same wake-up hint as appends.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from eventstore import apply_migrations

_MIGRATIONS: list[list[str]] = [
    [
        """
        CREATE TABLE {schema}.relay_checkpoints (
            relay            text PRIMARY KEY,
            mode             text NOT NULL,
            events_txid      bigint NOT NULL DEFAULT 0,
            events_position  bigint NOT NULL DEFAULT 0,
            outbox_txid      bigint NOT NULL DEFAULT 0,
            outbox_position  bigint NOT NULL DEFAULT 0,
            published_events bigint NOT NULL DEFAULT 0,
            published_outbox bigint NOT NULL DEFAULT 0,
            last_error       text,
            last_error_at    timestamptz,
            updated_at       timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """,
        """
        CREATE TABLE {schema}.outbox (
            position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
            id             uuid NOT NULL UNIQUE,
            aggregatetype  text NOT NULL,
            aggregateid    text NOT NULL,
            type           text NOT NULL,
            payload        jsonb,
            topic          text,
            headers        jsonb NOT NULL DEFAULT '{{}}',
            created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """,
        "CREATE INDEX outbox_feed ON {schema}.outbox (transaction_id, position)",
        # The event store's wake-up function: relays waiting on appends wake for
        # outbox messages too.  It notifies only while someone listens.
        """
        CREATE TRIGGER outbox_notify AFTER INSERT ON {schema}.outbox
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_append()
        """,
    ],
]


async def migrate(connection: AsyncConnection[Any], schema: str) -> int:
    """Create or upgrade the relay's and outbox's tables (the event store's must exist)."""
    return await apply_migrations(
        connection, schema, ledger="messaging_migrations", steps=_MIGRATIONS
    )
