"""Consumer test fixtures: a Kafka cluster (the mock cluster unless
``KAFKA_BOOTSTRAP_SERVERS`` is set), a store of its own, Redis read models."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from eventstore import PostgresEventStore
from projections import RedisReadModel


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    url = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if url:
        yield url
        return
    # Temporary until the relay's mock-cluster helper lands: the creating client's
    # debug log names the address; the cluster lives as long as that client.
    import logging
    import re
    import time

    import confluent_kafka

    found: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            match = re.search(r"bootstrap\.servers=(\S+)", record.getMessage())
            if match:
                found.append(match.group(1))

    logger = logging.getLogger("tests.mockcluster")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Catch())
    client = confluent_kafka.Producer(
        {"test.mock.num.brokers": 1, "debug": "mock", "logger": logger}
    )
    deadline = time.monotonic() + 30
    while not found and time.monotonic() < deadline:
        client.poll(0.05)
    logger.handlers.clear()
    logger.addHandler(logging.NullHandler())
    yield found[0]
    del client


@pytest.fixture
async def read_models(redis_url: str) -> AsyncIterator[list[RedisReadModel]]:
    """Fresh-prefixed read models (two: the Kafka-fed one and a rebuild to compare)."""
    prefix = f"kc{uuid.uuid4().hex[:8]}:"
    made = [
        await RedisReadModel.connect(redis_url, prefix=prefix + "kafka:"),
        await RedisReadModel.connect(redis_url, prefix=prefix + "store:"),
    ]
    yield made
    for model in made:
        await model.close()


@pytest.fixture
async def store(make_pg_store: object) -> PostgresEventStore:
    return await make_pg_store()  # type: ignore[operator, no-any-return]
