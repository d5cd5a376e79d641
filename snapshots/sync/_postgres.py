"""Generated from snapshots/_postgres.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``snapshots._postgres``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import Connection, sql
from psycopg_pool import ConnectionPool

from eventstore import DEFAULT_SCHEMA, check_schema_name, describe_dsn
from eventstore import mask_password as _mask
from eventstore.sync import PostgresEventStore, embedded_dsn
from snapshots._errors import SnapshotStoreError
from snapshots._model import DEFAULT_KEEP, Snapshot, check_keep, check_stream_id, prepare_snapshot
from snapshots._pg_schema import SnapshotStatements
from snapshots._postgres import _NO_LIMIT, _snapshot
from snapshots._store import check_load_arguments
from snapshots.sync._pg_schema import migrate
from snapshots.sync._store import SnapshotStore

ConnectionFactory = Callable[[], AbstractContextManager[Connection[Any]]]


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
        pool: ConnectionPool[Connection[Any]] | None = None,
        migrated: bool = False,
    ) -> None:
        self.keep = check_keep(keep)
        self.schema = check_schema_name(schema)
        self.dsn = dsn
        self._connection = connection
        self._own_pool = pool
        self._statements = SnapshotStatements.for_schema(schema)
        self._migrated = migrated
        self._migrating = threading.Lock()

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
    def connect(
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
            dsn = embedded_dsn(data_dir)
        options: dict[str, Any] = {
            "autocommit": True,
            "options": "-c plan_cache_mode=force_custom_plan",
        }
        try:
            with Connection.connect(
                dsn, connect_timeout=max(1, int(connect_timeout)), **options
            ) as connection:
                migrate(connection, schema)
        except psycopg.Error as error:
            raise SnapshotStoreError(describe_dsn(dsn), _mask(str(error).strip(), dsn)) from None
        pool: ConnectionPool[Connection[Any]] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs=options,
            open=False,
            timeout=connect_timeout,
            name=f"chronik-snapshots-{schema}",
        )
        pool.open(wait=True, timeout=connect_timeout)
        return cls(pool.connection, dsn, schema=schema, keep=keep, pool=pool, migrated=True)

    def migrate(self) -> int:
        """Create or upgrade the snapshot table; return the number of steps applied."""
        with self._connect(None) as connection:
            steps = migrate(connection, self.schema)
        self._migrated = True
        return steps

    def save(self, snapshot: Snapshot) -> None:
        prepared = prepare_snapshot(snapshot)
        s = prepared.snapshot
        statements = self._statements
        with self._ready_connection(s.stream_id) as connection, connection.transaction():
            connection.execute(statements.lock_stream, (s.stream_id,))
            connection.execute(
                statements.upsert,
                (s.stream_id, s.version, s.aggregate_type, s.fingerprint, prepared.state_json),
            )
            connection.execute(statements.trim, {"stream": s.stream_id, "skip": self.keep - 1})

    def load(self, stream_id: str, *, max_version: int | None = None) -> Snapshot | None:
        stream_id, bound = check_load_arguments(stream_id, max_version)
        with self._ready_connection(stream_id) as connection:
            cursor = connection.execute(
                self._statements.load, (stream_id, _NO_LIMIT if bound is None else bound)
            )
            row = cursor.fetchone()
        return None if row is None else _snapshot(row)

    def load_all(self, stream_id: str) -> list[Snapshot]:
        stream_id = check_stream_id(stream_id)
        with self._ready_connection(stream_id) as connection:
            cursor = connection.execute(self._statements.load_all, (stream_id,))
            rows = cursor.fetchall()
        return [_snapshot(row) for row in rows]

    def delete(self, stream_id: str) -> int:
        stream_id = check_stream_id(stream_id)
        with self._ready_connection(stream_id) as connection:
            cursor = connection.execute(self._statements.delete, (stream_id,))
            return cursor.rowcount

    def fingerprint_counts(self) -> dict[tuple[str, str], int]:
        """How many snapshots each ``(aggregate_type, fingerprint)`` has (schema checks)."""
        statement = sql.SQL(
            "SELECT aggregate_type, fingerprint, count(*) FROM {} GROUP BY 1, 2 ORDER BY 1, 2"
        ).format(sql.Identifier(self.schema, "snapshots"))
        with self._ready_connection(None) as connection:
            cursor = connection.execute(statement)
            rows = cursor.fetchall()
        return {(row[0], row[1]): int(row[2]) for row in rows}

    def close(self) -> None:
        if self._own_pool is not None:
            self._own_pool.close()

    @contextlib.contextmanager
    def _ready_connection(self, stream_id: str | None) -> Iterator[Connection[Any]]:
        """A connection to a migrated schema; driver errors become ``SnapshotStoreError``."""
        if not self._migrated:
            with self._migrating:
                if not self._migrated:
                    self.migrate()
        with self._connect(stream_id) as connection:
            yield connection

    @contextlib.contextmanager
    def _connect(self, stream_id: str | None) -> Iterator[Connection[Any]]:
        try:
            with self._connection() as connection:
                yield connection
        except psycopg.Error as error:
            raise SnapshotStoreError(
                describe_dsn(self.dsn), _mask(str(error).strip(), self.dsn), stream_id
            ) from error

    def __repr__(self) -> str:
        return f"PostgresSnapshotStore({describe_dsn(self.dsn)}, schema={self.schema!r}, keep={self.keep})"
