"""The snapshot table in PostgreSQL, its idempotent migration and its statements.

The table lives in the event store's schema but has its own migration record
(``snapshot_migrations``), so the two packages upgrade independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql

from eventstore import apply_migrations

# Each step is a list of statements; ``{schema}`` is the quoted schema identifier.
_MIGRATIONS: list[list[str]] = [
    [
        """
        CREATE TABLE {schema}.snapshots (
            stream_id      text NOT NULL,
            version        bigint NOT NULL CHECK (version > 0),
            aggregate_type text NOT NULL,
            fingerprint    text NOT NULL,
            -- Only objects: a loader never meets a state it cannot use.
            state          jsonb NOT NULL CHECK (jsonb_typeof(state) = 'object'),
            recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
            -- Also the index behind "newest version <= n": a backward scan, one row.
            PRIMARY KEY (stream_id, version)
        )
        """,
    ],
]

LATEST_VERSION = len(_MIGRATIONS)


async def migrate(connection: AsyncConnection[Any], schema: str) -> int:
    """Create or upgrade the snapshot table; return how many steps were applied."""
    return await apply_migrations(
        connection, schema, ledger="snapshot_migrations", steps=_MIGRATIONS
    )


@dataclass(frozen=True, slots=True)
class SnapshotStatements:
    """The store's statements, composed once per schema."""

    lock_stream: sql.Composed
    upsert: sql.Composed
    trim: sql.Composed
    load: sql.Composed
    load_all: sql.Composed
    delete: sql.Composed

    @classmethod
    def for_schema(cls, schema: str) -> SnapshotStatements:
        table = sql.SQL("{}.snapshots").format(sql.Identifier(schema))
        columns = sql.SQL("stream_id, aggregate_type, version, fingerprint, state, recorded_at")
        return cls(
            # Per-stream, per-schema: concurrent saves of one stream trim in turn,
            # so exactly ``keep`` snapshots remain.
            lock_stream=sql.SQL("SELECT pg_advisory_xact_lock(hashtextextended({}, 0))").format(
                sql.Literal(f"chronik.snapshots:{schema}:") + sql.SQL(" || %s")
            ),
            upsert=sql.SQL(
                "INSERT INTO {table} (stream_id, version, aggregate_type, fingerprint, state)"
                " VALUES (%s, %s, %s, %s, %s::jsonb)"
                # A fresh snapshot at a version that already has one (e.g. after a
                # schema change made the old one unusable) replaces it.
                " ON CONFLICT (stream_id, version) DO UPDATE SET"
                " aggregate_type = EXCLUDED.aggregate_type,"
                " fingerprint = EXCLUDED.fingerprint,"
                " state = EXCLUDED.state,"
                " recorded_at = clock_timestamp()"
            ).format(table=table),
            trim=sql.SQL(
                "DELETE FROM {table} WHERE stream_id = %(stream)s AND version < ("
                " SELECT version FROM {table} WHERE stream_id = %(stream)s"
                " ORDER BY version DESC OFFSET %(skip)s LIMIT 1)"
            ).format(table=table),
            load=sql.SQL(
                "SELECT {columns} FROM {table} WHERE stream_id = %s AND version <= %s"
                " ORDER BY version DESC LIMIT 1"
            ).format(columns=columns, table=table),
            load_all=sql.SQL(
                "SELECT {columns} FROM {table} WHERE stream_id = %s ORDER BY version"
            ).format(columns=columns, table=table),
            delete=sql.SQL("DELETE FROM {table} WHERE stream_id = %s").format(table=table),
        )
