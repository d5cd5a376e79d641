"""``chronik consume --handler``, ``consumers status`` and ``consumers deadletters``
as real processes against the session's Kafka."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kafka_support import fresh_topic, publish, until_applied
from test_kafka_projection import seed_ledgers

from eventstore import PostgresEventStore
from projections import RedisReadModel
from projections.shipped import LEDGER_BALANCES, ledger_balance

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent


def environment(
    tmp: Path, store: PostgresEventStore, pg_dsn: str, redis_url: str, kafka: str
) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CHRONIK_", "DATABASE_", "REDIS_"))
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]),
        DATABASE_URL=pg_dsn,
        REDIS_URL=redis_url,
        CHRONIK_SCHEMA=store.schema,
        CHRONIK_DATA_DIR=str(tmp / ".chronik"),
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        CHRONIK_TEST_HANDLED=str(tmp / "handled.txt"),
    )
    return env


def chronik(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chronik", *args], env=env, cwd=ROOT, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "chronik", *args], env=env, cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def test_consume_with_a_handler_reports_lag_and_dead_letters_and_stops_cleanly(
    store: PostgresEventStore, pg_dsn: str, redis_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    await seed_ledgers(store, 3, 2)
    events = [e async for e in store.read_all()]
    topic, group = fresh_topic("chronik.ledger"), f"g-{uuid.uuid4().hex[:8]}"
    publish(kafka_bootstrap, topic, events, raw=[(b"ledger-x", b"{oops", [])])
    env = environment(tmp_path, store, pg_dsn, redis_url, kafka_bootstrap)
    handled = tmp_path / "handled.txt"
    member = start(env, "consume", "--group", group, "--topic", topic,
                   "--handler", "cli_handler:handle")  # fmt: skip
    try:
        deadline = time.monotonic() + 90  # a hang guard, not a timing assertion
        while len(lines(handled)) < len(events) and member.poll() is None:
            assert time.monotonic() < deadline, "the consumer did not handle the events"
            await asyncio.sleep(0.05)
        assert member.poll() is None, member.communicate()
        # The bad message reaches the DLQ (the group moves past it only after that).
        while True:
            listed = chronik(env, "consumers", "deadletters", "list", topic, "--json")
            assert listed.returncode == 0, listed.stderr
            if json.loads(listed.stdout):
                break
            assert time.monotonic() < deadline, "nothing reached the DLQ"
    finally:
        member.send_signal(signal.SIGTERM)
        _, err = member.communicate(timeout=60)
    assert member.returncode == 0, err
    assert "left group" in err
    expected = sorted(f"{e.stream_id} {e.version} {e.type}" for e in events)
    assert sorted(lines(handled)) == expected
    [letter] = json.loads(listed.stdout)
    assert letter["original_topic"] == topic and letter["replayed"] is False
    assert "not a CloudEvent" in letter["error"]

    status = chronik(env, "consumers", "status", "--group", group, "--topic", topic, "--json")
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    assert {row["topic"] for row in rows} == {topic}
    assert sum(row["committed"] or 0 for row in rows) == len(events) + 1
    assert all(row["events"] == 0 and row["seconds"] == 0 for row in rows)
    table = chronik(env, "consumers", "status", "--group", group, "--topic", topic)
    assert group in table.stdout and "LAG S" in table.stdout


async def test_consume_a_projection_and_see_its_partitions_in_projections_status(
    store: PostgresEventStore, pg_dsn: str, redis_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    await seed_ledgers(store, 3, 3)
    events = [e async for e in store.read_all()]
    topic, group = fresh_topic("chronik.ledger"), f"g-{uuid.uuid4().hex[:8]}"
    publish(kafka_bootstrap, topic, events)
    env = environment(tmp_path, store, pg_dsn, redis_url, kafka_bootstrap)
    member = start(env, "consume", "--group", group, "--topic", topic,
                   "--projection", LEDGER_BALANCES.name)  # fmt: skip
    async with await RedisReadModel.connect(redis_url, prefix=f"{store.schema}:") as model:
        try:
            await until_applied(model, LEDGER_BALANCES.name, len(events))
        finally:
            member.send_signal(signal.SIGTERM)
            _, err = member.communicate(timeout=60)
        assert member.returncode == 0, err
        balance = await ledger_balance(model, events[-1].stream_id)
    assert balance is not None and balance.balance > 0
    status = chronik(env, "projections", "status", "--json")
    assert status.returncode == 0, status.stderr
    [row] = [r for r in json.loads(status.stdout) if r["name"] == LEDGER_BALANCES.name]
    assert {p["topic"] for p in row["kafka"]} == {topic}
    assert sum(p["committed"] or 0 for p in row["kafka"]) == len(events)
    assert all(p["events"] == 0 for p in row["kafka"])
    table = chronik(env, "projections", "status")
    assert "Kafka-fed" in table.stdout and topic in table.stdout
