"""Consuming from Kafka: an idempotent handler, a Kafka-fed projection, the DLQ, lag.

The relay of publish.py puts the ledgers on the embedded mock cluster (or on
KAFKA_BOOTSTRAP_SERVERS); two consumer groups read them back.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable

from aggregates import Repository, build_codec
from aggregates.ledger import Ledger, Opened
from eventstore import Event, PostgresEventStore
from messaging import (
    ConsumerOptions,
    DeliveryPolicy,
    HandlerConsumer,
    HandlerContext,
    KafkaProjection,
    MockCluster,
    PostgresIdempotency,
    consume,
    consumer_lag,
    idempotent,
    list_dead_letters,
)
from projections import ProjectionNotReadyError, RedisReadModel
from projections.shipped import LEDGER_BALANCES, ledger_balance

from .publish import relay_for

TOPIC = "bank.ledger"


class MailRefused(Exception):
    pass


# --8<-- [start:handler]
async def welcome(event: Event, context: HandlerContext) -> None:
    """Send a welcome mail once per opened ledger, whatever Kafka redelivers."""
    if not isinstance(event, Opened):
        return
    if event.owner == "Mallory":  # a poison message: no retry will fix it
        raise MailRefused(f"mailbox of {event.owner} refuses mail")
    # Under `idempotent`, context.connection is in the transaction that records
    # the event id: the mail row and the "done" mark commit together.
    await context.connection.execute(
        "INSERT INTO welcome_mails (ledger, owner) VALUES (%s, %s)",
        (context.envelope.stream_id, event.owner),
    )


# --8<-- [end:handler]


# --8<-- [start:policy]
POLICY = DeliveryPolicy(
    attempts=2,  # tries in place (with backoff) before the first retry topic
    initial_delay=0.05,
    retry_topics=1,  # bank.ledger.retry.1, then bank.ledger.dlq
    retry_delay=0.2,  # seconds a message waits in retry topic 1
)
# --8<-- [end:policy]


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(120):  # a guard against a hang, not a wait
        while not await check():  # noqa: ASYNC110 (a condition in other systems)
            await asyncio.sleep(0.1)


async def main() -> None:
    database, redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    async with (
        await PostgresEventStore.connect(database) as store,
        await RedisReadModel.connect(redis) as read_model,
    ):
        repository = Repository(store, [Ledger])
        run = uuid.uuid4().hex[:8]
        names = {"Ada": f"ada-{run}", "Bob": f"bob-{run}", "Mallory": f"mallory-{run}"}
        for owner, name in names.items():

            def open_with_ten(ledger: Ledger, owner: str = owner) -> None:
                ledger.open(owner, "EUR")
                ledger.deposit(10)

            await repository.create(Ledger, name, open_with_ten)
        async with store.connection() as connection:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS welcome_mails (ledger text, owner text)"
            )
            await connection.commit()

        with MockCluster() as cluster:
            servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or cluster.bootstrap_servers
            await relay_for(store, servers, f"consume-{run}", exactly_once=False).publish_pending()

            # --8<-- [start:consumers]
            idempotency = PostgresIdempotency(store, "mailer")  # a table of handled event ids
            await idempotency.setup()
            mailer = HandlerConsumer(
                "mailer", idempotent(welcome, idempotency), build_codec([Ledger]), policy=POLICY
            )
            balances = KafkaProjection(LEDGER_BALANCES, read_model)
            stop = asyncio.Event()
            options = ConsumerOptions(poll_timeout=0.05)
            members = [
                asyncio.create_task(
                    consume(mailer, bootstrap=servers, group=f"mailer-{run}", topics=[TOPIC],
                            stop=stop, options=options)
                ),
                asyncio.create_task(
                    consume(balances, bootstrap=servers, group=f"balances-{run}", topics=[TOPIC],
                            stop=stop, options=options)
                ),
            ]  # fmt: skip
            # --8<-- [end:consumers]

            async def done() -> bool:
                async with store.connection() as connection:
                    cursor = await connection.execute(
                        "SELECT count(*) FROM welcome_mails WHERE ledger LIKE %s", (f"%-{run}",)
                    )
                    row = await cursor.fetchone()
                if not (row and row[0] == 2 and await list_dead_letters(servers, TOPIC)):
                    return False
                try:  # Mallory's ledger is the last one the relay published
                    last = await ledger_balance(read_model, Ledger.stream_id_for(names["Mallory"]))
                except ProjectionNotReadyError:  # nothing applied yet
                    return False
                return last is not None

            await until(done)
            stop.set()
            await asyncio.gather(*members)

            # --8<-- [start:inspect]
            ada = await ledger_balance(read_model, Ledger.stream_id_for(names["Ada"]))
            print("Ada's balance, fed from Kafka:", ada.balance if ada else None)
            for letter in await list_dead_letters(servers, TOPIC):
                if run not in (letter.key or ""):
                    continue  # parked by an earlier run of this example
                attempts = f"after {letter.attempts} attempts:"
                print(letter.dlq, letter.event_type, letter.key, attempts, letter.error_type, "-",
                      letter.error)  # fmt: skip
            lag = await consumer_lag(servers, f"mailer-{run}", [TOPIC])
            print("mailer lag:", sum(p.events for p in lag), "event(s)")
            # --8<-- [end:inspect]


if __name__ == "__main__":
    asyncio.run(main())
