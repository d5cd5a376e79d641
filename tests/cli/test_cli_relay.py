"""``chronik relay``, ``relay status`` and ``topics tail`` against the session's Kafka."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import AsyncIterator

import pytest
from cli_runner import Chronik
from support.kafka import until_true

from eventstore import NewEvent, PostgresEventStore


@pytest.fixture(scope="module")
def kafka_chronik(chronik: Chronik, kafka_bootstrap: str) -> Chronik:
    return Chronik({**chronik.env, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}, chronik.cwd)


@pytest.fixture(scope="module")
def topic_prefix() -> str:
    return f"cli{uuid.uuid4().hex[:8]}."


@pytest.fixture
async def cli_store(pg_dsn: str, cli_schema: str) -> AsyncIterator[PostgresEventStore]:
    # Closed after each test: the suite runs close to the server's connection limit.
    store = await PostgresEventStore.connect(pg_dsn, schema=cli_schema, pool_size=2)
    yield store
    await store.close()


async def seed(store: PostgresEventStore) -> list[str]:
    streams = [f"ledger-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    for stream in streams:
        await store.append(stream, [NewEvent("ledger.Touched", {"n": n}) for n in range(2)])
    return streams


async def test_relay_publishes_and_status_and_tail_show_it(
    kafka_chronik: Chronik, cli_store: PostgresEventStore, topic_prefix: str
) -> None:
    streams = await seed(cli_store)
    result = kafka_chronik("relay", "--until-caught-up", "--topic-prefix", topic_prefix)
    assert result.code == 0, result.describe()
    [status] = kafka_chronik("relay", "status", "--json").json()
    assert status["name"] == "default" and status["lag_events"] == 0
    assert status["published_events"] == 6 and status["last_error"] is None
    table = kafka_chronik("relay", "status")
    assert "default" in table.stdout and "at-least-once" in table.stdout

    tail = kafka_chronik("topics", "tail", topic_prefix + "ledger", "--json")
    assert tail.code == 0, tail.describe()
    rows = [json.loads(line) for line in tail.stdout.splitlines()]
    assert sorted((r["key"], r["data"]["n"]) for r in rows) == sorted(
        (s, n) for s in streams for n in range(2)
    )
    assert {r["type"] for r in rows} == {"ledger.Touched"}
    missing = kafka_chronik("topics", "tail", topic_prefix + "nothing")
    assert missing.code == 3, missing.describe()


async def test_relay_runs_until_sigterm_and_exits_cleanly(
    kafka_chronik: Chronik, cli_store: PostgresEventStore, topic_prefix: str
) -> None:
    store = cli_store
    process = kafka_chronik.start("relay", "--name", "live", "--topic-prefix", topic_prefix)
    try:
        await store.append(f"ledger-{uuid.uuid4().hex[:6]}", [NewEvent("ledger.Live", {})])
        head = await store.head()

        async def published() -> bool:
            result = kafka_chronik("relay", "status", "--name", "live", "--json")
            return result.code == 0 and result.json()[0]["checkpoint"] == str(head)

        await until_true(published)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(process.communicate, timeout=60)
    assert process.returncode == 0, stderr
    assert "leading" in stderr


def test_an_unreachable_broker_is_one_line_naming_event_and_topic(
    kafka_chronik: Chronik, topic_prefix: str
) -> None:
    result = kafka_chronik(
        "relay",
        "--until-caught-up",
        "--name",
        "nowhere",
        "--delivery-timeout",
        "1",
        "--kafka-bootstrap-servers",
        "127.0.0.1:9",
    )
    assert result.code == 4, result.describe()
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("chronik: error: cannot publish event ")
    assert "to topic 'chronik.ledger'" in line and "KAFKA_BOOTSTRAP_SERVERS" in line
