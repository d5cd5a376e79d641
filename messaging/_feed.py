"""The relay's read of the event feed: rows with the JSON left as the database sent it.

The relay publishes each event's data as JSON, and PostgreSQL already sends
``jsonb`` as JSON text: parsing it into dicts (psycopg's default) only to
serialize it again cost about a third of the relay's time per event.  So the
relay reads the feed through a cursor whose ``jsonb`` loader keeps the bytes.

It calls ``<schema>.feed_page``, the event store's own paged feed function
(see ``eventstore._pg_read``): the gap-safe visibility rule stays in one place.
The data is published as stored (with its schema version): consumers run the
upcasters when they read, as every read path does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.adapt import Loader

from eventstore import Position


class FeedRow(NamedTuple):
    stream_id: str
    version: int
    position: Position
    event_id: UUID
    type: str
    schema_version: int
    #: The event data as JSON text (UTF-8), exactly as PostgreSQL printed it.
    data: bytes
    metadata: bytes
    recorded_at: datetime


class _JsonText(Loader):
    def load(self, data: Any) -> bytes:
        return bytes(data)


class FeedReader:
    def __init__(self, schema: str) -> None:
        self._page = sql.SQL("SELECT * FROM {}(%s, %s, %s)").format(
            sql.Identifier(schema, "feed_page")
        )

    async def page(
        self, connection: AsyncConnection[Any], after: Position, limit: int
    ) -> list[FeedRow]:
        cursor = connection.cursor()
        cursor.adapters.register_loader("jsonb", _JsonText)
        await cursor.execute(self._page, (str(after[0]), after[1], limit), prepare=False)
        new = tuple.__new__
        return [
            new(FeedRow, (r[0], r[1], new(Position, (r[2], r[3])), *r[4:]))
            for r in await cursor.fetchall()
        ]
