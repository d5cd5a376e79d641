"""Coalescing concurrent appends to different streams: one statement, one commit.

Why
---
On its own connection an append is one statement, and about half of its server
CPU is the commit (WAL insert and flush).  Several tasks of one process
appending to different streams at once can share that commit and the round
trip: the appends that queue up while a statement runs are sent together, as
one statement, when it ends (group commit: nothing waits for company).  An
append that arrives while no other append of the store is in flight takes the
single-append path of ``_pg_append`` at once, with no added latency.

Why it cannot change an append's outcome
-----------------------------------------
The coalesced statement only does what is sure to succeed and skips the rest:

* each stream's queue lock (see ``_pg_append``) is *tried*
  (``pg_try_advisory_xact_lock``), so the statement never waits behind another
  append or deadlocks: every chronik writer of a stream row, a caller's open
  transaction included, holds that lock first; a stream whose lock is busy is
  skipped;
* whatever else it might wait for (a stream row locked without the queue lock:
  by hand, or by an older chronik during a rolling upgrade; an uncommitted
  insert of the same event id) it waits for at most ``LOCK_WAIT`` (the
  statement sets ``lock_timeout`` for its own transaction, before any row is
  claimed), then fails as a whole.  Without the bound, every append of the
  process queued behind that one statement, whatever its stream, until the
  other transaction ended;
* the transaction id is taken after every lock is held, and each claim keeps the
  order guard (``last_xid``), so the feed stays in stream order: the batch's
  appends share one transaction id and are ordered within it by position;
* each claim is by exact kind of expectation; one that does not match simply
  returns no row.

An append that got no rows, and every append of a statement that failed as a
whole (a replayed event id's unique violation, a dead connection, a timeout),
is handed back to its caller, who runs the single-append path: that one
waits for the lock, tells an idempotent replay from a duplicate, raises
``ConcurrencyError`` or retries the order guard.  So each caller gets its own
result or its own error, exactly as without coalescing, and another stream's
failure only costs it the retry.  If the connection died after the commit, the
retry finds the events by id and answers with their original result.

Two forms of the statement, each rendered once per schema and prepared by
psycopg like the single path's: when every append of a batch expects an
existing stream (an exact version above 0 or STREAM_EXISTS, the common case:
an aggregate's next events), the claim is the UPDATE alone, which returns the
queue's columns itself; otherwise three claims (create, upsert, update) feed
one INSERT.  At batches of 4 the UPDATE-only form saves 3-5 µs of server and
3-5 µs of client CPU per event, 8-13% of the wall time in interleaved runs.
Most of what is left per statement is the commit, which a single append pays
too.

The trade-off (hence ``coalesce_appends=False``): a coalesced append commits
with its batch mates, so a slow commit delays them all, and its latency
includes its mates' rows.  A batch holds at most ``MAX_APPENDS`` appends, never
two to one stream, and at most ``max_bytes`` of JSON (the store's
``max_batch_bytes``: no statement is larger than one append may be).

Async only: the sync store has no concurrent tasks to coalesce.  Code that
uses this module sits under ``if ASYNC_ONLY`` in the async modules, and
``tools/async_to_sync.py`` leaves those branches out of the sync twins.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from ._model import AppendResult, ExpectedVersion, Position
from ._pg_append import QUEUE_LOCK_KEY, _own_cursor, batch_json, wake_up_hint
from ._validation import PreparedEvent

#: Marks async-only branches: ``tools/async_to_sync.py`` drops every
#: ``if ASYNC_ONLY ...:`` statement from the sync twin.
ASYNC_ONLY: Final = True

#: The most appends one statement carries: a bound on what one commit (and its
#: first caller) waits for; the rest go in the next statement.
MAX_APPENDS = 32
#: The longest a coalesced statement waits for a lock (``lock_timeout``): it
#: never waits in normal operation (see above), and past this its appends take
#: the single path, where only the one that needs the lock waits for it.
LOCK_WAIT = "50ms"
#: How many coalesced statements may be in flight at once.  One: 4 writers on 2
#: cores then share a statement 4 at a time.  Two would let the server run one
#: batch while the client prepares the next, but 4 writers then split into
#: batches of 2, and each statement's commit costs the same: interleaved in one
#: process on a quiet machine (medians of 15 rounds of 4 x 1,000 appends, two
#: runs), one statement ran 10.1-10.3k events/s at 81-83 µs of client+server CPU
#: per event, two 8.5-8.8k at 133, no coalescing 8.3k at 167-169, raw
#: single-row INSERTs 10.4-11.7k at 126-131.
MAX_STATEMENTS = 1

# The kinds of expectation, as the statement tells them apart.
_NO_STREAM, _ANY, _EXISTS, _EXACT = 0, 1, 2, 3
_KINDS = {
    ExpectedVersion.NO_STREAM: _NO_STREAM,
    ExpectedVersion.ANY: _ANY,
    ExpectedVersion.STREAM_EXISTS: _EXISTS,
}

# The batch arrives as one JSON array of appends: {"s": stream, "k": kind,
# "x": exact version or null, "e": [events as in _pg_append.batch_json]}.
# ``queue`` tries each stream's lock (chronik's two-key form, as in _pg_append)
# and keeps the appends that got it; ``xact`` reads all of it (count) before it
# takes the transaction id, and every claim joins ``xact``, so nothing is
# written, and no id assigned, before every lock is held.  With no lock held,
# ``xact`` is empty and the statement writes nothing.  ``xact`` also bounds the
# lock waits of the claims that follow ($2: LOCK_WAIT; local to the statement's
# own transaction).
_QUEUE = """
WITH queue AS MATERIALIZED (
    SELECT a.n AS slot, a.item->>'s' AS stream_id, (a.item->>'k')::integer AS kind,
           (a.item->>'x')::bigint AS expected, jsonb_array_length(a.item->'e') AS count,
           a.item->'e' AS events
      FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(item, n)
     WHERE pg_try_advisory_xact_lock({lock_key}, hashtext(a.item->>'s'))
),
xact AS MATERIALIZED (
    SELECT set_config('lock_timeout', $2::text, true) AS bounded, pg_current_xact_id() AS xid
      FROM (SELECT count(*) AS held FROM queue) AS locks
     WHERE locks.held > 0
),
"""
# Any mix of kinds: three claims, one per way a stream row is written.
_CLAIM_ALL = """
created AS (
    INSERT INTO {streams} AS s (stream_id, version, last_xid)
    SELECT q.stream_id, q.count, x.xid FROM queue AS q, xact AS x WHERE q.kind = {no_stream}
    ON CONFLICT (stream_id) DO NOTHING
    RETURNING s.stream_id, s.version, {hint}
),
upserted AS (
    INSERT INTO {streams} AS s (stream_id, version, last_xid)
    SELECT q.stream_id, q.count, x.xid FROM queue AS q, xact AS x WHERE q.kind = {any}
    ON CONFLICT (stream_id) DO UPDATE
       SET version = s.version + excluded.version, last_xid = excluded.last_xid,
           updated_at = clock_timestamp()
     WHERE s.last_xid <= excluded.last_xid
    RETURNING s.stream_id, s.version, {hint}
),
updated AS (
    UPDATE {streams} AS s
       SET version = s.version + q.count, last_xid = x.xid, updated_at = clock_timestamp()
      FROM queue AS q, xact AS x
     WHERE s.stream_id = q.stream_id AND q.kind >= {exists}
       AND (q.kind = {exists} OR s.version = q.expected)
       AND s.last_xid <= x.xid
    RETURNING s.stream_id, s.version, {hint}
),
claimed AS (
    SELECT q.slot, q.stream_id, c.version - q.count AS base, q.events
      FROM (SELECT stream_id, version FROM created
            UNION ALL SELECT stream_id, version FROM upserted
            UNION ALL SELECT stream_id, version FROM updated) AS c
      JOIN queue AS q USING (stream_id)
)
"""
# Only existing streams (STREAM_EXISTS and exact versions: the common case, an
# aggregate's next events): the UPDATE alone, which can return the queue's
# columns itself, so neither the two empty inserts nor the join back to
# ``queue`` are planned or run.
_CLAIM_EXISTING = """
claimed AS (
    UPDATE {streams} AS s
       SET version = s.version + q.count, last_xid = x.xid, updated_at = clock_timestamp()
      FROM queue AS q, xact AS x
     WHERE s.stream_id = q.stream_id
       AND (q.kind = {exists} OR s.version = q.expected)
       AND s.last_xid <= x.xid
    RETURNING q.slot, q.stream_id, s.version - q.count AS base, q.events, {hint}
)
"""
_INSERT = """
INSERT INTO {events}
       (stream_id, version, event_id, type, schema_version, data, metadata, batch_start)
SELECT c.stream_id, c.base + e.n, (e.item->>'id')::uuid, e.item->>'type',
       (e.item->>'v')::integer, e.item->'data', e.item->'meta', c.base + 1
  FROM claimed AS c
 CROSS JOIN LATERAL jsonb_array_elements(c.events) WITH ORDINALITY AS e(item, n)
 ORDER BY c.slot, e.n
RETURNING stream_id, version, transaction_id::text::bigint, global_position
"""


@dataclass(frozen=True, slots=True)
class CoalescedStatements:
    """The coalesced append for one schema, in its two forms, rendered once."""

    #: Any mix of expectations.
    mixed: bytes
    #: Only STREAM_EXISTS and exact versions (no stream is created).
    existing: bytes


def coalesced_statements(schema: str) -> CoalescedStatements:
    """The coalesced appends for ``schema``."""
    hint = wake_up_hint(schema)  # the live subscribers' wake-up, as in _pg_append

    def render(claim: str) -> bytes:
        return (
            sql.SQL(_QUEUE + claim + _INSERT)
            .format(
                streams=sql.Identifier(schema, "streams"),
                events=sql.Identifier(schema, "events"),
                hint=hint,
                lock_key=sql.Literal(QUEUE_LOCK_KEY),
                no_stream=sql.Literal(_NO_STREAM),
                any=sql.Literal(_ANY),
                exists=sql.Literal(_EXISTS),
            )
            .as_bytes()
        )

    return CoalescedStatements(mixed=render(_CLAIM_ALL), existing=render(_CLAIM_EXISTING))


def append_document(
    stream_id: str, batch: Sequence[PreparedEvent], expected: ExpectedVersion | int
) -> str:
    """One append as an element of the statement's JSON array."""
    if isinstance(expected, ExpectedVersion):
        kind, exact = _KINDS[expected], "null"
    elif expected == 0:
        kind, exact = _NO_STREAM, "null"
    else:
        kind, exact = _EXACT, str(expected)
    return f'{{"s":{json.dumps(stream_id)},"k":{kind},"x":{exact},"e":{batch_json(batch)}}}'


def claims_existing(expected: ExpectedVersion | int) -> bool:
    """Whether the append only ever writes an existing stream row (the UPDATE claim)."""
    if isinstance(expected, ExpectedVersion):
        return expected is ExpectedVersion.STREAM_EXISTS
    return expected > 0


SingleAppend = Callable[
    [str, Sequence[PreparedEvent], ExpectedVersion | int], Awaitable[AppendResult]
]


@dataclass(eq=False, slots=True)
class _Queued:
    stream_id: str
    document: str
    existing: bool  # claims_existing: the batch may use the UPDATE-only statement
    # The result, or None: not appended, take the single path.
    done: asyncio.Future[AppendResult | None]


@dataclass(slots=True)
class CoalesceStats:
    """What the coalescer did since the store opened (for benchmarks and tests)."""

    #: Appends that took the single path at once (nothing else in flight).
    alone: int = 0
    #: Coalesced statements sent, and the appends they carried.
    statements: int = 0
    carried: int = 0
    #: Of those statements, how many were the UPDATE-only form (every append
    #: of the batch to an existing stream).
    existing_only: int = 0
    #: Carried appends that got no rows (or whose statement failed) and were
    #: handed back to the single path.
    handed_back: int = 0


class AppendCoalescer:
    """Runs a store's own-transaction appends alone, or several in one statement."""

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        schema: str,
        single: SingleAppend,
        *,
        max_bytes: int,
        max_appends: int = MAX_APPENDS,
    ) -> None:
        self._pool = pool
        self._statements = coalesced_statements(schema)
        self._single = single
        self._max_bytes = max_bytes
        self._max_appends = max_appends
        self._active = 0  # own-transaction appends between entry and result
        self._queue: deque[_Queued] = deque()
        self._in_flight: set[str] = set()  # streams in a statement being executed
        self._senders = 0  # tasks sending batches, at most MAX_STATEMENTS
        self._tasks: set[asyncio.Task[None]] = set()  # referenced until done
        self.stats = CoalesceStats()
        #: ``lock_timeout`` of each statement (see LOCK_WAIT).
        self.lock_wait = LOCK_WAIT

    async def append(
        self, stream_id: str, batch: Sequence[PreparedEvent], expected: ExpectedVersion | int
    ) -> AppendResult:
        self._active += 1
        try:
            if self._active == 1:
                self.stats.alone += 1
                return await self._single(stream_id, batch, expected)
            queued = _Queued(
                stream_id,
                append_document(stream_id, batch, expected),
                claims_existing(expected),
                asyncio.get_running_loop().create_future(),
            )
            self._queue.append(queued)
            if self._senders < MAX_STATEMENTS:
                self._senders += 1
                task = asyncio.create_task(self._send_batches())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            result = await queued.done
            if result is not None:
                return result
            return await self._single(stream_id, batch, expected)
        finally:
            self._active -= 1

    async def _send_batches(self) -> None:
        """Send what is queued, one statement at a time, until nothing is left.

        The sender keeps its connection from one statement to the next: a pool
        checkout and return per statement is client CPU the batch need not pay.
        """
        connection: AsyncConnection[Any] | None = None
        try:
            while True:
                batch = self._take()
                if not batch:
                    # No await between the empty queue and the count going down,
                    # so an append queued from now on starts a sender of its own.
                    self._senders -= 1
                    return
                if connection is None:
                    connection = await self._connection(batch)
                if connection is not None and not await self._send(batch, connection):
                    # The pool checks it (dropping a dead one) before lending it again.
                    await self._pool.putconn(connection)
                    connection = None
                # The callers just answered are ready to run and usually append
                # again at once: let them queue before the next batch is taken.
                await asyncio.sleep(0)
        except BaseException:
            self._senders -= 1
            raise
        finally:
            if connection is not None:
                await self._pool.putconn(connection)

    def _take(self) -> list[_Queued]:
        """The next batch: queued order, one append per stream, within the bounds."""
        batch: list[_Queued] = []
        later: list[_Queued] = []
        size = 0
        while self._queue and len(batch) < self._max_appends:
            queued = self._queue.popleft()
            if queued.done.done():
                continue  # its caller was cancelled
            if queued.stream_id in self._in_flight:
                later.append(queued)  # the stream's earlier append is in a statement
                continue
            if batch and size + len(queued.document) > self._max_bytes:
                later.append(queued)
                break
            batch.append(queued)
            self._in_flight.add(queued.stream_id)
            size += len(queued.document)
        self._queue.extendleft(reversed(later))
        return batch

    async def _connection(self, batch: list[_Queued]) -> AsyncConnection[Any] | None:
        """A pooled connection; None if there is none (``batch`` was handed back)."""
        try:
            return await self._pool.getconn()
        except psycopg.Error:
            # The single path raises the pool's error for each caller, typed.
            self._answer(batch, [])
            return None
        except BaseException as error:
            self._fail(batch, error)
            raise

    async def _send(self, batch: list[_Queued], connection: AsyncConnection[Any]) -> bool:
        """Run ``batch`` as one statement and answer its callers; False if the
        statement failed (its appends were handed back)."""
        self.stats.statements += 1
        self.stats.carried += len(batch)
        document = "[" + ",".join(queued.document for queued in batch) + "]"
        statement = self._statements.mixed
        if all(queued.existing for queued in batch):
            self.stats.existing_only += 1
            statement = self._statements.existing
        rows: list[Any] = []
        try:
            # The store's kept raw cursor, as the single path uses it: no
            # placeholder parsing or cursor set-up per statement.
            cursor = _own_cursor(connection)
            await cursor.execute(statement, [document, self.lock_wait])
            rows = await cursor.fetchall()
        except psycopg.Error:
            # Nothing of it was written (or, after a lost commit, all of it: the
            # single path finds the events by id).  Each caller retries alone,
            # where its own error, if any, is diagnosed.
            self._answer(batch, [])
            return False
        except BaseException as error:
            self._fail(batch, error)
            raise
        self._answer(batch, rows)
        return True

    def _fail(self, batch: list[_Queued], error: BaseException) -> None:
        """A bug or a cancellation, not a database answer: no caller waits forever."""
        self._in_flight.difference_update(queued.stream_id for queued in batch)
        for queued in batch:
            if queued.done.done():
                continue
            if isinstance(error, asyncio.CancelledError):
                queued.done.cancel()
            else:
                queued.done.set_exception(error)

    def _answer(self, batch: list[_Queued], rows: list[Any]) -> None:
        """Each caller's result from the statement's rows; None: take the single path."""
        self._in_flight.difference_update(queued.stream_id for queued in batch)
        by_stream: dict[str, list[tuple[int, int, int]]] = {}
        for stream_id, version, transaction_id, position in rows:
            by_stream.setdefault(stream_id, []).append((version, transaction_id, position))
        for queued in batch:
            appended = by_stream.get(queued.stream_id)
            if appended is None:
                self.stats.handed_back += 1
            if queued.done.done():
                continue
            if appended is None:
                queued.done.set_result(None)
                continue
            appended.sort()
            queued.done.set_result(
                AppendResult(
                    queued.stream_id,
                    appended[-1][0],
                    tuple(Position(row[1], row[2]) for row in appended),
                )
            )
