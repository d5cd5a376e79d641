"""Status of a relay: checkpoint, lag, what holds the feed back, counts, errors.

Read from the database alone, so any process (``chronik relay status``) can
ask while the relay runs elsewhere.  Lag is what the relay could publish now:
feed events after its checkpoint and unpublished outbox rows, and the age of
the oldest of each.  As for projections, one long-open writing transaction
holds the feed back; the status names it (see ``projections.status``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import sql

from eventstore import OpenTransaction, Position, PostgresEventStore
from projections import PostgresAdvisoryLocks

_ROWS = """
    SELECT relay, mode, events_txid, events_position, outbox_txid, outbox_position,
           published_events, published_outbox, last_error, last_error_at, updated_at
      FROM {table} {where} ORDER BY relay
"""
_OUTBOX_PENDING = """
    SELECT count(*), min(created_at) FROM {outbox} AS o
     WHERE (o.transaction_id, o.position) > (%s::text::xid8, %s)
"""
# An advisory lock on a bigint key shows in pg_locks as two 32-bit halves.
_LEADER = """
    SELECT pid FROM pg_locks
     WHERE locktype = 'advisory' AND granted AND objsubid = 1
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND ((classid::bigint << 32) | objid::bigint) = %s
"""


@dataclass(frozen=True, slots=True)
class RelayStatus:
    name: str
    mode: str
    checkpoint: Position
    outbox_checkpoint: Position
    head: Position | None
    #: Feed events after the checkpoint.
    lag_events: int
    #: Age of the oldest feed event not yet published (0 when caught up).
    lag_seconds: float
    outbox_pending: int
    outbox_lag_seconds: float
    published_events: int
    published_outbox: int
    updated_at: datetime
    #: Why the relay is stuck (cleared by its next checkpoint).
    last_error: str | None
    last_error_at: datetime | None
    #: The PostgreSQL backend pid holding the relay's leader lock (None: no leader).
    leader_pid: int | None
    held_back_events: int
    held_back_by: OpenTransaction | None


async def relay_status(store: PostgresEventStore, name: str | None = None) -> list[RelayStatus]:
    """The status of relay ``name``, or of every relay that has a checkpoint row."""
    table = sql.Identifier(store.schema, "relay_checkpoints")
    where = sql.SQL("WHERE relay = %s") if name is not None else sql.SQL("")
    async with store.connection() as connection:
        cursor = await connection.execute("SELECT to_regclass(%s)", (table.as_string(connection),))
        exists = await cursor.fetchone()
        if exists is None or exists[0] is None:
            return []  # no relay has run in this schema yet
        cursor = await connection.execute(
            sql.SQL(_ROWS).format(table=table, where=where), (name,) if name is not None else ()
        )
        rows = await cursor.fetchall()
    if not rows:
        return []
    head = await store.head()
    waiting, blocker = await _held_back(store)
    return [await _one(store, row, head, waiting, blocker) for row in rows]


async def _one(
    store: PostgresEventStore,
    row: Any,
    head: Position | None,
    waiting: int,
    blocker: OpenTransaction | None,
) -> RelayStatus:
    name, mode = row[0], row[1]
    checkpoint, outbox = Position(row[2], row[3]), Position(row[4], row[5])
    lag_events = await store.count_after(checkpoint)
    now = datetime.now(UTC)
    lag_seconds = 0.0
    if lag_events:
        async for oldest in store.read_all(checkpoint, limit=1):
            lag_seconds = max(0.0, (now - oldest.recorded_at).total_seconds())
    async with store.connection() as connection:
        cursor = await connection.execute(
            sql.SQL(_OUTBOX_PENDING).format(outbox=sql.Identifier(store.schema, "outbox")),
            (str(outbox[0]), outbox[1]),
        )
        pending, oldest_row = await cursor.fetchone() or (0, None)
        relay_id = f"chronik-relay.{store.schema}.{name}"
        # The key of the lock the relay takes (projections' leader lock).
        key = PostgresAdvisoryLocks.for_store(store).lock(relay_id).key  # type: ignore[attr-defined]
        cursor = await connection.execute(_LEADER, (key,))
        leader = await cursor.fetchone()
    return RelayStatus(
        name=name,
        mode=mode,
        checkpoint=checkpoint,
        outbox_checkpoint=outbox,
        head=head,
        lag_events=lag_events,
        lag_seconds=lag_seconds,
        outbox_pending=int(pending),
        outbox_lag_seconds=max(0.0, (now - oldest_row).total_seconds()) if oldest_row else 0.0,
        published_events=row[6],
        published_outbox=row[7],
        updated_at=row[10],
        last_error=row[8],
        last_error_at=row[9],
        leader_pid=leader[0] if leader else None,
        held_back_events=waiting,
        held_back_by=blocker,
    )


async def _held_back(store: PostgresEventStore) -> tuple[int, OpenTransaction | None]:
    waiting = await store.held_back_count()
    if waiting == 0:
        return 0, None
    # The feed horizon is the oldest running transaction id: the first one listed.
    transactions = await store.open_transactions()
    return waiting, transactions[0] if transactions else None
