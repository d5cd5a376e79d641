"""The PostgreSQL event store."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.string import TextLoader
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ._embedded import describe_dsn, embedded_dsn, mask_password
from ._errors import InvalidInputError, StoreUnavailableError, UnreadableEventError
from ._model import (
    START,
    AppendResult,
    ExpectedVersion,
    Position,
    RawEvent,
    RecordedEvent,
    StreamInfo,
)
from ._pg_append import AppendStatements, append_batch
from ._pg_coalesce import ASYNC_ONLY, AppendCoalescer
from ._pg_jsonb import event_cursor
from ._pg_listen import listen_for_appends
from ._pg_raw import fetch_raw_page, raw_page_statement
from ._pg_read import (
    ReadStatements,
    collector_paused,
    decode_text_rows,
    prefix_successor,
    recorded_events,
    stream_info_rows,
)
from ._pg_schema import migrate
from ._pg_schemas import PostgresSchemaRegistry, sample_events, stored_versions
from ._schema_name import check_schema_name
from ._schemas import SchemaRegistry
from ._store import DEFAULT_PAGE_SIZE, EventStore
from ._validation import (
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_EVENT_BYTES,
    FEED,
    MAX_VERSION,
    PreparedEvent,
    check_after,
    check_byte_limits,
)

T = TypeVar("T")

_LAST_STREAM_VERSION = MAX_VERSION
DEFAULT_SCHEMA = "chronik"


@dataclass(frozen=True, slots=True)
class OpenTransaction:
    """A transaction that holds the feed back until it ends."""

    pid: int
    transaction_id: int
    started_at: datetime | None
    query_started_at: datetime | None
    state: str | None
    #: The start of its current (or last) statement's text, which can hold secrets
    #: (``ALTER ROLE ... PASSWORD``, literals): show it only to whoever may see them.
    query: str | None
    age_seconds: float | None
    application_name: str | None = None


# Reads are never prepared (``prepare=False``), so PostgreSQL plans each one with
# its real parameters.  A generic plan built while the table was small keeps
# seq-scanning once it is large (measured 1.6 -> 5.8 ms per call at 18k rows),
# and a feed or stream read can return thousands of rows, so planning is noise
# there.  Appends keep psycopg's prepared statements: their plans are key
# lookups on unique indexes whatever the table size, and re-planning them cost
# 70-90 µs of a ~500 µs append.
_UNPREPARED = False


class PostgresEventStore(EventStore):
    """Events in PostgreSQL; see ``_pg_append`` and ``_pg_read`` for why it is safe."""

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
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
        if ASYNC_ONLY:
            self._coalescer: AppendCoalescer | None = (
                AppendCoalescer(pool, schema, self._append_alone, max_bytes=max_batch_bytes)
                if coalesce_appends
                else None
            )

    @classmethod
    async def connect(
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
            dsn = await embedded_dsn(data_dir)
        target = describe_dsn(dsn)
        options: dict[str, Any] = {"autocommit": True}
        try:
            conninfo_to_dict(dsn)  # fail early and masked on a malformed DSN
        except psycopg.ProgrammingError as error:
            # The parser's message quotes the DSN, password included.
            reason = "invalid connection string: " + mask_password(str(error).strip(), dsn)
            raise StoreUnavailableError(target, reason) from None
        try:
            async with await AsyncConnection.connect(
                dsn, connect_timeout=max(1, int(connect_timeout)), **options
            ) as connection:
                if create_schema:
                    await migrate(connection, schema)
        except psycopg.OperationalError as error:
            raise StoreUnavailableError(target, mask_password(str(error).strip(), dsn)) from None
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs=options,
            open=False,
            timeout=connect_timeout,
            name=f"chronik-{schema}",
        )
        await pool.open(wait=True, timeout=connect_timeout)
        return cls(
            pool,
            dsn,
            schema=schema,
            max_event_bytes=max_event_bytes,
            max_batch_bytes=max_batch_bytes,
            coalesce_appends=coalesce_appends,
        )

    async def migrate(self) -> int:
        """Create or upgrade the schema; return the number of steps applied."""
        async with self._pool.connection() as connection:
            return await migrate(connection, self.schema)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection (autocommit), e.g. to open a transaction to append in."""
        async with self._pool.connection() as connection:
            yield connection

    # -- writing -------------------------------------------------------------

    async def _append(
        self,
        stream_id: str,
        batch: Sequence[PreparedEvent],
        expected: ExpectedVersion | int,
        connection: Any,
    ) -> AppendResult:
        if connection is not None:
            return await append_batch(
                connection, self._appends, stream_id, batch, expected, own_transaction=False
            )
        if ASYNC_ONLY and self._coalescer is not None:
            return await self._coalescer.append(stream_id, batch, expected)
        return await self._append_alone(stream_id, batch, expected)

    async def _append_alone(
        self, stream_id: str, batch: Sequence[PreparedEvent], expected: ExpectedVersion | int
    ) -> AppendResult:
        # Safe to repeat after a lost connection: the batch keeps its event ids,
        # so an attempt that did commit is answered with its original result.
        return await self._run(
            lambda own: append_batch(
                own, self._appends, stream_id, batch, expected, own_transaction=True
            )
        )

    # -- reading -------------------------------------------------------------

    async def _read_stream(
        self, stream_id: str, low: int, high: int | None, *, backwards: bool
    ) -> AsyncIterator[RecordedEvent]:
        high = _LAST_STREAM_VERSION if high is None else high
        # Most streams fit one page: read it with the plain statement, since
        # calling a function costs ~0.1 ms, a third of loading a small aggregate.
        # A long stream's later pages go through the sort-proof function (see
        # _pg_read), so one that was never analyzed is sorted once, not per page.
        statement = self._reads.stream_backward if backwards else self._reads.stream_forward
        paged = self._reads.pages["stream_backward_page" if backwards else "stream_forward_page"]
        while low <= high:
            # One row more than a page tells whether another page follows, so a
            # stream of exactly N pages costs N queries, not N + 1.
            page, broken = await self._fetch_events(
                statement, (stream_id, low, high, DEFAULT_PAGE_SIZE + 1)
            )
            following = page.pop().version if len(page) > DEFAULT_PAGE_SIZE else None
            page.reverse()  # handed over one by one, as the feed's (see _read_all)
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

    async def _stream_version(
        self, stream_id: str, as_of: datetime | None, at_position: Position | None
    ) -> int:
        params: tuple[Any, ...]
        if as_of is not None:
            query, params = self._reads.version_as_of, (stream_id, as_of)
        elif at_position is not None:
            query = self._reads.version_at_position
            params = (stream_id, str(at_position.transaction_id), at_position.global_position)
        else:
            query, params = self._reads.version, (stream_id,)
        return await self._count(query, params)

    async def _list_streams(self, prefix: str, limit: int | None) -> AsyncIterator[StreamInfo]:
        after, remaining = "", limit
        while remaining is None or remaining > 0:
            size = DEFAULT_PAGE_SIZE if remaining is None else min(remaining, DEFAULT_PAGE_SIZE)
            params = {
                "after": after,
                "prefix": prefix,
                "upper": prefix_successor(prefix) if prefix else None,
                "limit": size,
            }
            page = await self._run(functools.partial(self._fetch_streams, params=params))
            for info in page:
                yield info
            if len(page) < size:
                return
            after = page[-1].stream_id
            remaining = None if remaining is None else remaining - len(page)

    async def _read_all(self, after: Position, limit: int | None) -> AsyncIterator[RecordedEvent]:
        position, remaining = after, limit
        while remaining is None or remaining > 0:
            size = DEFAULT_PAGE_SIZE if remaining is None else min(remaining, DEFAULT_PAGE_SIZE)
            page, broken = await self._fetch_events(
                self._reads.pages["feed_page"],
                (str(position.transaction_id), position.global_position, size),
            )
            count = len(page)
            if count:
                position = page[-1].position
            # Hand the events over one by one and keep none: an event dies when the
            # caller drops it, not with the page, so fewer of them live long enough
            # for the garbage collector to move them to its oldest generation (see
            # ``collector_paused`` for why that matters).
            page.reverse()
            while page:
                yield page.pop()
            if broken is not None:
                raise broken
            if count < size:
                return
            remaining = None if remaining is None else remaining - count

    async def read_raw_page(
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
        return await self._run(
            lambda connection: fetch_raw_page(connection, statement, position, limit)
        )

    @functools.cached_property
    def _raw_page(self) -> Any:
        return raw_page_statement(self.schema)

    async def head(self) -> Position | None:
        row = await self._run(lambda connection: self._fetch_one(connection, self._reads.head, ()))
        return Position(row[0], row[1]) if row else None

    async def _count_after(self, after: Position) -> int:
        return await self._count(
            self._reads.count_after, (str(after.transaction_id), after.global_position)
        )

    async def held_back_count(self) -> int:
        return await self._count(self._reads.held_back, ())

    async def _count(self, statement: Any, params: Sequence[Any]) -> int:
        row = await self._run(lambda connection: self._fetch_one(connection, statement, params))
        return int(row[0]) if row else 0

    async def find_event(self, event_id: UUID) -> RecordedEvent | None:
        page, broken = await self._fetch_events(self._reads.by_event_id, (event_id,))
        if broken is not None:
            raise broken
        return page[0] if page else None

    async def _correlated_events(self, correlation_id: str, limit: int) -> list[RecordedEvent]:
        page, broken = await self._fetch_events(self._reads.correlated, (correlation_id, limit))
        if broken is not None:
            raise broken
        return page

    async def open_transactions(self) -> list[OpenTransaction]:
        """Transactions that hold the feed back (they hold an xid), oldest first."""
        rows = await self._run(
            lambda connection: self._fetch_all(connection, self._reads.open_transactions, ())
        )
        return [OpenTransaction(*row) for row in rows]

    async def _fetch_events(
        self, statement: Any, params: Sequence[Any]
    ) -> tuple[list[RecordedEvent], UnreadableEventError | None]:
        """A page of events; if a row cannot be decoded, the events before it and the
        error naming it (raise it after delivering them)."""
        try:
            rows = await self._run(
                functools.partial(self._fetch_event_rows, statement=statement, params=params)
            )
        except (RecursionError, ValueError):
            # psycopg decodes jsonb inside fetchall, so one bad row fails the whole
            # page without saying which.  Fetch it again as text and find it.
            rows = await self._run(
                functools.partial(self._fetch_text, statement=statement, params=params)
            )
            return decode_text_rows(rows)
        return rows, None

    # -- connections -----------------------------------------------------------

    async def _run(self, work: Callable[[AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``work`` on a pooled connection, once more on a fresh one if it died.

        Everything passed here may run twice: reads, and appends (idempotent by
        event id).  A dead connection is dropped by the pool on return, so the
        second attempt gets a new one; a database that stays away becomes a
        ``StoreUnavailableError``.  Query-level errors on a healthy connection
        (timeouts, deadlocks) are the caller's and pass through unchanged.
        """
        for attempt in range(2):
            connection: AsyncConnection[Any] | None = None
            try:
                # getconn/putconn rather than connection(): its ``with conn``
                # block only commits, a no-op on these autocommit connections that
                # still cost ~4 µs a call; putconn rolls back or discards a
                # connection left in a transaction or broken.
                connection = await self._pool.getconn()
                try:
                    return await work(connection)
                finally:
                    await self._pool.putconn(connection)
            except PoolTimeout as error:
                raise StoreUnavailableError(
                    describe_dsn(self.dsn),
                    f"no database connection within the pool timeout ({error})",
                ) from error
            except psycopg.OperationalError as error:
                if connection is not None and not (connection.broken or connection.closed):
                    raise
                if attempt:
                    reason = mask_password(str(error).strip(), self.dsn)
                    raise StoreUnavailableError(describe_dsn(self.dsn), reason) from error
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    async def _fetch_all(
        connection: AsyncConnection[Any], statement: Any, params: Any
    ) -> list[Any]:
        cursor = await connection.execute(statement, params, prepare=_UNPREPARED)
        return await cursor.fetchall()

    @staticmethod
    async def _fetch_event_rows(
        connection: AsyncConnection[Any], statement: Any, params: Any
    ) -> list[Any]:
        cursor = event_cursor(connection)
        await cursor.execute(statement, params, prepare=_UNPREPARED)
        with collector_paused():
            return recorded_events(await cursor.fetchall())

    @staticmethod
    async def _fetch_text(
        connection: AsyncConnection[Any], statement: Any, params: Any
    ) -> list[Any]:
        cursor = connection.cursor()
        cursor.adapters.register_loader("jsonb", TextLoader)
        await cursor.execute(statement, params, prepare=_UNPREPARED)
        return await cursor.fetchall()

    @staticmethod
    async def _fetch_one(connection: AsyncConnection[Any], statement: Any, params: Any) -> Any:
        cursor = await connection.execute(statement, params, prepare=_UNPREPARED)
        return await cursor.fetchone()

    async def _fetch_streams(
        self, connection: AsyncConnection[Any], params: dict[str, Any]
    ) -> list[StreamInfo]:
        cursor = connection.cursor(row_factory=stream_info_rows)
        await cursor.execute(self._reads.streams, params, prepare=_UNPREPARED)
        return await cursor.fetchall()

    # -- event schemas -----------------------------------------------------------

    @functools.cached_property
    def schemas(self) -> SchemaRegistry:
        return PostgresSchemaRegistry(self._pool.connection, self.schema)

    async def stored_schema_versions(self) -> dict[tuple[str, int], int]:
        return await self._run(lambda connection: stored_versions(connection, self.schema))

    async def _sample_events(self, per_version: int, max_shapes: int) -> list[RecordedEvent]:
        return await self._run(
            lambda connection: sample_events(connection, self.schema, per_version, max_shapes)
        )

    # -- live ------------------------------------------------------------------

    def _wake_up_listener(self) -> Any:
        return listen_for_appends(self.dsn, self.schema)

    async def close(self) -> None:
        await self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresEventStore({describe_dsn(self.dsn)}, schema={self.schema!r})"
