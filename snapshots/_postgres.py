"""Snapshots in PostgreSQL, beside the events they summarise."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from eventstore import (
    DEFAULT_SCHEMA,
    PostgresEventStore,
    check_schema_name,
    describe_dsn,
    embedded_dsn,
)
from eventstore import mask_password as _mask

from ._errors import SnapshotStoreError
from ._model import (
    DEFAULT_KEEP,
    Snapshot,
    check_keep,
    check_stream_id,
    decoded_state,
    prepare_snapshot,
)
from ._pg_schema import SnapshotStatements, migrate
from ._store import SnapshotStore, check_load_arguments

_NO_LIMIT = 2**62

ConnectionFactory = Callable[[], AbstractAsyncContextManager[AsyncConnection[Any]]]


class PostgresSnapshotStore(SnapshotStore):
    """Snapshots in ``<schema>.snapshots``; state as jsonb, newest ``keep`` per stream.

    Build it with :meth:`from_event_store` (shares the store's pool and schema)
    or :meth:`connect` (a pool of its own).  The table is created on first use
    when it does not exist yet.
    """

    def __init__(
        self,
        connection: ConnectionFactory,
        dsn: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        keep: int = DEFAULT_KEEP,
        pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None,
        migrated: bool = False,
    ) -> None:
        self.keep = check_keep(keep)
        self.schema = check_schema_name(schema)
        self.dsn = dsn
        self._connection = connection
        self._own_pool = pool
        self._statements = SnapshotStatements.for_schema(schema)
        self._migrated = migrated
        self._migrating = asyncio.Lock()

    @classmethod
    def from_event_store(
        cls, store: PostgresEventStore, *, keep: int = DEFAULT_KEEP
    ) -> PostgresSnapshotStore:
        """A snapshot store on ``store``'s pool and schema; closing it leaves the pool open."""
        if not isinstance(store, PostgresEventStore):
            raise TypeError(
                f"from_event_store needs a PostgresEventStore, got {type(store).__name__}"
            )
        return cls(store.connection, store.dsn, schema=store.schema, keep=keep)

    @classmethod
    async def connect(
        cls,
        dsn: str | None = None,
        *,
        schema: str = DEFAULT_SCHEMA,
        keep: int = DEFAULT_KEEP,
        pool_size: int = 4,
        data_dir: str | os.PathLike[str] | None = None,
        connect_timeout: float = 10.0,
    ) -> PostgresSnapshotStore:
        """A standalone store with its own pool; embedded PostgreSQL when ``dsn`` is None."""
        keep = check_keep(keep)
        check_schema_name(schema)
        if dsn is None:
            dsn = await embedded_dsn(data_dir)
        options: dict[str, Any] = {
            "autocommit": True,
            "options": "-c plan_cache_mode=force_custom_plan",
        }
        try:
            async with await AsyncConnection.connect(
                dsn, connect_timeout=max(1, int(connect_timeout)), **options
            ) as connection:
                await migrate(connection, schema)
        except psycopg.Error as error:
            raise SnapshotStoreError(describe_dsn(dsn), _mask(str(error).strip(), dsn)) from None
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs=options,
            open=False,
            timeout=connect_timeout,
            name=f"chronik-snapshots-{schema}",
        )
        await pool.open(wait=True, timeout=connect_timeout)
        return cls(pool.connection, dsn, schema=schema, keep=keep, pool=pool, migrated=True)

    async def migrate(self) -> int:
        """Create or upgrade the snapshot table; return the number of steps applied."""
        async with self._connect(None) as connection:
            steps = await migrate(connection, self.schema)
        self._migrated = True
        return steps

    # -- operations ------------------------------------------------------------

    async def save(self, snapshot: Snapshot) -> None:
        prepared = prepare_snapshot(snapshot)
        s = prepared.snapshot
        statements = self._statements
        async with self._ready_connection(s.stream_id) as connection, connection.transaction():
            await connection.execute(statements.lock_stream, (s.stream_id,))
            await connection.execute(
                statements.upsert,
                (s.stream_id, s.version, s.aggregate_type, s.fingerprint, prepared.state_json),
            )
            await connection.execute(
                statements.trim, {"stream": s.stream_id, "skip": self.keep - 1}
            )

    async def load(self, stream_id: str, *, max_version: int | None = None) -> Snapshot | None:
        stream_id, bound = check_load_arguments(stream_id, max_version)
        async with self._ready_connection(stream_id) as connection:
            cursor = await connection.execute(
                self._statements.load, (stream_id, _NO_LIMIT if bound is None else bound)
            )
            row = await cursor.fetchone()
        return None if row is None else _snapshot(row)

    async def load_all(self, stream_id: str) -> list[Snapshot]:
        stream_id = check_stream_id(stream_id)
        async with self._ready_connection(stream_id) as connection:
            cursor = await connection.execute(self._statements.load_all, (stream_id,))
            rows = await cursor.fetchall()
        return [_snapshot(row) for row in rows]

    async def delete(self, stream_id: str) -> int:
        stream_id = check_stream_id(stream_id)
        async with self._ready_connection(stream_id) as connection:
            cursor = await connection.execute(self._statements.delete, (stream_id,))
            return cursor.rowcount

    async def fingerprint_counts(self) -> dict[tuple[str, str], int]:
        """How many snapshots each ``(aggregate_type, fingerprint)`` has (schema checks)."""
        statement = sql.SQL(
            "SELECT aggregate_type, fingerprint, count(*) FROM {} GROUP BY 1, 2 ORDER BY 1, 2"
        ).format(sql.Identifier(self.schema, "snapshots"))
        async with self._ready_connection(None) as connection:
            cursor = await connection.execute(statement)
            rows = await cursor.fetchall()
        return {(row[0], row[1]): int(row[2]) for row in rows}

    async def close(self) -> None:
        if self._own_pool is not None:
            await self._own_pool.close()

    # -- plumbing --------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _ready_connection(self, stream_id: str | None) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection to a migrated schema; driver errors become ``SnapshotStoreError``."""
        if not self._migrated:
            async with self._migrating:
                if not self._migrated:
                    await self.migrate()
        async with self._connect(stream_id) as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def _connect(self, stream_id: str | None) -> AsyncIterator[AsyncConnection[Any]]:
        try:
            async with self._connection() as connection:
                yield connection
        except psycopg.Error as error:
            raise SnapshotStoreError(
                describe_dsn(self.dsn), _mask(str(error).strip(), self.dsn), stream_id
            ) from error

    def __repr__(self) -> str:
        return (
            f"PostgresSnapshotStore({describe_dsn(self.dsn)}, schema={self.schema!r}, "
            f"keep={self.keep})"
        )


def _snapshot(row: tuple[Any, ...]) -> Snapshot:
    stream_id, aggregate_type, version, fingerprint, state, recorded_at = row
    return Snapshot(
        stream_id=stream_id,
        aggregate_type=aggregate_type,
        version=int(version),
        fingerprint=fingerprint,
        state=decoded_state(stream_id, int(version), state),
        recorded_at=recorded_at,
    )
