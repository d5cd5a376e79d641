"""The outbox: written in the caller's transaction, published like events, then removed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from cloudevents.v1.kafka import KafkaMessage, from_binary
from psycopg import AsyncConnection, sql
from support.kafka import consume, relay_options

from eventstore import PostgresEventStore
from messaging import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MessageTooLargeError,
    MessagingConfigError,
    OutboxError,
    PublishError,
    Relay,
    decode,
    migrate,
    publish,
    relay_status,
)


async def outbox_rows(store: PostgresEventStore) -> int:
    async with store.connection() as connection:
        cursor = await connection.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(store.schema, "outbox"))
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
async def outbox_store(relay_store: PostgresEventStore) -> PostgresEventStore:
    async with relay_store.connection() as connection:
        await migrate(connection, relay_store.schema)
        await connection.execute(
            sql.SQL("CREATE TABLE {} (id text PRIMARY KEY, total int)").format(
                sql.Identifier(relay_store.schema, "invoices")
            )
        )
    return relay_store


async def test_committed_messages_are_published_in_order_and_cleaned_up(
    outbox_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    store = outbox_store
    invoices = sql.Identifier(store.schema, "invoices")
    ids = []
    for number in range(6):
        async with store.connection() as connection, connection.transaction():
            # The business row and its message commit together.
            await connection.execute(
                sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(invoices),
                (f"inv-{number}-{uuid.uuid4().hex[:4]}", number),
            )
            ids.append(
                await publish(
                    connection,
                    aggregatetype="invoice",
                    aggregateid=f"inv-{number % 2}",
                    type="invoice.Issued",
                    payload={"n": number, "note": "ünïcode"},
                    headers={"tenant": "acme"},
                    schema=store.schema,
                )
            )
    assert await outbox_rows(store) == 6
    await Relay(store, kafka_bootstrap, relay_options(prefix)).publish_pending()

    messages = consume(kafka_bootstrap, [prefix + "outbox.invoice"])
    by_key: dict[bytes | None, list[int]] = {}
    for message in messages:
        # Debezium's outbox router shape: key = aggregateid, value = payload, id header.
        assert message.header("id") == message.header("ce_id")
        assert message.header("tenant") == "acme"
        sdk = from_binary(KafkaMessage(dict(message.headers), message.key, message.value))
        assert sdk["type"] == "invoice.Issued" and sdk["subject"] == message.key.decode()  # type: ignore[union-attr]
        by_key.setdefault(message.key, []).append(decode(message.headers, message.value).data["n"])
    assert by_key == {b"inv-0": [0, 2, 4], b"inv-1": [1, 3, 5]}
    assert sorted(m.header("id") for m in messages) == sorted(str(i) for i in ids)
    # Published rows are deleted with the checkpoint that passed them.
    assert await outbox_rows(store) == 0
    [status] = await relay_status(store, "test")
    assert status.published_outbox == 6 and status.outbox_pending == 0


async def test_a_rolled_back_transaction_publishes_nothing(
    outbox_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    store = outbox_store

    class Refused(Exception):
        pass

    with pytest.raises(Refused):
        async with store.connection() as connection, connection.transaction():
            await publish(
                connection,
                aggregatetype="invoice",
                aggregateid="inv-9",
                type="invoice.Issued",
                payload={},
                schema=store.schema,
            )
            raise Refused
    assert await outbox_rows(store) == 0
    await Relay(store, kafka_bootstrap, relay_options(prefix)).publish_pending()
    assert consume(kafka_bootstrap, [prefix + "outbox.invoice"]) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("aggregatetype", "", "aggregatetype must be a non-empty string"),
        ("aggregatetype", "no spaces", "gives no valid topic"),
        ("type", None, "type must be"),
        ("payload", {"x": float("nan")}, "payload is not JSON"),
        ("headers", {"ce_id": "mine"}, "written by the relay"),
        ("topic", "bad topic", "not a Kafka topic name"),
    ],
)
async def test_bad_input_writes_nothing(
    outbox_store: PostgresEventStore, field: str, value: object, message: str
) -> None:
    arguments: dict[str, object] = {
        "aggregatetype": "invoice",
        "aggregateid": "inv-1",
        "type": "invoice.Issued",
        "payload": {},
        field: value,
    }
    async with outbox_store.connection() as connection:
        with pytest.raises(OutboxError, match=message):
            await publish(connection, schema=outbox_store.schema, **arguments)  # type: ignore[arg-type]
    assert await outbox_rows(outbox_store) == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("message_id", "not-a-uuid", "message_id must be a UUID"),
        ("aggregateid", "inv-\ud800", "aggregateid is not valid text"),
        ("payload", {"note": "\udfff"}, "payload is not valid text"),
    ],
    ids=["message id", "surrogate in id", "surrogate in payload"],
)
async def test_bad_input_leaves_the_callers_transaction_usable(
    outbox_store: PostgresEventStore, field: str, value: object, message: str
) -> None:
    # Refused before the INSERT: a statement the server refused would abort the
    # caller's transaction, and lose the business rows written in it.
    invoices = sql.Identifier(outbox_store.schema, "invoices")
    invoice = f"inv-{uuid.uuid4().hex[:6]}"
    arguments: dict[str, object] = {
        "aggregatetype": "invoice",
        "aggregateid": invoice,
        "type": "invoice.Issued",
        "payload": {},
    }
    async with outbox_store.connection() as connection, connection.transaction():
        await connection.execute(
            sql.SQL("INSERT INTO {} VALUES (%s, 5)").format(invoices), (invoice,)
        )
        with pytest.raises(OutboxError, match=message):
            await publish(
                connection,
                schema=outbox_store.schema,
                **{**arguments, field: value},  # type: ignore[arg-type]
            )
        await publish(connection, schema=outbox_store.schema, **arguments)  # type: ignore[arg-type]
    async with outbox_store.connection() as connection:
        cursor = await connection.execute(
            sql.SQL("SELECT total FROM {} WHERE id = %s").format(invoices), (invoice,)
        )
        assert await cursor.fetchall() == [(5,)]
    assert await outbox_rows(outbox_store) == 1


async def test_a_schema_without_an_outbox_table_is_named(
    outbox_store: PostgresEventStore,
) -> None:
    async with outbox_store.connection() as connection:
        with pytest.raises(OutboxError, match="schema 'no_outbox_here' has no outbox table"):
            await publish(
                connection,
                aggregatetype="invoice",
                aggregateid="inv-1",
                type="invoice.Issued",
                payload={},
                schema="no_outbox_here",
            )


async def publish_invoice(
    connection: AsyncConnection[Any], store: PostgresEventStore, **overrides: Any
) -> uuid.UUID:
    """``publish`` of an ``invoice.Issued`` message of ``inv-1``, with ``overrides``."""
    arguments: dict[str, Any] = {
        "aggregatetype": "invoice",
        "aggregateid": "inv-1",
        "type": "invoice.Issued",
        "payload": {},
        "schema": store.schema,
        **overrides,
    }
    return await publish(connection, **arguments)


async def test_a_message_over_kafkas_size_limit_is_refused_and_the_transaction_goes_on(
    outbox_store: PostgresEventStore,
) -> None:
    invoices = sql.Identifier(outbox_store.schema, "invoices")
    invoice = f"inv-{uuid.uuid4().hex[:6]}"
    async with outbox_store.connection() as connection, connection.transaction():
        await connection.execute(
            sql.SQL("INSERT INTO {} VALUES (%s, 5)").format(invoices), (invoice,)
        )
        with pytest.raises(MessageTooLargeError) as refused:
            await publish_invoice(
                connection,
                outbox_store,
                aggregateid=invoice,
                type="invoice.Scanned",
                payload={"pdf": "x" * DEFAULT_MAX_MESSAGE_BYTES},
            )
        await publish_invoice(connection, outbox_store, aggregateid=invoice)
    error = refused.value
    assert isinstance(error, OutboxError)
    assert (error.topic, error.key, error.limit) == ("outbox.event.invoice", invoice, 1_000_000)
    assert error.size > DEFAULT_MAX_MESSAGE_BYTES
    assert f"topic 'outbox.event.invoice' (key {invoice!r})" in str(error)
    assert f"{error.size} bytes" in str(error) and "1000000-byte" in str(error)
    async with outbox_store.connection() as connection:
        cursor = await connection.execute(
            sql.SQL("SELECT total FROM {} WHERE id = %s").format(invoices), (invoice,)
        )
        assert await cursor.fetchall() == [(5,)]
    assert await outbox_rows(outbox_store) == 1


@pytest.mark.parametrize("limit", [0, 999, True, 1e6])
async def test_a_limit_librdkafka_would_refuse_is_a_config_error(
    outbox_store: PostgresEventStore, limit: object
) -> None:
    async with outbox_store.connection() as connection:
        with pytest.raises(MessagingConfigError, match=f"max_message_bytes must be .*{limit!r}"):
            await publish_invoice(connection, outbox_store, max_message_bytes=limit)
    assert await outbox_rows(outbox_store) == 0


async def test_the_size_is_the_payload_as_postgresql_stores_it(
    outbox_store: PostgresEventStore,
) -> None:
    # 1e300 is 6 characters in Python's JSON and 301 digits once jsonb has it: the
    # relay would send the long form.
    async with outbox_store.connection() as connection, connection.transaction():
        with pytest.raises(MessageTooLargeError) as refused:
            await publish_invoice(
                connection,
                outbox_store,
                payload={"totals": [1e300] * 20},
                topic="invoices",
                max_message_bytes=5000,
            )
        await connection.execute("SELECT 1")  # still usable
    assert refused.value.size > 20 * 301 and refused.value.topic == "invoices"
    assert await outbox_rows(outbox_store) == 0


async def test_what_publish_accepts_the_relay_sends_with_the_same_limit(
    outbox_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    limit = 20_000
    last: int | None = None
    async with outbox_store.connection() as connection:
        for size in range(limit - 2200, limit):  # up to the first refused length
            try:
                await publish_invoice(
                    connection,
                    outbox_store,
                    payload={"note": "é" * (size // 2)},
                    max_message_bytes=limit,
                )
            except MessageTooLargeError:
                break
            await connection.execute(
                sql.SQL("DELETE FROM {}").format(sql.Identifier(outbox_store.schema, "outbox"))
            )
            last = size
        assert last is not None and last < limit - 2
        # The largest message publish took is sent by a relay with the same limit.
        await publish_invoice(
            connection, outbox_store, payload={"note": "é" * (last // 2)}, max_message_bytes=limit
        )
    options = relay_options(prefix, max_message_bytes=limit)
    await Relay(outbox_store, kafka_bootstrap, options).publish_pending()
    [message] = consume(kafka_bootstrap, [prefix + "outbox.invoice"])
    assert len(decode(message.headers, message.value).data["note"]) == last // 2


async def test_the_relays_producer_uses_its_limit(
    outbox_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    async with outbox_store.connection() as connection:
        await publish_invoice(connection, outbox_store, payload={"note": "x" * 30_000})
    options = relay_options(prefix, max_message_bytes=20_000)
    with pytest.raises(PublishError) as refused:
        await Relay(outbox_store, kafka_bootstrap, options).publish_pending()
    assert await outbox_rows(outbox_store) == 1
    assert "(MSG_SIZE_TOO_LARGE)" in str(refused.value)
