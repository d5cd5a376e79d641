"""Change data capture: a legacy table's rows as Debezium change events on Kafka."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import confluent_kafka
import psycopg
from psycopg import sql

from eventstore import PostgresEventStore
from messaging import (
    CdcOptions,
    ChangeCapture,
    MockCluster,
    change_producer,
    publish_changes,
    slot_lag,
)


def read_topic(servers: str, topic: str, count: int) -> list[str]:
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": servers, "group.id": "guide-reader", "enable.auto.commit": False}
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign(
        [confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
         for p in partitions]
    )  # fmt: skip
    lines: list[str] = []
    try:
        while len(lines) < count:
            message = consumer.poll(10.0)
            if message is None or message.error():
                raise RuntimeError(f"nothing more on {topic}: {message and message.error()}")
            key, raw = (message.key() or b"").decode(), message.value()
            value = None if raw is None else json.loads(raw)
            if value is None:
                lines.append(f"key={key} (tombstone)")
            else:
                lines.append(
                    f"key={key} op={value['op']} before={value['before']} after={value['after']}"
                )
    finally:
        consumer.close()
    return lines


async def main() -> None:
    async with await PostgresEventStore.connect(os.environ.get("DATABASE_URL")) as store:
        name = f"rides_{uuid.uuid4().hex[:8]}"
        # --8<-- [start:table]
        async with await psycopg.AsyncConnection.connect(store.dsn, autocommit=True) as db:
            table = sql.Identifier(name)
            await db.execute(
                sql.SQL(
                    "CREATE TABLE {} (id int PRIMARY KEY, driver text, fare numeric(6,2), "
                    "booked timestamptz)"
                ).format(table)
            )
            await db.execute(
                sql.SQL("INSERT INTO {} VALUES (1, 'ann', 12.50, '2024-05-01 10:00:00+00')").format(
                    table
                )
            )
        # --8<-- [end:table]
        with MockCluster() as cluster:
            servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or cluster.bootstrap_servers
            # --8<-- [start:capture]
            options = CdcOptions(
                tables=(f"public.{name}",),
                name=name,  # the slot and publication chronik_cdc_<name>
                topic_prefix="legacy",  # topics legacy.<schema>.<table>
                full_before=True,  # REPLICA IDENTITY FULL: whole old rows
            )
            producer = change_producer(servers)
            try:
                async with ChangeCapture(store.dsn, options) as capture:
                    # The existing rows (op r), from the snapshot the slot exported.
                    await publish_changes(capture, producer, until_idle=True)
                    async with await psycopg.AsyncConnection.connect(
                        store.dsn, autocommit=True
                    ) as db:
                        await db.execute(
                            sql.SQL("UPDATE {} SET driver = 'bob' WHERE id = 1").format(table)
                        )
                        await db.execute(sql.SQL("DELETE FROM {} WHERE id = 1").format(table))
                    # What changed since (a service runs it with stop= until stopped).
                    progress = await publish_changes(capture, producer, until_idle=True)
            finally:
                producer.close()
            print(progress.changes, "change(s) published after the snapshot")
            # --8<-- [end:capture]
            for line in read_topic(servers, f"legacy.public.{name}", 4):
                print(line)

        # --8<-- [start:lag]
        async with await psycopg.AsyncConnection.connect(store.dsn, autocommit=True) as db:
            lag = await slot_lag(db, f"chronik_cdc_{name}")
            if lag is not None:  # None: no such slot
                print(f"{lag.slot}: active={lag.active}, keeps {lag.retained_bytes} bytes of WAL")
            # Retiring a connector: drop its slot, or it keeps WAL on the server's disk.
            await db.execute("SELECT pg_drop_replication_slot(%s)", (f"chronik_cdc_{name}",))
            await db.execute(
                sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(f"chronik_cdc_{name}"))
            )
        # --8<-- [end:lag]


if __name__ == "__main__":
    asyncio.run(main())
