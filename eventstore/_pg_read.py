"""Reading streams and the feed from PostgreSQL.

Why the feed never skips an event
---------------------------------
``global_position`` is handed out at insert time, but transactions commit in
any order: a reader that saw position 12 may later see 11 commit.  So the feed
is ordered by ``(transaction_id, global_position)`` and only shows events of
transactions older than the oldest one still running
(``pg_snapshot_xmin(pg_current_snapshot())``).  Every transaction below that
horizon has finished, and any transaction still to write gets a newer id, so
nothing can ever appear behind a position a reader has passed.  The price: one
long-open writing transaction holds the feed back (``open_transactions`` tells
which).
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from psycopg import sql

from ._errors import UnreadableEventError
from ._model import Position, RecordedEvent, StreamInfo
from ._validation import MAX_NESTING_DEPTH

_COLUMNS = """stream_id, version, transaction_id::text::bigint, global_position,
    event_id, type, schema_version, data, metadata, recorded_at"""

_STREAM_FORWARD = """
    SELECT {columns} FROM {events}
     WHERE stream_id = %s AND version >= %s AND version <= %s
     ORDER BY version LIMIT %s
"""
_STREAM_BACKWARD = """
    SELECT {columns} FROM {events}
     WHERE stream_id = %s AND version >= %s AND version <= %s
     ORDER BY version DESC LIMIT %s
"""
# ORDER BY names the table's columns through the alias ``e``: a bare
# ``transaction_id`` there means the *output* column of that name, which is the
# ``::text::bigint`` cast in the select list, and sorting by an expression keeps
# the planner off the (transaction_id, global_position) index: every feed page
# became a scan and sort of all later events, and head() a Seq Scan of the table.
_FEED = """
    SELECT {columns} FROM {events} AS e
     WHERE (e.transaction_id, e.global_position) > (%s::text::xid8, %s)
       AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
     ORDER BY e.transaction_id, e.global_position
     LIMIT %s
"""
_HEAD = """
    SELECT transaction_id::text::bigint, global_position FROM {events} AS e
     WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
     ORDER BY e.transaction_id DESC, e.global_position DESC
     LIMIT 1
"""
_COUNT_AFTER = """
    SELECT count(*) FROM {events} AS e
     WHERE (e.transaction_id, e.global_position) > (%s::text::xid8, %s)
       AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
"""
_HELD_BACK = """
    SELECT count(*) FROM {events} AS e
     WHERE e.transaction_id >= pg_snapshot_xmin(pg_current_snapshot())
"""
_VERSION = "SELECT version FROM {streams} WHERE stream_id = %s"
_VERSION_AS_OF = """
    SELECT coalesce(max(version), 0) FROM {events}
     WHERE stream_id = %s AND recorded_at <= %s
"""
_VERSION_AT_POSITION = """
    SELECT coalesce(max(version), 0) FROM {events}
     WHERE stream_id = %s AND (transaction_id, global_position) <= (%s::text::xid8, %s)
"""
# What one correlation led to (chronik trace), by the expression index of
# migration 7; feed order, as the events happened.
_CORRELATED = """
    SELECT {columns} FROM {events} AS e
     WHERE e.metadata->>'correlation_id' = %s
     ORDER BY e.transaction_id, e.global_position
     LIMIT %s
"""
_BY_EVENT_ID = "SELECT {columns} FROM {events} WHERE event_id = %s"
# Streams in code-point order (COLLATE "C", as the in-memory store sorts), so a
# prefix is one contiguous range of the "C" index: the scan starts at the prefix
# and stops before its successor (``prefix_successor``).
_STREAMS = """
    SELECT stream_id, version, created_at, updated_at FROM {streams}
     WHERE stream_id COLLATE "C" > %(after)s
       AND stream_id COLLATE "C" >= %(prefix)s
       AND (%(upper)s::text IS NULL OR stream_id COLLATE "C" < %(upper)s)
     ORDER BY stream_id COLLATE "C" LIMIT %(limit)s
"""
# Transactions holding an xid block the feed until they end; the oldest first.
_OPEN_TRANSACTIONS = """
    SELECT pid, backend_xid::text::bigint, xact_start, query_start, state,
           left(query, 200), extract(epoch FROM clock_timestamp() - xact_start)::float8,
           application_name
      FROM pg_stat_activity
     WHERE backend_xid IS NOT NULL
     ORDER BY backend_xid::text::bigint
"""


def prefix_successor(prefix: str) -> str | None:
    """The least string after every string that starts with ``prefix`` (None: none).

    Drop trailing U+10FFFF (nothing follows it), then bump the last code point,
    stepping over the surrogates, which no stored id can contain.
    """
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    following = ord(stripped[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:
        following = 0xE000
    return stripped[:-1] + chr(following)


# Why the paged reads run inside functions
# -----------------------------------------
# A page must walk its index in order.  On a table that was never analyzed
# (a fresh deployment, a bulk import, the minute before autovacuum gets to it)
# the planner guesses a few hundred matching rows and prefers a bitmap scan
# plus a sort: every page then sorts everything after it (measured: a 30,000
# event feed read at 70k events/s instead of 125k, and worse as it grows).
# ``SET enable_sort = off`` on the function makes any sorting plan a last
# resort for these statements only, so the index order is used whatever the
# statistics say.  The bodies are the statements above, numbered.
PAGED_READS: dict[str, tuple[str, str]] = {
    "stream_forward_page": (_STREAM_FORWARD, "text, bigint, bigint, bigint"),
    "stream_backward_page": (_STREAM_BACKWARD, "text, bigint, bigint, bigint"),
    "feed_page": (_FEED, "text, bigint, bigint"),
}
_RETURNS = """TABLE (stream_id text, version bigint, transaction_id bigint,
    global_position bigint, event_id uuid, type text, schema_version integer,
    data jsonb, metadata jsonb, recorded_at timestamptz)"""


def paged_read_function(name: str) -> str:
    """The migration statement creating one paged read (``{schema}`` left to fill)."""
    body, arguments = PAGED_READS[name]
    numbers = iter(range(1, 10))
    body = re.sub("%s", lambda _: f"${next(numbers)}", body)
    body = body.replace("{events}", "{schema}.events").replace("{columns}", _COLUMNS)
    return (
        f"CREATE OR REPLACE FUNCTION {{schema}}.{name}({arguments}) RETURNS {_RETURNS}\n"
        f"LANGUAGE sql STABLE SET enable_sort = off AS $body$ {body} $body$"
    )


class ReadStatements:
    """The read SQL, composed once per schema."""

    def __init__(self, schema: str) -> None:
        names = {
            "events": sql.Identifier(schema, "events"),
            "streams": sql.Identifier(schema, "streams"),
            "columns": sql.SQL(_COLUMNS),
        }

        def compose(text: str) -> sql.Composed:
            return sql.SQL(text).format(**names)

        self.stream_forward = compose(_STREAM_FORWARD)
        self.stream_backward = compose(_STREAM_BACKWARD)
        self.feed = compose(_FEED)
        self.pages = {
            name: sql.SQL("SELECT * FROM {}({})").format(
                sql.Identifier(schema, name),
                sql.SQL(", ").join([sql.Placeholder()] * len(args.split(","))),
            )
            for name, (_, args) in PAGED_READS.items()
        }
        self.head = compose(_HEAD)
        self.count_after = compose(_COUNT_AFTER)
        self.held_back = compose(_HELD_BACK)
        self.version = compose(_VERSION)
        self.version_as_of = compose(_VERSION_AS_OF)
        self.version_at_position = compose(_VERSION_AT_POSITION)
        self.streams = compose(_STREAMS)
        self.correlated = compose(_CORRELATED)
        self.by_event_id = compose(_BY_EVENT_ID)
        self.open_transactions = sql.SQL(_OPEN_TRANSACTIONS)


# Why a page is decoded with the garbage collector paused
# ---------------------------------------------------------
# A page is a thousand rows decoded at once: about three thousand objects the
# cyclic collector tracks (row tuples, UUIDs, events), all alive until the page
# is done.  Building them triggered a young collection every 700 of them, and
# each one that found a page alive moved it a generation up; every few pages
# the oldest generation had grown by a quarter and Python scanned the whole
# heap (every module, class and function of the application).  Measured on the
# feed: a third of the client's CPU went to the collector, with 15 full
# collections per 300,000 events; paused while a page is built, 2.
#
# Pausing defers nothing that matters: rows hold no reference cycles, and the
# collector's counts carry on, so it runs as soon as the page is built.  The
# window holds no await that can suspend (psycopg's fetchall only waits in
# pipeline mode, which the store's pooled connections never use), so other
# tasks never run with it paused.  The switch is process-wide: another thread
# allocating during the window has its collection deferred by the same few
# milliseconds, and a collector the application disabled is left disabled.
@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a page of rows becomes events."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def recorded_events(rows: Sequence[Sequence[Any]]) -> list[RecordedEvent]:
    """Plain tuple rows into ``RecordedEvent`` objects.

    Fetching tuples (psycopg's fastest row path) and building the objects in one
    comprehension costs about 1 µs per row less than a custom row factory, which
    is an eighth of reading a stream.
    """
    # tuple.__new__ directly: the named tuples' own __new__ is a Python-level
    # wrapper around it, worth another 0.3 µs per row here.
    new = tuple.__new__
    return [
        new(
            RecordedEvent,
            (r[0], r[1], new(Position, (r[2], r[3])), r[4], r[5], r[6], r[7], r[8], r[9]),
        )
        for r in rows
    ]


def decode_text_rows(
    rows: Sequence[Sequence[Any]],
) -> tuple[list[RecordedEvent], UnreadableEventError | None]:
    """Rows fetched with jsonb as text: the events up to the first undecodable one.

    The slow path, taken only after the normal fetch failed to decode a page: it
    finds the row at fault so that the events before it are still delivered and
    the error names the event (a stuck page used to fail with a bare
    ``RecursionError`` on every read).
    """
    events: list[RecordedEvent] = []
    for r in rows:
        try:
            data, metadata = json.loads(r[7]), json.loads(r[8])
        except (RecursionError, ValueError) as error:
            reason = (
                f"its JSON nests too deeply to decode (the limit for new events is "
                f"{MAX_NESTING_DEPTH} levels)"
                if isinstance(error, RecursionError)
                else f"{type(error).__name__}: {error}"
            )
            position = Position(r[2], r[3])
            return events, UnreadableEventError(
                r[0], r[1], position, r[4], r[5], r[6], r[9], reason
            )
        events.append(
            RecordedEvent(r[0], r[1], Position(r[2], r[3]), r[4], r[5], r[6], data, metadata, r[9])
        )
    return events, None


def stream_info_rows(_cursor: Any) -> Callable[[Sequence[Any]], StreamInfo]:
    def make(row: Sequence[Any]) -> StreamInfo:
        return StreamInfo(row[0], row[1], row[2], row[3])

    return make
