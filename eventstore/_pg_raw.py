"""The feed as PostgreSQL sends it: raw pages for code that forwards events.

A relay publishing events to a broker sends each event's data on as JSON, and
PostgreSQL already prints ``jsonb`` as JSON text: parsing it into dicts only to
serialize it again cost about a third of the relay's time per event, and the
``UUID`` object of each event id was built only to be printed again.  So a raw
page selects those columns as text and hands them on untouched (``RawEvent``).

It reads through ``<schema>.feed_page``, the same paged function as
``read_all`` (see ``_pg_read``): the gap-safe visibility rule stays in one
place, and casting its output costs nothing the plan would notice.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql

from ._model import Position, RawEvent

_RAW_PAGE = """
    SELECT stream_id, version, transaction_id, global_position, event_id::text, type,
           schema_version, data::text, metadata::text, recorded_at
      FROM {}(%s, %s, %s)
"""


def raw_page_statement(schema: str) -> sql.Composed:
    return sql.SQL(_RAW_PAGE).format(sql.Identifier(schema, "feed_page"))


async def fetch_raw_page(
    connection: AsyncConnection[Any], statement: sql.Composed, after: Position, limit: int
) -> list[RawEvent]:
    cursor = await connection.execute(
        statement, (str(after.transaction_id), after.global_position, limit), prepare=False
    )
    rows = await cursor.fetchall()
    # tuple.__new__ directly, as in ``recorded_events``: the named tuple's own
    # __new__ is a Python-level wrapper around it.  The JSON goes out as bytes
    # (what a Kafka value is); encoding text PostgreSQL sent as UTF-8 cannot fail.
    new = tuple.__new__
    return [
        new(
            RawEvent, (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7].encode(), r[8].encode(), r[9])
        )
        for r in rows
    ]
