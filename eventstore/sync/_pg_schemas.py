"""Generated from eventstore/_pg_schemas.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``eventstore._pg_schemas``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from psycopg import Connection, errors, sql

from eventstore._errors import InvalidConfigurationError
from eventstore._model import RecordedEvent
from eventstore._pg_read import recorded_events
from eventstore._pg_schemas import (
    _COLUMNS,
    _EVENT_COLUMNS,
    _INSERT,
    _LIST,
    _LOCK,
    _SAMPLE,
    _STORED_VERSIONS,
    _UPDATE,
    Connect,
    _record,
)
from eventstore._schemas import Registration, RegistrationStatus, SchemaRecord, decide
from eventstore.sync._schemas import SchemaRegistry


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

    def register(self, records: Iterable[SchemaRecord]) -> list[Registration]:
        records = list(records)
        outcomes: list[Registration] = []
        with self._connect() as connection:
            try:
                with connection.transaction():
                    for record in records:
                        outcomes.append(self._register_one(connection, record))
            except errors.UndefinedTable:
                raise self._missing_table() from None
        return outcomes

    def _register_one(self, connection: Connection[Any], record: SchemaRecord) -> Registration:
        text = json.dumps(record.json_schema, sort_keys=True)
        cursor = connection.execute(
            self._insert,
            (record.event_type, record.schema_version, text, record.fingerprint, record.model),
        )
        if cursor.fetchone() is not None:
            return Registration(record, RegistrationStatus.REGISTERED)
        cursor = connection.execute(self._lock_row, (record.event_type, record.schema_version))
        outcome = decide(_record(cursor.fetchone()), record)
        if outcome.status is RegistrationStatus.UPDATED:
            connection.execute(
                self._update,
                (text, record.fingerprint, record.model, record.event_type, record.schema_version),
            )
        return outcome

    def list(self) -> list[SchemaRecord]:
        with self._connect() as connection:
            try:
                cursor = connection.execute(self._list)
            except errors.UndefinedTable:
                raise self._missing_table() from None
            return [_record(row) for row in cursor.fetchall()]

    def _missing_table(self) -> InvalidConfigurationError:
        return InvalidConfigurationError(
            "schema",
            f"schema {self.schema!r} has no event_schemas table (created by the event store's migration 6): run 'chronik init' or PostgresEventStore.migrate()",
        )


def stored_versions(connection: Connection[Any], schema: str) -> dict[tuple[str, int], int]:
    statement = sql.SQL(_STORED_VERSIONS).format(events=sql.Identifier(schema, "events"))
    cursor = connection.execute(statement)
    return {(row[0], row[1]): int(row[2]) for row in cursor.fetchall()}


def sample_events(
    connection: Connection[Any], schema: str, per_version: int, max_shapes: int
) -> list[RecordedEvent]:
    statement = sql.SQL(_SAMPLE).format(
        events=sql.Identifier(schema, "events"), columns=sql.SQL(_EVENT_COLUMNS)
    )
    cursor = connection.execute(statement, {"per_version": per_version, "max_shapes": max_shapes})
    return recorded_events(cursor.fetchall())
