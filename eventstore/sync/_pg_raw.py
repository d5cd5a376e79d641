"""Generated from eventstore/_pg_raw.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``eventstore._pg_raw``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

from typing import Any

from psycopg import Connection, sql

from eventstore._model import Position, RawEvent


def fetch_raw_page(
    connection: Connection[Any], statement: sql.Composed, after: Position, limit: int
) -> list[RawEvent]:
    cursor = connection.execute(
        statement, (str(after.transaction_id), after.global_position, limit), prepare=False
    )
    rows = cursor.fetchall()
    new = tuple.__new__
    return [
        new(
            RawEvent, (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7].encode(), r[8].encode(), r[9])
        )
        for r in rows
    ]
