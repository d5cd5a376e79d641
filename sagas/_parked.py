"""Reaction triggers that kept failing, parked where a person sees them.

A reaction whose handler keeps raising (a bug, a refusal it does not answer) is
tried a few times with a growing pause, then its trigger is parked: a row here
names the reaction, the event (id, stream, version, type) and the last error,
and the runner moves on to the next event.  Nothing is dropped: the row stays,
listed by ``chronik sagas list`` and shown by ``chronik sagas show``, until the
reaction handles the event, which deletes the row in the transaction that marks
the event handled (``chronik sagas retry``, or a redelivery).

A parked trigger's id is ``<reaction>@<event id>``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql

from eventstore import RecordedEvent

from ._tables import SagaTables

SEPARATOR = "@"

_COLUMNS = (
    "reaction",
    "event_id",
    "stream_id",
    "version",
    "event_type",
    "error",
    "attempts",
    "parked_at",
    "updated_at",
)


@dataclass(frozen=True, slots=True)
class ParkedTrigger:
    """One event a reaction could not handle, with its last error."""

    reaction: str
    event_id: uuid.UUID
    stream_id: str
    version: int
    event_type: str
    error: str
    attempts: int
    parked_at: datetime
    updated_at: datetime

    @property
    def parked_id(self) -> str:
        return parked_id(self.reaction, self.event_id)


def parked_id(reaction: str, event_id: uuid.UUID) -> str:
    """The id ``chronik sagas show/retry`` take for a parked trigger."""
    return f"{reaction}{SEPARATOR}{event_id}"


def parse_parked_id(text: str) -> tuple[str, uuid.UUID] | None:
    """``(reaction, event id)`` of a parked trigger's id; None when it is not one."""
    reaction, separator, event_id = text.rpartition(SEPARATOR)
    if not separator or not reaction:
        return None
    try:
        return reaction, uuid.UUID(event_id)
    except ValueError:
        return None


class ParkedReactions:
    """The SQL on the parked triggers' table (created by ``SagaTables.migrate``)."""

    def __init__(self, tables: SagaTables) -> None:
        self.tables = tables
        self.table = tables.names["parked"]

    async def park(self, reaction: str, event: RecordedEvent, error: str, attempts: int) -> None:
        """Park ``event`` for ``reaction`` (again: the attempts add up, the error is the last)."""
        async with self.tables.store.connection() as connection:
            await connection.execute(
                sql.SQL(
                    "INSERT INTO {t} AS p (reaction, event_id, stream_id, version, event_type,"
                    " error, attempts) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (reaction, event_id) DO UPDATE"
                    " SET error = excluded.error, attempts = p.attempts + excluded.attempts,"
                    " updated_at = now()"
                ).format(t=self.table),
                (
                    reaction,
                    event.event_id,
                    event.stream_id,
                    event.version,
                    event.type,
                    error,
                    attempts,
                ),
            )

    async def unpark(self, connection: AsyncConnection[Any], reaction: str, event_id: Any) -> None:
        """In the caller's transaction: the event is handled now."""
        await connection.execute(
            sql.SQL("DELETE FROM {t} WHERE reaction = %s AND event_id = %s").format(t=self.table),
            (reaction, event_id),
        )

    async def get(self, reaction: str, event_id: uuid.UUID) -> ParkedTrigger | None:
        found = await self._select(
            sql.SQL(" WHERE reaction = %s AND event_id = %s"), [reaction, event_id]
        )
        return found[0] if found else None

    async def all(self, limit: int | None = None) -> list[ParkedTrigger]:
        """Every parked trigger, oldest first."""
        order = sql.SQL(" ORDER BY parked_at, reaction, event_id")
        if limit is None:
            return await self._select(order, [])
        return await self._select(order + sql.SQL(" LIMIT %s"), [limit])

    async def _select(self, tail: sql.Composable, params: list[Any]) -> list[ParkedTrigger]:
        async with self.tables.store.connection() as connection:
            cursor = await connection.execute(
                "SELECT to_regclass(%s)", (self.table.as_string(connection),)
            )
            exists = await cursor.fetchone()
            if exists is None or exists[0] is None:
                return []  # a store whose sagas' tables predate parking: nothing parked
            query = sql.SQL("SELECT {columns} FROM {t}").format(
                columns=sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)), t=self.table
            )
            cursor = await connection.execute(query + tail, params)
            rows = await cursor.fetchall()
        return [ParkedTrigger(*row) for row in rows]
