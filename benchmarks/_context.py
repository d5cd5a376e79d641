"""What every case gets: sizes for this run, and stores/connections it must not leak.

Each case works in schemas of its own (``bench_<run>_<label>``), so cases never
see each other's rows, the feed case reads exactly the events it wrote, and
the whole run is dropped at the end with one statement per schema.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict

from eventstore import PostgresEventStore


@dataclass
class BenchContext:
    dsn: str
    quick: bool
    repetitions: int
    warmup: int
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    keep_schemas: bool = False
    #: ``--instrument`` was given: cases that seed events give each one the same
    #: ``traceparent`` in every mode, so the modes read the same stored bytes.
    traced_writes: bool = False
    _schemas: list[str] = field(default_factory=list)
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def schema(self, label: str) -> str:
        """A fresh schema name for this run; dropped when the run ends."""
        name = f"bench_{self.run_id}_{label}"
        if name not in self._schemas:
            self._schemas.append(name)
        return name

    async def chronik_store(self, label: str, **options: Any) -> PostgresEventStore:
        store = await PostgresEventStore.connect(self.dsn, schema=self.schema(label), **options)
        self._stack.push_async_callback(store.close)
        return store

    async def raw_connection(self) -> AsyncConnection[Any]:
        """A plain autocommit psycopg connection, default settings, closed at the end."""
        connection = await AsyncConnection.connect(self.dsn, autocommit=True)
        self._stack.push_async_callback(connection.close)
        return connection

    async def create_schema(self, label: str) -> str:
        name = self.schema(label)
        async with await AsyncConnection.connect(self.dsn, autocommit=True) as connection:
            await connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name))
            )
        return name

    def eventsourcing_env(self, schema: str) -> dict[str, str]:
        """The ``POSTGRES_*`` settings of the peer; everything else stays its default."""
        parts = conninfo_to_dict(self.dsn)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": str(parts.get("dbname") or parts.get("user") or "postgres"),
            "POSTGRES_HOST": str(parts.get("host") or "localhost"),
            "POSTGRES_PORT": str(parts.get("port") or "5432"),
            "POSTGRES_USER": str(parts.get("user") or "postgres"),
            "POSTGRES_PASSWORD": str(parts.get("password") or ""),
            "POSTGRES_SCHEMA": schema,
        }

    def push_async(self, callback: Callable[[], Awaitable[Any]]) -> None:
        """Await ``callback`` when the run ends (last registered, first run)."""
        self._stack.push_async_callback(callback)

    def on_close(self, callback: Any) -> None:
        """Run a plain (sync) callback when the run ends, e.g. closing the peer's pool."""
        self._stack.callback(callback)

    async def aclose(self) -> None:
        await self._stack.aclose()
        if self.keep_schemas or not self._schemas:
            return
        async with await AsyncConnection.connect(self.dsn, autocommit=True) as connection:
            for name in self._schemas:
                await connection.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )


@contextlib.asynccontextmanager
async def bench_context(
    dsn: str,
    *,
    quick: bool,
    repetitions: int,
    warmup: int,
    keep_schemas: bool = False,
    traced_writes: bool = False,
) -> AsyncIterator[BenchContext]:
    context = BenchContext(
        dsn,
        quick=quick,
        repetitions=repetitions,
        warmup=warmup,
        keep_schemas=keep_schemas,
        traced_writes=traced_writes,
    )
    try:
        yield context
    finally:
        await context.aclose()


async def server_settings(dsn: str) -> dict[str, str]:
    names = (
        "server_version",
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "wal_level",
        "shared_buffers",
        "work_mem",
        "max_connections",
    )
    settings: dict[str, str] = {}
    async with await AsyncConnection.connect(dsn, autocommit=True) as connection:
        for name in names:
            try:
                cursor = await connection.execute(sql.SQL("SHOW {}").format(sql.Identifier(name)))
                row = await cursor.fetchone()
            except psycopg.Error as error:
                settings[name] = f"(unreadable: {type(error).__name__})"
                continue
            settings[name] = str(row[0]) if row else ""
    return settings
