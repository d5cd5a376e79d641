"""The idempotent-consumer helper: processed event ids in PostgreSQL.

At-least-once delivery means a handler sees some events twice (a crash before
the offset commit, a retry copy).  ``PostgresIdempotency`` records the ids a
consumer has processed; ``claim`` inserts the id in the caller's transaction, so
when the handler writes to the same database its effects and the record commit
or roll back together: a rolled-back handler is retried, a committed one is never
repeated.  Records older than the retention window are purged (redeliveries come
within minutes; the window only has to outlast them).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from psycopg import AsyncConnection, sql

from eventstore import Event, PostgresEventStore

from ._handlers import EventHandler, HandlerContext

DEFAULT_RETENTION = timedelta(days=7)


class PostgresIdempotency:
    """Processed event ids per consumer, in the event store's database and schema."""

    def __init__(
        self, store: PostgresEventStore, consumer: str, *, retention: timedelta = DEFAULT_RETENTION
    ):
        self.store = store
        self.consumer = consumer
        self.retention = retention
        self._table = sql.Identifier(store.schema, "processed_events")

    async def setup(self) -> None:
        """Create the table if it is missing."""
        async with self.store.connection() as connection, connection.transaction():
            await connection.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    " consumer text NOT NULL,"
                    " event_id uuid NOT NULL,"
                    " processed_at timestamptz NOT NULL DEFAULT now(),"
                    " PRIMARY KEY (consumer, event_id))"
                ).format(self._table)
            )
            await connection.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (processed_at)").format(
                    sql.Identifier("processed_events_at"), self._table
                )
            )

    async def claim(self, connection: AsyncConnection[Any], event_id: uuid.UUID) -> bool:
        """Record ``event_id`` in ``connection``'s transaction; False if it was processed."""
        cursor = await connection.execute(
            sql.SQL(
                "INSERT INTO {} (consumer, event_id) VALUES (%s, %s) "
                "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING 1"
            ).format(self._table),
            (self.consumer, event_id),
        )
        return await cursor.fetchone() is not None

    async def processed(self, event_id: uuid.UUID) -> bool:
        async with self.store.connection() as connection:
            cursor = await connection.execute(
                sql.SQL("SELECT 1 FROM {} WHERE consumer = %s AND event_id = %s").format(
                    self._table
                ),
                (self.consumer, event_id),
            )
            return await cursor.fetchone() is not None

    async def purge(self, older_than: timedelta | None = None) -> int:
        """Delete records older than ``older_than`` (default: the retention); the count."""
        window = older_than if older_than is not None else self.retention
        async with self.store.connection() as connection, connection.transaction():
            cursor = await connection.execute(
                sql.SQL("DELETE FROM {} WHERE consumer = %s AND processed_at < now() - %s").format(
                    self._table
                ),
                (self.consumer, window),
            )
            return cursor.rowcount

    async def once(
        self, event_id: uuid.UUID, work: Callable[[AsyncConnection[Any]], Awaitable[None]]
    ) -> bool:
        """Run ``work(connection)`` in one transaction with the claim, unless already done."""
        async with self.store.connection() as connection, connection.transaction():
            if not await self.claim(connection, event_id):
                return False
            await work(connection)
            return True


def idempotent(handler: EventHandler, idempotency: PostgresIdempotency) -> EventHandler:
    """``handler`` run at most once per event id; it gets the transaction as
    ``context.connection`` (its writes there commit with the record)."""

    async def once(event: Event, context: HandlerContext) -> None:
        async def work(connection: AsyncConnection[Any]) -> None:
            await handler(event, dataclasses.replace(context, connection=connection))

        await idempotency.once(context.envelope.event_id, work)

    return once
