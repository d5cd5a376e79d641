"""``chronik relay``, ``relay status`` and ``topics tail`` against the session's Kafka."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from cli_runner import Chronik
from support.kafka import consume, until_true
from support.projection_runs import feed_settled, last_committed

from eventstore import NewEvent, PostgresEventStore, SchemaRecord, schema_fingerprint


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
    # The relay stops at the head it can see: wait until no transaction elsewhere holds
    # it below the seeded events, so that it must publish all of them.
    last = await feed_settled(cli_store)
    result = kafka_chronik("relay", "--until-caught-up", "--topic-prefix", topic_prefix)
    assert result.code == 0, result.describe()
    [status] = kafka_chronik("relay", "status", "--json").json()
    assert status["name"] == "default" and status["lag_events"] == 0
    assert status["checkpoint"] == str(last)
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
        # Not the feed's head, which an open transaction elsewhere may hold back.
        head = await last_committed(store)

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


async def test_relay_sets_dataschema_from_the_schema_base_url(
    kafka_chronik: Chronik, cli_store: PostgresEventStore, kafka_bootstrap: str
) -> None:
    prefix = f"cli{uuid.uuid4().hex[:8]}."
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    await cli_store.schemas.register(
        [SchemaRecord("ledger.Touched", 1, schema, schema_fingerprint(schema))]
    )
    await seed(cli_store)
    result = kafka_chronik(
        "relay", "--until-caught-up", "--name", "schemas", "--topic-prefix", prefix,
        extra_env={"CHRONIK_SCHEMA_BASE_URL": "https://schemas.example.com/v/"},
    )  # fmt: skip
    assert result.code == 0, result.describe()
    schemas = {
        (m.header("ce_type"), m.header("ce_dataschema"))
        for m in consume(kafka_bootstrap, [prefix + "ledger"])
    }
    # Earlier tests of this module wrote ledger.Live, which has no registered schema.
    assert schemas - {("ledger.Live", None)} == {
        ("ledger.Touched", "https://schemas.example.com/v/ledger.Touched/v1.json")
    }


async def test_relay_with_an_unreachable_schema_registry_masks_its_password(
    kafka_chronik: Chronik, cli_store: PostgresEventStore
) -> None:
    schema = {"type": "object"}
    await cli_store.schemas.register(
        SchemaRecord(kind, 1, schema, schema_fingerprint(schema))
        for kind in ("ledger.Touched", "ledger.Live")  # what this module writes
    )
    await seed(cli_store)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prefix = f"cli{uuid.uuid4().hex[:8]}."
    args = ("relay", "--until-caught-up", "--name", "registry", "--topic-prefix", prefix)
    env = {"SCHEMA_REGISTRY_URL": f"http://relay:s3cret@127.0.0.1:{port}"}
    result = kafka_chronik(*args, "--subject-strategy", "record", extra_env=env)
    assert result.code == 4, result.describe()
    assert "cannot reach the schema registry at http://relay:***@127.0.0.1" in result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    structured = kafka_chronik(*args, "--structured", extra_env=env)
    assert structured.code == 2 and "binary mode" in structured.stderr, structured.describe()
