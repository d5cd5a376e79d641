"""The raw psycopg baseline: the physical limit of this server for the same rows.

The raw events table has exactly the columns of chronik's ``events`` table and
the same constraints and indexes (primary key on ``global_position``, unique
``(stream_id, version)``, unique ``event_id``, the feed index on
``(transaction_id, global_position)``), so every byte chronik stores and every
index it maintains is stored and maintained here too.  What raw leaves out is
everything that makes it an event store: no ``streams`` row (no optimistic
concurrency check, no stream order guard), no NOTIFY trigger, no append-only
triggers, no validation; the version is counted on the client.  Data goes in
as ``Jsonb(dict)`` (psycopg serializes it), on a plain autocommit
``AsyncConnection`` with psycopg's default settings (prepared statements after
five executions): one statement is one transaction and one round trip.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

_TABLE = """
CREATE TABLE {events} (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text NOT NULL,
    version         bigint NOT NULL CHECK (version > 0),
    event_id        uuid NOT NULL,
    type            text NOT NULL,
    schema_version  integer NOT NULL CHECK (schema_version > 0),
    data            jsonb NOT NULL,
    metadata        jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (stream_id, version),
    UNIQUE (event_id)
)
"""
_FEED_INDEX = "CREATE INDEX ON {events} (transaction_id, global_position)"
_COLUMNS = "stream_id, version, event_id, type, schema_version, data, metadata"
# The same select list chronik's reads use.
SELECT_COLUMNS = """stream_id, version, transaction_id::text::bigint, global_position,
    event_id, type, schema_version, data, metadata, recorded_at"""

EMPTY_METADATA: dict[str, Any] = {}


class RawEvents:
    """A raw events table in its own schema, and the statements the baseline runs."""

    def __init__(self, schema: str, table: str = "events") -> None:
        self.table = sql.Identifier(schema, table)
        self.schema = schema
        self._insert_cache: dict[int, sql.Composed] = {}

    async def create(self, connection: AsyncConnection[Any]) -> None:
        async with connection.transaction():
            await connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            await connection.execute(sql.SQL(_TABLE).format(events=self.table))
            await connection.execute(sql.SQL(_FEED_INDEX).format(events=self.table))

    def insert(self, rows: int) -> sql.Composed:
        """``INSERT ... VALUES (...), (...)`` of ``rows`` rows: one statement."""
        statement = self._insert_cache.get(rows)
        if statement is None:
            values = sql.SQL(", ").join(
                sql.SQL("(%s, %s, %s, %s, %s, %s, %s)") for _ in range(rows)
            )
            statement = sql.SQL("INSERT INTO {} ({}) VALUES {}").format(
                self.table, sql.SQL(_COLUMNS), values
            )
            self._insert_cache[rows] = statement
        return statement

    async def append(
        self,
        connection: AsyncConnection[Any],
        stream_id: str,
        first_version: int,
        events: Sequence[tuple[str, dict[str, Any]]],
    ) -> None:
        """Insert ``events`` (type, data) as versions ``first_version...`` in one statement."""
        params: list[Any] = []
        for offset, (event_type, data) in enumerate(events):
            params += (
                stream_id,
                first_version + offset,
                uuid.uuid4(),
                event_type,
                1,
                Jsonb(data),
                Jsonb(EMPTY_METADATA),
            )
        await connection.execute(self.insert(len(events)), params)

    def select_stream(self) -> sql.Composed:
        return sql.SQL("SELECT {} FROM {} WHERE stream_id = %s ORDER BY version").format(
            sql.SQL(SELECT_COLUMNS), self.table
        )

    async def seed(
        self,
        connection: AsyncConnection[Any],
        stream_prefix: str,
        streams: int,
        events_per_stream: int,
    ) -> None:
        """Bulk rows generated on the server: only for growing the table, never timed."""
        await connection.execute(
            sql.SQL(
                "INSERT INTO {} ({}) "
                "SELECT %s || s, v, gen_random_uuid(), 'Deposited', 1, "
                "       jsonb_build_object('amount', v), '{{}}'::jsonb "
                "  FROM generate_series(1, %s) s, generate_series(1, %s) v "
                " ORDER BY s, v"
            ).format(self.table, sql.SQL(_COLUMNS)),
            (stream_prefix, streams, events_per_stream),
        )
