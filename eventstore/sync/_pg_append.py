"""Generated from eventstore/_pg_append.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``eventstore._pg_append``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import Connection, RawCursor, errors, pq

from eventstore._errors import (
    ConcurrencyError,
    DeadlockError,
    DuplicateEventError,
    InvalidAppendError,
    StreamOrderConflict,
)
from eventstore._model import AppendResult, ExpectedVersion, Position, version_matches
from eventstore._pg_append import (
    _CURSOR_ATTRIBUTE,
    MAX_ORDER_RETRIES,
    AppendStatements,
    append_params,
)
from eventstore._validation import PreparedEvent, check_replayed_content


def append_batch(
    connection: Connection[Any],
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
        and (not connection.autocommit)
        and (connection.info.transaction_status == pq.TransactionStatus.IDLE)
    ):
        connection.execute("SELECT 1")
    cursor = _own_cursor(connection) if own_transaction else RawCursor(connection)
    for _attempt in range(MAX_ORDER_RETRIES):
        try:
            if own_transaction:
                cursor.execute(statement, params)
                rows = cursor.fetchall()
            else:
                with connection.transaction():
                    cursor.execute(statement, params)
                    rows = cursor.fetchall()
        except errors.UniqueViolation as error:
            return _already_appended(connection, statements, stream_id, batch, error)
        except errors.DeadlockDetected as error:
            held = () if own_transaction else _held_streams(connection, stream_id)
            raise DeadlockError(stream_id, held) from error
        except errors.ProgramLimitExceeded as error:
            raise InvalidAppendError(
                stream_id,
                f"PostgreSQL refused the batch of {len(batch)} events as too large ({error.diag.message_primary}): append it in smaller batches",
            ) from error
        if rows:
            rows.sort()
            if not own_transaction:
                _remember_append(connection, rows[0][1], stream_id)
            return AppendResult(
                stream_id, rows[-1][0], tuple(Position(row[1], row[2]) for row in rows)
            )
        replayed = _find_replayed_batch(connection, statements, stream_id, batch)
        if replayed is not None:
            return replayed
        actual = _stream_version(connection, statements, stream_id)
        if not version_matches(expected, actual):
            raise ConcurrencyError(stream_id, expected, actual)
        if not own_transaction:
            raise StreamOrderConflict(stream_id, expected, actual)
    raise StreamOrderConflict(stream_id, expected, actual)


def _own_cursor(connection: Connection[Any]) -> RawCursor[Any]:
    cursor: RawCursor[Any] | None = getattr(connection, _CURSOR_ATTRIBUTE, None)
    if cursor is None or cursor.closed:
        cursor = RawCursor(connection)
        setattr(connection, _CURSOR_ATTRIBUTE, cursor)
    return cursor


_APPENDED: weakref.WeakKeyDictionary[Connection[Any], tuple[int, list[str]]] = (
    weakref.WeakKeyDictionary()
)


def _remember_append(connection: Connection[Any], transaction_id: int, stream_id: str) -> None:
    known = _APPENDED.get(connection)
    if known is None or known[0] != transaction_id:
        _APPENDED[connection] = (transaction_id, [stream_id])
    elif stream_id not in known[1]:
        known[1].append(stream_id)


def _held_streams(connection: Connection[Any], stream_id: str) -> tuple[str, ...]:
    """The streams the caller's transaction appended to before this one deadlocked."""
    known = _APPENDED.get(connection)
    if known is None:
        return ()
    try:
        cursor = connection.execute("SELECT pg_current_xact_id_if_assigned()::text::bigint")
        row = cursor.fetchone()
    except psycopg.Error:
        return ()
    if row is None or row[0] != known[0]:
        return ()
    return tuple(s for s in known[1] if s != stream_id)


def _already_appended(
    connection: Connection[Any],
    statements: AppendStatements,
    stream_id: str,
    batch: Sequence[PreparedEvent],
    error: errors.UniqueViolation,
) -> AppendResult:
    replayed = _find_replayed_batch(connection, statements, stream_id, batch)
    if replayed is not None:
        return replayed
    constraint = error.diag.constraint_name or ""
    if constraint.endswith("events_stream_version"):
        actual = _stream_version(connection, statements, stream_id)
        raise ConcurrencyError(
            stream_id, "(a version taken by a concurrent writer)", actual
        ) from error
    raise DuplicateEventError(
        stream_id,
        tuple(str(event.event_id) for event in batch),
        "some of these event ids were appended before, but not as this exact batch",
    ) from error


def _find_replayed_batch(
    connection: Connection[Any],
    statements: AppendStatements,
    stream_id: str,
    batch: Sequence[PreparedEvent],
) -> AppendResult | None:
    """The original result if this exact batch was appended before, else None.

    Raises ``DuplicateEventError`` on a partial overlap: never a silent drop.
    """
    cursor = connection.execute(statements.find_events, ([event.event_id for event in batch],))
    found = {row[0]: row for row in cursor.fetchall()}
    if not found:
        return None
    ids = tuple(str(event.event_id) for event in batch)
    rows = [found.get(event.event_id) for event in batch]
    if any(row is None for row in rows):
        raise DuplicateEventError(stream_id, ids, "some of these events were appended before")
    first = rows[0]
    assert first is not None
    same_place = all(
        (
            row is not None
            and row[1] == stream_id
            and (row[2] == first[2] + offset)
            and (row[3] == first[3])
            for offset, row in enumerate(rows)
        )
    )
    if same_place:
        cursor = connection.execute(statements.count_in_batch, (stream_id, str(first[3]), first[9]))
        counted = cursor.fetchone()
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


def _stream_version(
    connection: Connection[Any], statements: AppendStatements, stream_id: str
) -> int:
    cursor = connection.execute(statements.stream_version, (stream_id,))
    row = cursor.fetchone()
    return int(row[0]) if row else 0
