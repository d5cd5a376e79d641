"""CDC to Kafka (librdkafka's mock cluster, or KAFKA_BOOTSTRAP_SERVERS): messages and kills."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from cdc_support import CdcTable
from support.kafka import consume

from messaging import CdcOptions, ChangeCapture, change_producer, publish_changes

REPO = Path(__file__).resolve().parents[2]


async def test_messages_on_kafka_are_debezium_json(
    cdc_table: CdcTable, kafka_bootstrap: str
) -> None:
    table = cdc_table
    prefix = f"p{table.name}"
    await table.execute("INSERT INTO {t} (id, driver, fare) VALUES (1, 'ann', 3.5)")
    options = CdcOptions(tables=(table.table,), name=table.name, topic_prefix=prefix)
    producer = change_producer(kafka_bootstrap)
    try:
        async with ChangeCapture(table.dsn, options) as capture:
            await publish_changes(capture, producer, until_idle=True)  # the snapshot
            await table.execute("UPDATE {t} SET driver = 'bob' WHERE id = 1")
            await table.execute("DELETE FROM {t} WHERE id = 1")
            progress = await publish_changes(capture, producer, until_idle=True)
    finally:
        producer.close()
    assert progress.changes == 3  # update, delete, tombstone
    messages = consume(kafka_bootstrap, [f"{prefix}.{table.schema}.rides"])
    assert [json.loads(m.key) for m in messages if m.key] == [{"id": 1}] * 4
    values = [None if m.value is None else json.loads(m.value) for m in messages]
    assert [(v["op"], v["before"], v["after"]) if v else None for v in values] == [
        ("r", None, {**_nulls(), "id": 1, "driver": "ann", "fare": "3.50"}),
        ("u", None, {**_nulls(), "id": 1, "driver": "bob", "fare": "3.50"}),
        ("d", {**_nulls(), "id": 1}, None),
        None,
    ]
    # The encoded JSON is compact, and the same document the envelope builder made.
    assert messages[0].value is not None and b", " not in messages[0].value


def _nulls() -> dict[str, Any]:
    columns = "id small big fare driver code active ref day local_at at doc raw tags scores span"
    return dict.fromkeys(columns.split())


# -- killed at random moments --------------------------------------------------------


async def _confirmed(dsn: str, slot: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as connection:
        cursor = await connection.execute(
            "SELECT coalesce((confirmed_flush_lsn - '0/0'::pg_lsn)::bigint, 0) "
            "FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        )
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def _snapshot_done(table: CdcTable, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60
    async with await psycopg.AsyncConnection.connect(table.dsn, autocommit=True) as connection:
        while True:
            cursor = await connection.execute("SELECT to_regclass('chronik.cdc_connectors')")
            exists = await cursor.fetchone()
            row = None
            if exists is not None and exists[0] is not None:
                cursor = await connection.execute(
                    "SELECT snapshot_done FROM chronik.cdc_connectors WHERE name = %s",
                    (table.name,),
                )
                row = await cursor.fetchone()
            if row is not None and row[0]:
                return
            assert process.returncode is None, await process.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the CDC process took no snapshot"
            await asyncio.sleep(0.02)


async def _spawn(table: CdcTable, bootstrap: str, *extra: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": table.dsn,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chronik", "cdc", "--table", f"{table.schema}.counters",
        "--name", table.name, "--topic-prefix", f"k{table.name}", "--max-changes", "50", *extra,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _writer(dsn: str, schema: str, log: list[tuple[int, int]], stop: asyncio.Event) -> None:
    """Small transactions on ten keys; logs (key, n) in commit order (one connection)."""
    rng = random.Random(7)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        while not stop.is_set():
            key = rng.randrange(12)
            cursor = await connection.execute(
                f"INSERT INTO {schema}.counters AS c VALUES (%s, 1) "
                "ON CONFLICT (id) DO UPDATE SET n = c.n + 1 RETURNING n",
                (key,),
            )
            row = await cursor.fetchone()
            assert row is not None
            log.append((key, int(row[0])))
            await asyncio.sleep(0)


async def test_killed_cdc_process_loses_nothing(cdc_table: CdcTable, kafka_bootstrap: str) -> None:
    table = cdc_table
    slot = f"chronik_cdc_{table.name}"
    await table.execute(f"CREATE TABLE {table.schema}.counters (id int PRIMARY KEY, n int)")
    log: list[tuple[int, int]] = []
    for key in range(5):  # rows for the snapshot
        await table.execute(f"INSERT INTO {table.schema}.counters VALUES ({key}, 1)")
        log.append((key, 1))
    stop = asyncio.Event()
    writer: asyncio.Task[None] | None = None
    rng = random.Random()
    try:
        for _ in range(3):
            before = await _confirmed(table.dsn, slot)
            process = await _spawn(table, kafka_bootstrap)
            if writer is None:
                # Write once the snapshot is delivered: a snapshot cut short is
                # taken again, and only the rows as they are then are in it (as
                # with Debezium), so changes made meanwhile would show as one.
                await _snapshot_done(table, process)
                writer = asyncio.create_task(_writer(table.dsn, table.schema, log, stop))
            deadline = time.monotonic() + 60
            # Kill once it has delivered something, a random moment later.
            while await _confirmed(table.dsn, slot) <= before:
                assert process.returncode is None, await process.stderr.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the CDC process confirmed nothing"
                await asyncio.sleep(0.02)
            await asyncio.sleep(rng.uniform(0, 0.3))
            process.send_signal(signal.SIGKILL)
            await process.wait()
    finally:
        stop.set()
        if writer is not None:
            await writer
    final = await _spawn(table, kafka_bootstrap, "--until-idle")
    _, err = await final.communicate()
    assert final.returncode == 0, err.decode()

    messages = consume(kafka_bootstrap, [f"k{table.name}.{table.schema}.counters"])
    seen: dict[int, list[int]] = {}
    for message in messages:
        assert message.key is not None and message.value is not None
        key, value = json.loads(message.key)["id"], json.loads(message.value)
        seen.setdefault(key, []).append(value["after"]["n"])
    committed: dict[int, list[int]] = {}
    for key, n in log:
        committed.setdefault(key, []).append(n)
    assert len(log) > 20, "the writer barely wrote: the test proves little"
    for key, values in committed.items():
        received = seen.get(key, [])
        # At-least-once: a restart may repeat what was sent but not confirmed.  With
        # the repeats taken out, each key's changes are all there, in commit order.
        first_seen = list(dict.fromkeys(received))
        assert first_seen == values, (key, received)
        assert _repeats_are_replays(received), (key, received)
    assert set(seen) == set(committed)


def _repeats_are_replays(received: list[int]) -> bool:
    """A value may come again only as part of a replayed run that goes forward again."""
    highest = 0
    for value in received:
        if value > highest + 1:
            return False  # a gap: something skipped
        highest = max(highest, value)
    return True
