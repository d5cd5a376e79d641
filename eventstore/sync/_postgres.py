"""Generated from eventstore/_postgres.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``eventstore._postgres``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool, PoolTimeout

from eventstore._embedded import describe_dsn, mask_password
from eventstore._errors import InvalidInputError, StoreUnavailableError, UnreadableEventError
from eventstore._model import (
    START,
    AppendResult,
    ExpectedVersion,
    Position,
    RawEvent,
    RecordedEvent,
    StreamInfo,
)
from eventstore._pg_append import AppendStatements
from eventstore._pg_raw import raw_page_statement
from eventstore._pg_read import (
    ReadStatements,
    collector_paused,
    decode_text_rows,
    prefix_successor,
    recorded_events,
    stream_info_rows,
)
from eventstore._postgres import (
    _LAST_STREAM_VERSION,
    _UNPREPARED,
    DEFAULT_SCHEMA,
    OpenTransaction,
    T,
)
from eventstore._schema_name import check_schema_name
from eventstore._store import DEFAULT_PAGE_SIZE
from eventstore._validation import (
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_EVENT_BYTES,
    FEED,
    PreparedEvent,
    check_after,
    check_byte_limits,
)
from eventstore.sync._embedded import embedded_dsn
from eventstore.sync._pg_append import append_batch
from eventstore.sync._pg_jsonb import event_cursor
from eventstore.sync._pg_raw import fetch_raw_page
from eventstore.sync._pg_schema import migrate
from eventstore.sync._pg_schemas import PostgresSchemaRegistry, sample_events, stored_versions
from eventstore.sync._schemas import SchemaRegistry
from eventstore.sync._store import EventStore


class PostgresEventStore(EventStore):
    """Events in PostgreSQL; see ``_pg_append`` and ``_pg_read`` for why it is safe."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        dsn: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        coalesce_appends: bool = True,
    ) -> None:
        check_byte_limits(max_event_bytes, max_batch_bytes)
        self.max_event_bytes = max_event_bytes
        self.max_batch_bytes = max_batch_bytes
        self.schema = check_schema_name(schema)
        self.dsn = dsn
        self._pool = pool
        self._appends = AppendStatements(schema)
        self._reads = ReadStatements(schema)

    @classmethod
    def connect(
        cls,
        dsn: str | None = None,
        *,
        schema: str = DEFAULT_SCHEMA,
        pool_size: int = 10,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        create_schema: bool = True,
        data_dir: str | os.PathLike[str] | None = None,
        connect_timeout: float = 10.0,
        coalesce_appends: bool = True,
    ) -> PostgresEventStore:
        """Connect to ``dsn``, or start/reuse the embedded PostgreSQL when it is None.

        The schema (default ``chronik``) is created or migrated unless
        ``create_schema`` is false.  An unreachable database raises
        ``StoreUnavailableError`` naming host and database, never the password.

        ``coalesce_appends`` (async store; the sync store has nothing to coalesce):
        appends to different streams made concurrently by tasks of this process,
        outside a caller's transaction, may share one statement and one commit
        (see ``_pg_coalesce``).  Each keeps its own result or error; the price is
        that a coalesced append commits with its batch mates, so a slow commit
        delays them all.  An append with nothing else in flight is not delayed.
        """
        check_schema_name(schema)
        check_byte_limits(max_event_bytes, max_batch_bytes)
        if dsn is None:
            dsn = embedded_dsn(data_dir)
        target = describe_dsn(dsn)
        options: dict[str, Any] = {"autocommit": True}
        try:
            conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as error:
            reason = "invalid connection string: " + mask_password(str(error).strip(), dsn)
            raise StoreUnavailableError(target, reason) from None
        try:
            with Connection.connect(
                dsn, connect_timeout=max(1, int(connect_timeout)), **options
            ) as connection:
                if create_schema:
                    migrate(connection, schema)
        except psycopg.OperationalError as error:
            raise StoreUnavailableError(target, mask_password(str(error).strip(), dsn)) from None
        pool: ConnectionPool[Connection[Any]] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs=options,
            open=False,
            timeout=connect_timeout,
            name=f"chronik-{schema}",
        )
        pool.open(wait=True, timeout=connect_timeout)
        return cls(
            pool,
            dsn,
            schema=schema,
            max_event_bytes=max_event_bytes,
            max_batch_bytes=max_batch_bytes,
            coalesce_appends=coalesce_appends,
        )

    def migrate(self) -> int:
        """Create or upgrade the schema; return the number of steps applied."""
        with self._pool.connection() as connection:
            return migrate(connection, self.schema)

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection[Any]]:
        """A pooled connection (autocommit), e.g. to open a transaction to append in."""
        with self._pool.connection() as connection:
            yield connection

    def _append(
        self,
        stream_id: str,
        batch: Sequence[PreparedEvent],
        expected: ExpectedVersion | int,
        connection: Any,
    ) -> AppendResult:
        if connection is not None:
            return append_batch(
                connection, self._appends, stream_id, batch, expected, own_transaction=False
            )
        return self._append_alone(stream_id, batch, expected)

    def _append_alone(
        self, stream_id: str, batch: Sequence[PreparedEvent], expected: ExpectedVersion | int
    ) -> AppendResult:
        return self._run(
            lambda own: append_batch(
                own, self._appends, stream_id, batch, expected, own_transaction=True
            )
        )

    def _read_stream(
        self, stream_id: str, low: int, high: int | None, *, backwards: bool
    ) -> Iterator[RecordedEvent]:
        high = _LAST_STREAM_VERSION if high is None else high
        statement = self._reads.stream_backward if backwards else self._reads.stream_forward
        paged = self._reads.pages["stream_backward_page" if backwards else "stream_forward_page"]
        while low <= high:
            page, broken = self._fetch_events(
                statement, (stream_id, low, high, DEFAULT_PAGE_SIZE + 1)
            )
            following = page.pop().version if len(page) > DEFAULT_PAGE_SIZE else None
            page.reverse()
            while page:
                yield page.pop()
            if broken is not None:
                raise broken
            if following is None:
                return
            statement = paged
            if backwards:
                high = following
            else:
                low = following

    def _stream_version(
        self, stream_id: str, as_of: datetime | None, at_position: Position | None
    ) -> int:
        params: tuple[Any, ...]
        if as_of is not None:
            query, params = (self._reads.version_as_of, (stream_id, as_of))
        elif at_position is not None:
            query = self._reads.version_at_position
            params = (stream_id, str(at_position.transaction_id), at_position.global_position)
        else:
            query, params = (self._reads.version, (stream_id,))
        return self._count(query, params)

    def _list_streams(self, prefix: str, limit: int | None) -> Iterator[StreamInfo]:
        after, remaining = ("", limit)
        while remaining is None or remaining > 0:
            size = DEFAULT_PAGE_SIZE if remaining is None else min(remaining, DEFAULT_PAGE_SIZE)
            params = {
                "after": after,
                "prefix": prefix,
                "upper": prefix_successor(prefix) if prefix else None,
                "limit": size,
            }
            page = self._run(functools.partial(self._fetch_streams, params=params))
            for info in page:
                yield info
            if len(page) < size:
                return
            after = page[-1].stream_id
            remaining = None if remaining is None else remaining - len(page)

    def _read_all(self, after: Position, limit: int | None) -> Iterator[RecordedEvent]:
        position, remaining = (after, limit)
        while remaining is None or remaining > 0:
            size = DEFAULT_PAGE_SIZE if remaining is None else min(remaining, DEFAULT_PAGE_SIZE)
            page, broken = self._fetch_events(
                self._reads.pages["feed_page"],
                (str(position.transaction_id), position.global_position, size),
            )
            count = len(page)
            if count:
                position = page[-1].position
            page.reverse()
            while page:
                yield page.pop()
            if broken is not None:
                raise broken
            if count < size:
                return
            remaining = None if remaining is None else remaining - count

    def read_raw_page(
        self, after: Position | None = None, limit: int = DEFAULT_PAGE_SIZE
    ) -> list[RawEvent]:
        """Up to ``limit`` feed events after ``after``, nothing parsed (see ``RawEvent``).

        The same gap-safe feed, in the same order, as ``read_all``; for code that
        forwards events as stored (the Kafka relay).  An empty list: caught up.
        """
        position = check_after(after) or START
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInputError(FEED, f"invalid limit {limit!r}: use an int >= 1")
        statement = self._raw_page
        return self._run(lambda connection: fetch_raw_page(connection, statement, position, limit))

    @functools.cached_property
    def _raw_page(self) -> Any:
        return raw_page_statement(self.schema)

    def head(self) -> Position | None:
        row = self._run(lambda connection: self._fetch_one(connection, self._reads.head, ()))
        return Position(row[0], row[1]) if row else None

    def _count_after(self, after: Position) -> int:
        return self._count(
            self._reads.count_after, (str(after.transaction_id), after.global_position)
        )

    def held_back_count(self) -> int:
        return self._count(self._reads.held_back, ())

    def _count(self, statement: Any, params: Sequence[Any]) -> int:
        row = self._run(lambda connection: self._fetch_one(connection, statement, params))
        return int(row[0]) if row else 0

    def find_event(self, event_id: UUID) -> RecordedEvent | None:
        page, broken = self._fetch_events(self._reads.by_event_id, (event_id,))
        if broken is not None:
            raise broken
        return page[0] if page else None

    def _correlated_events(self, correlation_id: str, limit: int) -> list[RecordedEvent]:
        page, broken = self._fetch_events(self._reads.correlated, (correlation_id, limit))
        if broken is not None:
            raise broken
        return page

    def open_transactions(self) -> list[OpenTransaction]:
        """Transactions that hold the feed back (they hold an xid), oldest first."""
        rows = self._run(
            lambda connection: self._fetch_all(connection, self._reads.open_transactions, ())
        )
        return [OpenTransaction(*row) for row in rows]

    def _fetch_events(
        self, statement: Any, params: Sequence[Any]
    ) -> tuple[list[RecordedEvent], UnreadableEventError | None]:
        """A page of events; if a row cannot be decoded, the events before it and the
        error naming it (raise it after delivering them)."""
        try:
            rows = self._run(
                functools.partial(self._fetch_event_rows, statement=statement, params=params)
            )
        except (RecursionError, ValueError):
            rows = self._run(
                functools.partial(self._fetch_text, statement=statement, params=params)
            )
            return decode_text_rows(rows)
        return (rows, None)

    def _run(self, work: Callable[[Connection[Any]], T]) -> T:
        """``work`` on a pooled connection, once more on a fresh one if it died.

        Everything passed here may run twice: reads, and appends (idempotent by
        event id).  A dead connection is dropped by the pool on return, so the
        second attempt gets a new one; a database that stays away becomes a
        ``StoreUnavailableError``.  Query-level errors on a healthy connection
        (timeouts, deadlocks) are the caller's and pass through unchanged.
        """
        for attempt in range(2):
            connection: Connection[Any] | None = None
            try:
                connection = self._pool.getconn()
                try:
                    return work(connection)
                finally:
                    self._pool.putconn(connection)
            except PoolTimeout as error:
                raise StoreUnavailableError(
                    describe_dsn(self.dsn),
                    f"no database connection within the pool timeout ({error})",
                ) from error
            except psycopg.OperationalError as error:
                if connection is not None and (not (connection.broken or connection.closed)):
                    raise
                if attempt:
                    reason = mask_password(str(error).strip(), self.dsn)
                    raise StoreUnavailableError(describe_dsn(self.dsn), reason) from error
        raise AssertionError("unreachable")

    @staticmethod
    def _fetch_all(connection: Connection[Any], statement: Any, params: Any) -> list[Any]:
        cursor = connection.execute(statement, params, prepare=_UNPREPARED)
        return cursor.fetchall()

    @staticmethod
    def _fetch_event_rows(connection: Connection[Any], statement: Any, params: Any) -> list[Any]:
        cursor = event_cursor(connection)
        cursor.execute(statement, params, prepare=_UNPREPARED)
        with collector_paused():
            return recorded_events(cursor.fetchall())

    @staticmethod
    def _fetch_text(connection: Connection[Any], statement: Any, params: Any) -> list[Any]:
        cursor = connection.cursor()
        cursor.adapters.register_loader("jsonb", TextLoader)
        cursor.execute(statement, params, prepare=_UNPREPARED)
        return cursor.fetchall()

    @staticmethod
    def _fetch_one(connection: Connection[Any], statement: Any, params: Any) -> Any:
        cursor = connection.execute(statement, params, prepare=_UNPREPARED)
        return cursor.fetchone()

    def _fetch_streams(
        self, connection: Connection[Any], params: dict[str, Any]
    ) -> list[StreamInfo]:
        cursor = connection.cursor(row_factory=stream_info_rows)
        cursor.execute(self._reads.streams, params, prepare=_UNPREPARED)
        return cursor.fetchall()

    @functools.cached_property
    def schemas(self) -> SchemaRegistry:
        return PostgresSchemaRegistry(self._pool.connection, self.schema)

    def stored_schema_versions(self) -> dict[tuple[str, int], int]:
        return self._run(lambda connection: stored_versions(connection, self.schema))

    def _sample_events(self, per_version: int, max_shapes: int) -> list[RecordedEvent]:
        return self._run(
            lambda connection: sample_events(connection, self.schema, per_version, max_shapes)
        )

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresEventStore({describe_dsn(self.dsn)}, schema={self.schema!r})"
