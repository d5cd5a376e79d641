"""The schema registry's table in PostgreSQL, and the reads of stored history it serves.

``event_schemas`` lives beside ``events`` and is created by the event store's
migration 6.  Registrations run in one transaction each: the row of a version is
inserted if absent, else locked and replaced only by a compatible schema (see
``_schema_diff``), so two processes registering at once cannot both "win".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from psycopg import AsyncConnection, errors, sql

from ._errors import InvalidConfigurationError
from ._model import RecordedEvent
from ._pg_read import recorded_events
from ._schemas import Registration, RegistrationStatus, SchemaRecord, SchemaRegistry, decide

Connect = Callable[[], Any]  # an async context manager giving a pooled connection

_COLUMNS = "event_type, schema_version, json_schema, fingerprint, model, registered_at, updated_at"
_INSERT = """
    INSERT INTO {table} (event_type, schema_version, json_schema, fingerprint, model)
    VALUES (%s, %s, %s::jsonb, %s, %s)
    ON CONFLICT (event_type, schema_version) DO NOTHING
    RETURNING event_type
"""
_LOCK = "SELECT {columns} FROM {table} WHERE event_type = %s AND schema_version = %s FOR UPDATE"
_UPDATE = """
    UPDATE {table} SET json_schema = %s::jsonb, fingerprint = %s, model = %s,
                       updated_at = clock_timestamp()
     WHERE event_type = %s AND schema_version = %s
"""
_LIST = 'SELECT {columns} FROM {table} ORDER BY event_type COLLATE "C", schema_version'

# The history check reads a sample of every stored (type, schema version): one
# event of each distinct top-level *shape* (the data's keys with their JSON
# kinds), so an odd old shape among millions is always in it, plus ``per_version``
# events spread over the history by a hash of their id (stable across runs).
# One scan and two window sorts of the table: meant for a pre-deploy check, run
# against a replica or a copy on large stores.
_STORED_VERSIONS = """
    SELECT type, schema_version, count(*) FROM {events}
     GROUP BY type, schema_version ORDER BY type COLLATE "C", schema_version
"""
_SAMPLE = """
    WITH shaped AS (
        SELECT e.*, CASE WHEN jsonb_typeof(e.data) = 'object' THEN (
                   SELECT coalesce(string_agg(key || ':' || jsonb_typeof(value), ','
                                              ORDER BY key COLLATE "C"), '')
                     FROM jsonb_each(e.data))
               ELSE jsonb_typeof(e.data) END AS shape
          FROM {events} AS e
    ), ranked AS (
        SELECT s.*,
               row_number() OVER (PARTITION BY type, schema_version, shape
                                  ORDER BY global_position) AS nth_of_shape,
               dense_rank() OVER (PARTITION BY type, schema_version
                                  ORDER BY shape COLLATE "C") AS shape_number,
               row_number() OVER (PARTITION BY type, schema_version
                                  ORDER BY md5(event_id::text), global_position) AS spread
          FROM shaped AS s
    )
    SELECT {columns} FROM ranked
     WHERE (nth_of_shape = 1 AND shape_number <= %(max_shapes)s) OR spread <= %(per_version)s
     ORDER BY type COLLATE "C", schema_version, global_position
"""
_EVENT_COLUMNS = """stream_id, version, transaction_id::text::bigint, global_position,
    event_id, type, schema_version, data, metadata, recorded_at"""

MIGRATION = [
    """
    CREATE TABLE {schema}.event_schemas (
        event_type     text NOT NULL,
        schema_version integer NOT NULL CHECK (schema_version > 0),
        json_schema    jsonb NOT NULL,
        -- SHA-256 of the canonical JSON, computed by the writer: jsonb does not
        -- keep key order, so the text is not re-derivable from the column.
        fingerprint    text NOT NULL,
        model          text NOT NULL,
        registered_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (event_type, schema_version)
    )
    """,
]


class PostgresSchemaRegistry(SchemaRegistry):
    """The registry in ``<schema>.event_schemas``, on the event store's pool."""

    def __init__(self, connect: Connect, schema: str) -> None:
        super().__init__()
        self._connect = connect
        self.schema = schema
        table = sql.Identifier(schema, "event_schemas")
        names = {"table": table, "columns": sql.SQL(_COLUMNS)}
        self._insert = sql.SQL(_INSERT).format(**names)
        self._lock_row = sql.SQL(_LOCK).format(**names)
        self._update = sql.SQL(_UPDATE).format(**names)
        self._list = sql.SQL(_LIST).format(**names)

    async def register(self, records: Iterable[SchemaRecord]) -> list[Registration]:
        records = list(records)
        outcomes: list[Registration] = []
        async with self._connect() as connection:
            try:
                async with connection.transaction():
                    for record in records:
                        outcomes.append(await self._register_one(connection, record))
            except errors.UndefinedTable:
                raise self._missing_table() from None
        return outcomes

    async def _register_one(
        self, connection: AsyncConnection[Any], record: SchemaRecord
    ) -> Registration:
        text = json.dumps(record.json_schema, sort_keys=True)
        cursor = await connection.execute(
            self._insert,
            (record.event_type, record.schema_version, text, record.fingerprint, record.model),
        )
        if await cursor.fetchone() is not None:
            return Registration(record, RegistrationStatus.REGISTERED)
        cursor = await connection.execute(
            self._lock_row, (record.event_type, record.schema_version)
        )
        outcome = decide(_record(await cursor.fetchone()), record)
        if outcome.status is RegistrationStatus.UPDATED:
            await connection.execute(
                self._update,
                (text, record.fingerprint, record.model, record.event_type, record.schema_version),
            )
        return outcome

    async def list(self) -> list[SchemaRecord]:
        async with self._connect() as connection:
            try:
                cursor = await connection.execute(self._list)
            except errors.UndefinedTable:
                raise self._missing_table() from None
            return [_record(row) for row in await cursor.fetchall()]

    def _missing_table(self) -> InvalidConfigurationError:
        return InvalidConfigurationError(
            "schema",
            f"schema {self.schema!r} has no event_schemas table (created by the event "
            "store's migration 6): run 'chronik init' or PostgresEventStore.migrate()",
        )


def _record(row: Any) -> SchemaRecord:
    return SchemaRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


async def stored_versions(
    connection: AsyncConnection[Any], schema: str
) -> dict[tuple[str, int], int]:
    statement = sql.SQL(_STORED_VERSIONS).format(events=sql.Identifier(schema, "events"))
    cursor = await connection.execute(statement)
    return {(row[0], row[1]): int(row[2]) for row in await cursor.fetchall()}


async def sample_events(
    connection: AsyncConnection[Any], schema: str, per_version: int, max_shapes: int
) -> list[RecordedEvent]:
    statement = sql.SQL(_SAMPLE).format(
        events=sql.Identifier(schema, "events"), columns=sql.SQL(_EVENT_COLUMNS)
    )
    cursor = await connection.execute(
        statement, {"per_version": per_version, "max_shapes": max_shapes}
    )
    return recorded_events(await cursor.fetchall())
