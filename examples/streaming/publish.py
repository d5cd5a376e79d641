"""Publishing to Kafka: the outbox in a business transaction, the relay, CloudEvents.

Runs on the embedded mock cluster unless KAFKA_BOOTSTRAP_SERVERS is set.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import confluent_kafka

from aggregates import Repository
from aggregates.ledger import Ledger
from eventstore import PostgresEventStore
from messaging import MockCluster, Relay, RelayOptions, TopicMapping, decode, migrate, publish


# --8<-- [start:outbox]
async def issue_invoice(store: PostgresEventStore, invoice: str) -> None:
    """A business write and its message: one transaction, both or neither."""
    async with store.connection() as connection, connection.transaction():
        await connection.execute("INSERT INTO invoices VALUES (%s, '12.00')", (invoice,))
        await publish(
            connection,
            aggregatetype="invoice",  # topic outbox.event.invoice
            aggregateid=invoice,  # the message key
            type="invoice.Issued",
            payload={"total": "12.00"},
        )


# --8<-- [end:outbox]


# --8<-- [start:relay]
def relay_for(store: PostgresEventStore, servers: str, name: str, exactly_once: bool) -> Relay:
    options = RelayOptions(
        name=name,  # one checkpoint, one leader lock per (schema, name)
        topics=TopicMapping(prefix="bank."),  # ledger-... streams go to bank.ledger
        exactly_once=exactly_once,  # Kafka transactions; else at-least-once
        create_checkpoint_topic=False,  # the mock cluster cannot create compacted topics
        # CloudEvents dataschema: where 'chronik schemas export --out' output is served
        schema_base_url="https://schemas.example.com/bank",
    )
    return Relay(store, servers, options)


# --8<-- [end:relay]


# --8<-- [start:read]
def read_back(servers: str, topic: str, key_prefix: str, count: int) -> list[str]:
    """What a consumer sees: the CloudEvents attributes and the data."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": "guide-reader",  # no offsets committed: assign() reads from the start
            "enable.auto.commit": False,
            "isolation.level": "read_committed",  # an exactly-once relay's transactions
        }
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
            headers: Any = message.headers() or []  # a list of (name, bytes) pairs
            event = decode(headers, message.value(), message.key())
            if (event.key or "").startswith(key_prefix):
                schema = f" dataschema={event.dataschema}" if event.dataschema else ""
                lines.append(f"{topic} key={event.key} {event.type} {event.data}{schema}")
    finally:
        consumer.close()
    return lines


# --8<-- [end:read]


async def main() -> None:
    async with await PostgresEventStore.connect(os.environ.get("DATABASE_URL")) as store:
        # --8<-- [start:setup]
        async with store.connection() as connection:
            await migrate(connection, store.schema)  # the outbox and relay tables
            await connection.execute("CREATE TABLE IF NOT EXISTS invoices (id text, total text)")
            await connection.commit()
        # --8<-- [end:setup]
        invoice = f"inv-{uuid.uuid4().hex[:8]}"
        await issue_invoice(store, invoice)
        ledger = f"guide-{uuid.uuid4().hex[:8]}"
        repository = Repository(store, [Ledger])
        await repository.create(Ledger, ledger, lambda x: (x.open("Ada", "EUR"), x.deposit(5)))

        # --8<-- [start:run]
        with MockCluster() as cluster:  # in memory, gone with this process
            servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or cluster.bootstrap_servers
            relay = relay_for(store, servers, name=f"guide-{ledger}", exactly_once=True)
            checkpoint = await relay.publish_pending()  # a service runs: await relay.run(stop)
            print(checkpoint.published_outbox, "outbox message(s) published")
            for line in read_back(servers, "outbox.event.invoice", invoice, 1):
                print(line)
            for line in read_back(servers, "bank.ledger", Ledger.stream_id_for(ledger), 2):
                print(line)
        # --8<-- [end:run]


if __name__ == "__main__":
    asyncio.run(main())
