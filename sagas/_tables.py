"""The sagas' own tables beside the events: an index of instances, handled triggers,
runner checkpoints.  The SQL of each lives here.

The saga streams are the truth; ``sagas`` is an index of them for what streams
cannot answer quickly: which instances are running, waiting for an event, due
for a deadline, or in a given status.  Each row is written in the transaction
that appends the saga's events, so it never disagrees with the stream.
``saga_reactions`` marks the events a choreography reaction handled, in the
transaction of the commands it issued; ``saga_parked`` holds the events a
reaction kept failing on.  ``saga_checkpoints`` is where a runner resumes the
feed; it is only an optimisation (re-reading a batch is harmless, every effect
being idempotent), so it is written after the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, sql

from eventstore import Position, PostgresEventStore

from ._process import SagaProcess

# The triggers a reaction could not handle; ``_parked`` has the queries on it.
PARKED_TABLE = """
    CREATE TABLE IF NOT EXISTS {parked} (
        reaction   text NOT NULL,
        event_id   uuid NOT NULL,
        stream_id  text NOT NULL,
        version    bigint NOT NULL,
        event_type text NOT NULL,
        error      text NOT NULL,
        attempts   integer NOT NULL,
        parked_at  timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (reaction, event_id)
    )
"""

_TABLES = [
    """
    CREATE TABLE IF NOT EXISTS {sagas} (
        saga_id      text PRIMARY KEY,
        saga         text NOT NULL,
        status       text NOT NULL,
        version      bigint NOT NULL,
        step         text,
        started_at   timestamptz NOT NULL DEFAULT now(),
        updated_at   timestamptz NOT NULL DEFAULT now(),
        waiting_stream text,
        waiting_type text,
        deadline_at  timestamptz,
        reason       text
    )
    """,
    "CREATE INDEX IF NOT EXISTS {status_index} ON {sagas} (status, updated_at)",
    "CREATE INDEX IF NOT EXISTS {deadline_index} ON {sagas} (deadline_at)"
    " WHERE deadline_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS {waiting_index} ON {sagas} (waiting_stream)"
    " WHERE waiting_stream IS NOT NULL",
    """
    CREATE TABLE IF NOT EXISTS {reactions} (
        reaction   text NOT NULL,
        event_id   uuid NOT NULL,
        handled_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (reaction, event_id)
    )
    """,
    PARKED_TABLE,
    """
    CREATE TABLE IF NOT EXISTS {checkpoints} (
        runner text PRIMARY KEY,
        transaction_id bigint NOT NULL,
        sequence bigint NOT NULL
    )
    """,
]

_UPSERT = """
    INSERT INTO {sagas} AS s (saga_id, saga, status, version, step, waiting_stream,
                              waiting_type, deadline_at, reason)
    VALUES (%(id)s, %(saga)s, %(status)s, %(version)s, %(step)s, %(waiting_stream)s,
            %(waiting_type)s, %(deadline_at)s, %(reason)s)
    ON CONFLICT (saga_id) DO UPDATE
       SET status = excluded.status, version = excluded.version,
           step = coalesce(excluded.step, s.step),
           waiting_stream = excluded.waiting_stream, waiting_type = excluded.waiting_type,
           deadline_at = excluded.deadline_at, reason = excluded.reason, updated_at = now()
     -- A replayed (idempotent) append of an old batch must not roll the index back.
     WHERE s.version <= excluded.version
"""


@dataclass(frozen=True, slots=True)
class SagaRow:
    """One instance as the index has it."""

    saga_id: str
    saga: str
    status: str
    version: int
    step: str | None
    started_at: datetime
    updated_at: datetime
    waiting_stream: str | None
    waiting_type: str | None
    deadline_at: datetime | None
    reason: str | None


class SagaTables:
    """The SQL on the sagas' tables, in the event store's schema."""

    def __init__(self, store: PostgresEventStore) -> None:
        self.store = store
        schema = store.schema
        self.names = {
            "sagas": sql.Identifier(schema, "sagas"),
            "reactions": sql.Identifier(schema, "saga_reactions"),
            "checkpoints": sql.Identifier(schema, "saga_checkpoints"),
            "parked": sql.Identifier(schema, "saga_parked"),
            "status_index": sql.Identifier("sagas_status"),
            "deadline_index": sql.Identifier("sagas_deadline"),
            "waiting_index": sql.Identifier("sagas_waiting"),
        }

    def _sql(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(**self.names)

    async def migrate(self) -> None:
        async with self.store.connection() as connection, connection.transaction():
            # Concurrent CREATE ... IF NOT EXISTS can still collide in the catalog.
            await connection.execute("SELECT pg_advisory_xact_lock(1667787371, 5)")
            for statement in _TABLES:
                await connection.execute(self._sql(statement))

    async def exists(self) -> bool:
        async with self.store.connection() as connection:
            cursor = await connection.execute(
                "SELECT to_regclass(%s)", (self.names["sagas"].as_string(connection),)
            )
            row = await cursor.fetchone()
        return row is not None and row[0] is not None

    # -- in the caller's transaction --------------------------------------------

    async def write(
        self, connection: AsyncConnection[Any], process: SagaProcess, step: str | None
    ) -> None:
        state = process.state
        await connection.execute(
            self._sql(_UPSERT),
            {
                "id": process.id,
                "saga": state.saga,
                "status": str(state.status),
                "version": process.version,
                "step": step,
                "waiting_stream": state.waiting_stream,
                "waiting_type": state.waiting_type,
                "deadline_at": state.deadline_at,
                "reason": state.reason,
            },
        )

    async def mark_handled(
        self, connection: AsyncConnection[Any], reaction: str, event_id: Any
    ) -> bool:
        """Mark the event handled; False when it already was (nothing to do then)."""
        cursor = await connection.execute(
            self._sql(
                "INSERT INTO {reactions} (reaction, event_id) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING RETURNING 1"
            ),
            (reaction, event_id),
        )
        return await cursor.fetchone() is not None

    async def is_handled(self, reaction: str, event_id: Any) -> bool:
        async with self.store.connection() as connection:
            cursor = await connection.execute(
                self._sql("SELECT 1 FROM {reactions} WHERE reaction = %s AND event_id = %s"),
                (reaction, event_id),
            )
            return await cursor.fetchone() is not None

    @staticmethod
    async def now(connection: AsyncConnection[Any], shift: timedelta) -> datetime:
        """The database's clock (plus a test's shift)."""
        cursor = await connection.execute("SELECT now() + %s", (shift,))
        row = await cursor.fetchone()
        assert row is not None
        value: datetime = row[0]
        return value

    # -- queries ------------------------------------------------------------------

    async def select(
        self,
        *,
        status: str | None = None,
        saga_ids: Sequence[str] | None = None,
        waiting_streams: Sequence[str] | None = None,
        due: timedelta | None = None,
        limit: int | None = None,
    ) -> list[SagaRow]:
        clauses: list[str] = []
        params: list[Any] = []
        if status is not None:
            clauses.append("status = %s")
            params.append(status)
        if saga_ids is not None:
            clauses.append("saga_id = ANY(%s)")
            params.append(list(saga_ids))
        if waiting_streams is not None:
            clauses.append("waiting_stream = ANY(%s)")
            params.append(list(waiting_streams))
        if due is not None:
            clauses.append("deadline_at <= now() + %s")
            params.append(due)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        tail = " ORDER BY started_at, saga_id" + (" LIMIT %s" if limit is not None else "")
        if limit is not None:
            params.append(limit)
        query = sql.SQL(
            "SELECT saga_id, saga, status, version, step, started_at, updated_at,"
            " waiting_stream, waiting_type, deadline_at, reason FROM {sagas}"
        ).format(**self.names)
        async with self.store.connection() as connection:
            cursor = await connection.execute(query + sql.SQL(where + tail), params)
            rows = await cursor.fetchall()
        return [SagaRow(*row) for row in rows]

    async def active_ids(self) -> list[str]:
        """Instances that still have work (running or compensating, not waiting)."""
        async with self.store.connection() as connection:
            cursor = await connection.execute(
                self._sql(
                    "SELECT saga_id FROM {sagas} WHERE status IN ('running', 'compensating')"
                    " AND waiting_stream IS NULL ORDER BY started_at"
                )
            )
            return [row[0] for row in await cursor.fetchall()]

    async def checkpoint(self, runner: str) -> Position | None:
        async with self.store.connection() as connection:
            cursor = await connection.execute(
                self._sql("SELECT transaction_id, sequence FROM {checkpoints} WHERE runner = %s"),
                (runner,),
            )
            row = await cursor.fetchone()
        return Position(row[0], row[1]) if row is not None else None

    async def save_checkpoint(self, runner: str, position: Position) -> None:
        async with self.store.connection() as connection:
            await connection.execute(
                self._sql(
                    "INSERT INTO {checkpoints} (runner, transaction_id, sequence)"
                    " VALUES (%s, %s, %s) ON CONFLICT (runner) DO UPDATE"
                    " SET transaction_id = excluded.transaction_id,"
                    " sequence = excluded.sequence"
                    " WHERE ({checkpoints}.transaction_id, {checkpoints}.sequence)"
                    " < (excluded.transaction_id, excluded.sequence)"
                ),
                (runner, position[0], position[1]),
            )
