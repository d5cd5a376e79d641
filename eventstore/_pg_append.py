"""Appending to a stream in PostgreSQL: one statement, one round trip.

Why one statement is safe
-------------------------
The stream row is written first (a data-modifying CTE) and the events are
inserted only for the row it returns.  The row write takes the stream's row
lock, so concurrent appenders to one stream queue up; under READ COMMITTED the
waiting writer re-checks its ``WHERE`` against the row the winner committed, so
of two writers expecting version N exactly one succeeds and the other gets zero
rows, i.e. a ``ConcurrencyError``.  A statement is atomic on its own, so outside
a caller's transaction no ``BEGIN``/``COMMIT`` round trips are needed.

Why ``last_xid``
----------------
The feed is ordered by transaction id.  A transaction with an older id can
reach a stream's row lock after a newer one committed to the stream (ids are
handed out at the first write, locks are taken later).  Appending then would
put version N+1 ahead of version N in the feed.  The ``last_xid <=
pg_current_xact_id()`` guard refuses it; on its own connection the store simply
retries in a new transaction (which gets a newer id), inside a caller's
transaction it raises ``StreamOrderConflict`` (the caller must retry).
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncRawCursor, errors, pq, sql

from ._errors import (
    ConcurrencyError,
    DeadlockError,
    DuplicateEventError,
    InvalidAppendError,
    StreamOrderConflict,
)
from ._model import AppendResult, ExpectedVersion, Position, version_matches
from ._pg_schema import notify_channel
from ._validation import PreparedEvent, check_replayed_content

# How a stream row is claimed, by kind of expected version.  Each returns the
# version before the append as "base"; zero rows means the expectation failed
# (or the order guard did: the diagnosis tells which).  Nothing in a claim may
# take a transaction id before the queue lock is held (see below).
#
# NO_STREAM and ANY may create the stream: an INSERT fed from the ``queue`` CTE,
# so the lock is taken before ``pg_current_xact_id()`` runs; ON CONFLICT DO
# UPDATE then locks the existing row.
_CLAIM_NEW = """
    INSERT INTO {streams} AS s (stream_id, version, last_xid)
    SELECT %(stream_id)s, %(count)s, pg_current_xact_id() FROM queue
    ON CONFLICT (stream_id) DO NOTHING
    RETURNING 0 AS base, {hint}
"""
_CLAIM_ANY = """
    INSERT INTO {streams} AS s (stream_id, version, last_xid)
    SELECT %(stream_id)s, %(count)s, pg_current_xact_id() FROM queue
    ON CONFLICT (stream_id) DO UPDATE
       SET version = s.version + %(count)s, last_xid = pg_current_xact_id(),
           updated_at = clock_timestamp()
     WHERE s.last_xid <= pg_current_xact_id()
    RETURNING s.version - %(count)s AS base, {hint}
"""
# STREAM_EXISTS and exact versions never create the stream: a plain UPDATE,
# cheaper for the server than the upsert (no speculative insertion, no separate
# row-lock record, no existence probe).  With the one-event form below, an
# append's server CPU fell from ~59 to ~47 µs (raw single-row INSERT: ~25 µs).
# The order guard compares with an id taken in a subquery over ``queue``: it
# runs once, when the first row is checked, so the lock is held before this
# transaction gets its id (reading the row takes none).  A
# writer that waited there updates a row a newer transaction changed meanwhile:
# READ COMMITTED re-checks the WHERE against the committed row, so of two writers
# expecting version N exactly one succeeds.  A stream created after the
# statement began just reads as absent: a ConcurrencyError with actual 0 (or,
# when the diagnosis then finds the expected version, a retry), which was true
# when the statement began.
_CLAIM_EXISTING = """
    UPDATE {streams} AS s
       SET version = s.version + %(count)s, last_xid = pg_current_xact_id(),
           updated_at = clock_timestamp()
     WHERE s.stream_id = %(stream_id)s {exact}
       AND s.last_xid <= (SELECT pg_current_xact_id() FROM queue)
    RETURNING s.version - %(count)s AS base, {hint}
"""
_EXACT = "AND s.version = %(expected)s"

# The wake-up hint for live subscribers (see _pg_listen: sent only while one is
# registered, since NOTIFY costs writers group commit).  It used to be an AFTER
# INSERT trigger on events; computed here, in the claim's RETURNING, it costs a
# fraction: the trigger's plpgsql call, after-trigger queue and SPI query were
# ~10 µs of an append's ~50 µs of server CPU (backend user time under pgbench,
# 38-42 µs without it vs 45-54 µs with it).  Evaluated once per append and only
# when the claim returns its row: the EXISTS is an InitPlan, run lazily, so a
# rejected append neither scans ``listeners`` nor notifies (the trigger did).
# A constant payload: NOTIFY folds duplicates within a transaction.
_HINT = """
    CASE WHEN EXISTS (SELECT FROM {listeners}) THEN pg_notify({channel}, '')::text END AS hint
"""


def wake_up_hint(schema: str) -> sql.Composed:
    """The claim's ``hint`` column for ``schema`` (every append statement returns it)."""
    return sql.SQL(_HINT).format(
        listeners=sql.Identifier(schema, "listeners"),
        channel=sql.Literal(notify_channel(schema)),
    )


# Why the queue lock: transaction ids are handed out at a transaction's first
# write.  Without it, writers to one hot stream take their ids first and then
# queue on the row lock, so after each commit the waiters hold ids older than
# the winner's and lose the order guard: measured about one lost attempt per
# append with 8 writers on one stream.  A transaction-scoped advisory lock on the
# stream, taken before any id is assigned, makes writers queue *before* they get
# an id, so the one that proceeds always has a newer id than the last appender.
# The two-key form keeps chronik's keys apart from applications' one-key locks;
# a hash collision between two streams only makes them queue behind each other.
QUEUE_LOCK_KEY = 1667787371
_QUEUE = """
    WITH queue AS MATERIALIZED (
        SELECT pg_advisory_xact_lock({lock_key}, hashtext(%(stream_id)s))
    ),
    stream AS ({claim})
"""
# A batch travels as one JSON array (see batch_json) ...
_INSERT_EVENTS = """
    {queue}
    INSERT INTO {events}
           (stream_id, version, event_id, type, schema_version, data, metadata, batch_start)
    SELECT %(stream_id)s, stream.base + e.n, (e.item->>'id')::uuid, e.item->>'type',
           (e.item->>'v')::integer, e.item->'data', e.item->'meta', stream.base + 1
      FROM stream, jsonb_array_elements(%(batch)s::jsonb) WITH ORDINALITY AS e(item, n)
     ORDER BY e.n
    RETURNING version, transaction_id::text::bigint, global_position
"""
# ... but most appends carry one event (a command's outcome), and for one the
# server spends less on five scalar parameters than on unpacking an array.
_INSERT_EVENT = """
    {queue}
    INSERT INTO {events}
           (stream_id, version, event_id, type, schema_version, data, metadata, batch_start)
    SELECT %(stream_id)s, stream.base + 1, %(id)s::uuid, %(type)s::text,
           %(v)s::integer, %(data)s::jsonb, %(meta)s::jsonb, stream.base + 1
      FROM stream
    RETURNING version, transaction_id::text::bigint, global_position
"""

_FIND_EVENTS = """
    SELECT event_id, stream_id, version, transaction_id::text::bigint, global_position,
           type, schema_version, data, metadata, batch_start
      FROM {events} WHERE event_id = ANY(%s::uuid[])
"""
# The rows of one append: same stream, same transaction, same batch_start (a
# transaction may append to a stream twice).  Rows from before batch_start
# existed have NULL there and are told apart by transaction only.
_COUNT_IN_BATCH = """
    SELECT count(*) FROM {events}
     WHERE stream_id = %s AND transaction_id = %s::text::xid8
       AND batch_start IS NOT DISTINCT FROM %s
"""
_STREAM_VERSION = "SELECT version FROM {streams} WHERE stream_id = %s"

# An append on the store's own connection that loses the order guard is retried
# in a new transaction.  With the queue lock this takes a caller's transaction
# (which may hold an old id) appending to the stream concurrently; before it,
# 8 writers on one stream lost about once per append and a bound of 10 surfaced
# StreamOrderConflict about once in 2,000 appends.  A guard that can never pass
# still ends in an error, not a loop.
MAX_ORDER_RETRIES = 100


class AppendStatements:
    """The append SQL, composed once per schema."""

    def __init__(self, schema: str) -> None:
        streams = sql.Identifier(schema, "streams")
        events = sql.Identifier(schema, "events")
        hint = wake_up_hint(schema)

        def insert(insert_sql: str, claim: str, *, exact: bool = False) -> bytes:
            # Rendered once: psycopg re-renders a Composed on every execute.
            return _numbered(
                sql.SQL(insert_sql)
                .format(
                    queue=sql.SQL(_QUEUE).format(
                        lock_key=sql.Literal(QUEUE_LOCK_KEY),
                        claim=sql.SQL(claim).format(
                            streams=streams, exact=sql.SQL(_EXACT if exact else ""), hint=hint
                        ),
                    ),
                    events=events,
                )
                .as_bytes()
            )

        claims: dict[ExpectedVersion | str, tuple[str, bool]] = {
            ExpectedVersion.NO_STREAM: (_CLAIM_NEW, False),
            ExpectedVersion.ANY: (_CLAIM_ANY, False),
            ExpectedVersion.STREAM_EXISTS: (_CLAIM_EXISTING, False),
            "exact": (_CLAIM_EXISTING, True),
        }
        self.by_kind = {
            kind: insert(_INSERT_EVENTS, claim, exact=exact)
            for kind, (claim, exact) in claims.items()
        }
        self.one_by_kind = {
            kind: insert(_INSERT_EVENT, claim, exact=exact)
            for kind, (claim, exact) in claims.items()
        }
        self.find_events = sql.SQL(_FIND_EVENTS).format(events=events)
        self.count_in_batch = sql.SQL(_COUNT_IN_BATCH).format(events=events)
        self.stream_version = sql.SQL(_STREAM_VERSION).format(streams=streams)

    def statement_for(self, expected: ExpectedVersion | int, *, single: bool = False) -> bytes:
        """The statement for this expectation; ``single``: the one-event form."""
        statements = self.one_by_kind if single else self.by_kind
        if isinstance(expected, ExpectedVersion):
            return statements[expected]
        return statements[ExpectedVersion.NO_STREAM if expected == 0 else "exact"]


# The append statements' parameters, in order, as PostgreSQL's ``$n``: the
# statements run on a raw cursor with a list of values (see append_batch).  Only
# the exact-version claims use ``expected``, so it comes last and is sent to them
# alone (an unused parameter of unknown type is an error).
_SINGLE_PARAMETERS = ("stream_id", "count", "id", "type", "v", "data", "meta", "expected")
_BATCH_PARAMETERS = ("stream_id", "count", "batch", "expected")


def _numbered(statement: bytes) -> bytes:
    """``statement`` with its ``%(name)s`` placeholders as ``$n``."""
    order = _SINGLE_PARAMETERS if b"%(batch)s" not in statement else _BATCH_PARAMETERS
    return re.sub(
        rb"%\((\w+)\)s",
        lambda found: b"$%d" % (order.index(found.group(1).decode()) + 1),
        statement,
    )


def append_params(
    stream_id: str, batch: Sequence[PreparedEvent], expected: ExpectedVersion | int
) -> list[Any]:
    """The statement's parameters: the event's fields for one, else the JSON batch;
    the expected version only when it is exact (see ``_SINGLE_PARAMETERS``)."""
    if len(batch) == 1:
        event = batch[0]
        params: list[Any] = [
            stream_id,
            1,
            str(event.event_id),
            event.type,
            event.schema_version,
            event.data_json,
            event.metadata_json,
        ]
    else:
        params = [stream_id, len(batch), batch_json(batch)]
    if not isinstance(expected, ExpectedVersion) and expected != 0:
        params.append(expected)
    return params


def batch_json(batch: Sequence[PreparedEvent]) -> str:
    """The batch as one JSON array: a single text parameter instead of five arrays.

    psycopg spends more on adapting five Python lists than the server spends on
    parsing one JSON document; the events' data and metadata are already JSON.
    """
    return (
        "["
        + ",".join(
            f'{{"id":"{event.event_id}","type":{json.dumps(event.type)},'
            f'"v":{event.schema_version},"data":{event.data_json},"meta":{event.metadata_json}}}'
            for event in batch
        )
        + "]"
    )


async def append_batch(
    connection: AsyncConnection[Any],
    statements: AppendStatements,
    stream_id: str,
    batch: Sequence[PreparedEvent],
    expected: ExpectedVersion | int,
    *,
    own_transaction: bool,
) -> AppendResult:
    """Append on ``connection``; in a caller's transaction use a savepoint so a
    rejected append leaves the caller's transaction usable."""
    params = append_params(stream_id, batch, expected)
    statement = statements.statement_for(expected, single=len(batch) == 1)
    if (
        not own_transaction
        and not connection.autocommit
        and connection.info.transaction_status == pq.TransactionStatus.IDLE
    ):
        # On an idle non-autocommit connection psycopg's transaction() starts a
        # transaction of its own and COMMITS it at the end of the block, so the
        # caller's later rollback() would not undo the append.  Open the caller's
        # implicit transaction first; our block then becomes a savepoint in it.
        await connection.execute("SELECT 1")
    # A raw cursor (``$n`` placeholders, a list of values) skips psycopg's
    # placeholder parsing and reordering of named parameters; on the store's own
    # connections it is also kept for the next append instead of building a
    # cursor (adapters, transformer) per call.  Together ~8 µs of client CPU per
    # append (~45 -> ~38 µs executing the statement alone, min over 10 rounds of
    # 1,000 appends; benchmarks/_sync.py's append_1_sync is the same loop).
    cursor = _own_cursor(connection) if own_transaction else AsyncRawCursor(connection)
    for _attempt in range(MAX_ORDER_RETRIES):
        try:
            if own_transaction:
                await cursor.execute(statement, params)
                rows = await cursor.fetchall()
            else:
                async with connection.transaction():
                    await cursor.execute(statement, params)
                    rows = await cursor.fetchall()
        except errors.UniqueViolation as error:
            return await _already_appended(connection, statements, stream_id, batch, error)
        except errors.DeadlockDetected as error:
            held = () if own_transaction else await _held_streams(connection, stream_id)
            raise DeadlockError(stream_id, held) from error
        except errors.ProgramLimitExceeded as error:
            # Past max_batch_bytes' guarantee (a store configured above the default):
            # the statement failed whole, so nothing was written.
            raise InvalidAppendError(
                stream_id,
                f"PostgreSQL refused the batch of {len(batch)} events as too large "
                f"({error.diag.message_primary}): append it in smaller batches",
            ) from error
        if rows:
            rows.sort()
            if not own_transaction:
                _remember_append(connection, rows[0][1], stream_id)
            return AppendResult(
                stream_id, rows[-1][0], tuple(Position(row[1], row[2]) for row in rows)
            )
        replayed = await _find_replayed_batch(connection, statements, stream_id, batch)
        if replayed is not None:
            return replayed
        actual = await _stream_version(connection, statements, stream_id)
        if not version_matches(expected, actual):
            raise ConcurrencyError(stream_id, expected, actual)
        if not own_transaction:
            raise StreamOrderConflict(stream_id, expected, actual)
    raise StreamOrderConflict(stream_id, expected, actual)


# Where a connection the store owns keeps its append cursor: an attribute, so the
# cursor lives and dies with the connection (a weak mapping could not hold it: the
# cursor refers to its connection, so the key would never die).  Only the store's
# pooled connections get one; a caller's connection is left as it was given.
_CURSOR_ATTRIBUTE = "_chronik_append_cursor"


def _own_cursor(connection: AsyncConnection[Any]) -> AsyncRawCursor[Any]:
    cursor: AsyncRawCursor[Any] | None = getattr(connection, _CURSOR_ATTRIBUTE, None)
    if cursor is None or cursor.closed:
        cursor = AsyncRawCursor(connection)
        setattr(connection, _CURSOR_ATTRIBUTE, cursor)
    return cursor


# The streams each caller's transaction appended to, by connection: only to name
# them when an append deadlocks.  Keyed weakly, so a closed connection drops out;
# the transaction id tells a later transaction on the same connection apart.
_APPENDED: weakref.WeakKeyDictionary[AsyncConnection[Any], tuple[int, list[str]]] = (
    weakref.WeakKeyDictionary()
)


def _remember_append(connection: AsyncConnection[Any], transaction_id: int, stream_id: str) -> None:
    known = _APPENDED.get(connection)
    if known is None or known[0] != transaction_id:
        _APPENDED[connection] = (transaction_id, [stream_id])
    elif stream_id not in known[1]:
        known[1].append(stream_id)


async def _held_streams(connection: AsyncConnection[Any], stream_id: str) -> tuple[str, ...]:
    """The streams the caller's transaction appended to before this one deadlocked."""
    known = _APPENDED.get(connection)
    if known is None:
        return ()
    try:
        # The savepoint was rolled back; the caller's transaction is still open.
        cursor = await connection.execute("SELECT pg_current_xact_id_if_assigned()::text::bigint")
        row = await cursor.fetchone()
    except psycopg.Error:
        return ()  # only a detail of the message: never hide the deadlock behind it
    if row is None or row[0] != known[0]:
        return ()
    return tuple(s for s in known[1] if s != stream_id)


async def _already_appended(
    connection: AsyncConnection[Any],
    statements: AppendStatements,
    stream_id: str,
    batch: Sequence[PreparedEvent],
    error: errors.UniqueViolation,
) -> AppendResult:
    replayed = await _find_replayed_batch(connection, statements, stream_id, batch)
    if replayed is not None:
        return replayed
    constraint = error.diag.constraint_name or ""
    if constraint.endswith("events_stream_version"):
        # The streams row is the lock; this only trips if someone wrote events
        # without it.  Report it as the conflict it is.
        actual = await _stream_version(connection, statements, stream_id)
        raise ConcurrencyError(
            stream_id, "(a version taken by a concurrent writer)", actual
        ) from error
    raise DuplicateEventError(
        stream_id,
        tuple(str(event.event_id) for event in batch),
        "some of these event ids were appended before, but not as this exact batch",
    ) from error


async def _find_replayed_batch(
    connection: AsyncConnection[Any],
    statements: AppendStatements,
    stream_id: str,
    batch: Sequence[PreparedEvent],
) -> AppendResult | None:
    """The original result if this exact batch was appended before, else None.

    Raises ``DuplicateEventError`` on a partial overlap: never a silent drop.
    """
    cursor = await connection.execute(
        statements.find_events, ([event.event_id for event in batch],)
    )
    found = {row[0]: row for row in await cursor.fetchall()}
    if not found:
        return None
    ids = tuple(str(event.event_id) for event in batch)
    rows = [found.get(event.event_id) for event in batch]
    if any(row is None for row in rows):
        raise DuplicateEventError(stream_id, ids, "some of these events were appended before")
    first = rows[0]
    assert first is not None
    same_place = all(
        row is not None
        and row[1] == stream_id
        and row[2] == first[2] + offset
        and row[3] == first[3]
        for offset, row in enumerate(rows)
    )
    if same_place:
        cursor = await connection.execute(
            statements.count_in_batch, (stream_id, str(first[3]), first[9])
        )
        counted = await cursor.fetchone()
        same_place = counted is not None and counted[0] == len(rows)
    if not same_place:
        raise DuplicateEventError(
            stream_id, ids, "these event ids were appended before in another stream or batch"
        )
    check_replayed_content(stream_id, batch, [row[5:9] for row in rows if row is not None])
    return AppendResult(
        stream_id,
        first[2] + len(rows) - 1,
        tuple(Position(row[3], row[4]) for row in rows if row is not None),
    )


async def _stream_version(
    connection: AsyncConnection[Any], statements: AppendStatements, stream_id: str
) -> int:
    cursor = await connection.execute(statements.stream_version, (stream_id,))
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
