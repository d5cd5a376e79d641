"""Rows written straight into the events table, as rows from before a check existed."""

from __future__ import annotations

import uuid

from psycopg import sql

from eventstore import Position, PostgresEventStore


def deep_json(depth: int) -> str:
    """A JSON object nesting ``depth`` levels deep."""
    return '{"d":' * depth + "1" + "}" * depth


async def insert_raw(
    store: PostgresEventStore, stream: str, version: int, data_json: str, kind: str = "t.Raw"
) -> Position:
    """Insert one event row (and its stream row) without the store's checks."""
    async with store.connection() as connection, connection.transaction():
        cursor = await connection.execute(
            sql.SQL(
                "INSERT INTO {} (stream_id, version, event_id, type, schema_version, data,"
                " metadata) VALUES (%s, %s, %s, %s, 1, %s::text::jsonb, '{{}}')"
                " RETURNING transaction_id::text::bigint, global_position"
            ).format(sql.Identifier(store.schema, "events")),
            (stream, version, uuid.uuid4(), kind, data_json),
        )
        row = await cursor.fetchone()
        assert row is not None
        await connection.execute(
            sql.SQL(
                "INSERT INTO {} (stream_id, version, last_xid)"
                " VALUES (%s, %s, pg_current_xact_id())"
                " ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version,"
                " last_xid = excluded.last_xid"
            ).format(sql.Identifier(store.schema, "streams")),
            (stream, version),
        )
    return Position(row[0], row[1])
