"""The relay with a Confluent Schema Registry, against a replayed HTTP exchange.

Confluent's wire format (what ``confluent_kafka.schema_registry``'s serde reads in
``SchemaId.from_bytes``): magic byte 0, the schema id as 4 bytes big-endian,
then the payload; for JSON Schema the payload is the JSON text itself.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.kafka import consume, relay_options, until_true
from support.projection_runs import last_committed
from support.schema_registry import RECORDED, ReplayRegistry, recorded

from eventstore import (
    START,
    NewEvent,
    Position,
    PostgresEventStore,
    RecordedEvent,
    SchemaRecord,
    schema_fingerprint,
)
from messaging import (
    CloudEventMode,
    ConfluentRegistryError,
    Relay,
    RelayPhase,
    SchemaRegistryOptions,
    SchemaWireError,
    SubjectStrategy,
    decode,
    encode_event,
    relay_status,
)
from messaging._confluent import ConfluentRegistryClient, frame, unframe
from messaging._inbound import decode as decode_inbound

SCHEMAS: dict[str, dict[str, Any]] = json.loads(RECORDED.read_text())["schemas"]


async def register_schemas(store: PostgresEventStore) -> None:
    records = []
    for key, schema in SCHEMAS.items():
        event_type, version = key.split(":")
        records.append(SchemaRecord(event_type, int(version), schema, schema_fingerprint(schema)))
    await store.schemas.register(records)


async def append_accounts(store: PostgresEventStore) -> str:
    stream = f"acct-{uuid.uuid4().hex[:8]}"
    await store.append(
        stream,
        [
            NewEvent("wire.Opened", {"owner": "ann"}),
            NewEvent("wire.Deposited", {"cents": 5}, schema_version=2),
            NewEvent("wire.Deposited", {"cents": 7}, schema_version=2),
        ],
    )
    return stream


def registry(url: str, strategy: SubjectStrategy = SubjectStrategy.TOPIC) -> SchemaRegistryOptions:
    return SchemaRegistryOptions(url, subject_strategy=strategy, timeout=5.0)


def framed_id(value: bytes) -> tuple[int, bytes]:
    magic, schema_id = struct.unpack(">bI", value[:5])
    assert magic == 0
    return schema_id, value[5:]


async def test_values_are_framed_with_the_registered_ids(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    await register_schemas(relay_store)
    stream = await append_accounts(relay_store)
    with ReplayRegistry(recorded("record_strategy")).running() as server:
        url = server.url.replace("://", "://relay:s3cret@")
        # Two events per batch: the seed events come first, as recorded.
        options = relay_options(
            prefix, schema_registry=registry(url, SubjectStrategy.RECORD), batch_size=2
        )
        await Relay(relay_store, kafka_bootstrap, options).publish_pending()
    # Exactly the recorded requests, each subject once however many batches used it.
    assert server.received == server.expected_requests()

    ids = {"seed.Planted": 1, "wire.Deposited": 2, "wire.Opened": 3}
    messages = consume(kafka_bootstrap, [prefix + "acct", prefix + "seed"])
    assert len(messages) == 23
    for message in messages:
        assert message.value is not None
        schema_id, payload = framed_id(message.value)
        kind = message.header("ce_type")
        assert schema_id == ids[kind]  # type: ignore[index]
        assert message.header("confluent-schema-id") == str(schema_id)
        # chronik's consumers read the framing: the data is the JSON after it.
        event = decode(message.headers, message.value, message.key)
        inbound = decode_inbound(
            message.topic, message.partition, message.offset, message.key, message.value,
            message.headers,
        )  # fmt: skip
        assert event.data == inbound.event.data == json.loads(payload)
    data = [decode(m.headers, m.value).data for m in messages if m.key == stream.encode()]
    assert data == [{"owner": "ann"}, {"cents": 5}, {"cents": 7}]


async def test_an_incompatible_schema_stops_the_relay_before_anything_is_sent(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    await register_schemas(relay_store)
    await append_accounts(relay_store)
    with ReplayRegistry(recorded("topic_strategy_incompatible", prefix)).running() as server:
        options = relay_options(prefix, schema_registry=registry(server.url))
        with pytest.raises(ConfluentRegistryError) as caught:
            await Relay(relay_store, kafka_bootstrap, options).publish_pending()
    assert server.received == server.expected_requests()
    error = caught.value
    assert (error.status, error.error_code, error.subject) == (409, 409, f"{prefix}acct-value")
    assert "incompatible with an earlier schema" in str(error)
    # Nothing published, nothing skipped: the checkpoint has not moved.
    assert consume(kafka_bootstrap, [prefix + "acct", prefix + "seed"]) == []
    [status] = await relay_status(relay_store, "test")
    assert status.checkpoint == START
    assert status.last_error is not None and f"{prefix}acct-value" in status.last_error


async def test_an_unreachable_registry_leaves_the_relay_stuck_until_it_answers(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    await register_schemas(relay_store)
    await append_accounts(relay_store)
    with ReplayRegistry(recorded("record_strategy")).running() as server:
        server.down = True
        url = server.url.replace("://", "://relay:s3cret@")
        options = relay_options(
            prefix,
            schema_registry=registry(url, SubjectStrategy.RECORD),
            batch_size=2,  # the seed events first: the recorded order
            backoff_initial=0.05,
            backoff_max=0.2,
        )
        relay = Relay(relay_store, kafka_bootstrap, options)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        try:

            async def stuck() -> bool:
                return relay.state.phase is RelayPhase.STUCK and relay.state.restarts >= 2

            await until_true(stuck)
            [status] = await relay_status(relay_store, "test")
            assert status.checkpoint == START
            for text in (relay.state.last_error, status.last_error):
                assert text is not None and "cannot reach the schema registry" in text
                assert "relay:***@127.0.0.1" in text and "s3cret" not in text
            server.down = False
            head = await last_committed(relay_store)  # not the feed's head: see there

            async def caught_up() -> bool:
                return relay.state.checkpoint.events == head

            await until_true(caught_up)
        finally:
            stop.set()
            await task
    assert server.dropped >= 2
    assert server.received == server.expected_requests()
    messages = consume(kafka_bootstrap, [prefix + "acct", prefix + "seed"])
    assert len(messages) == 23
    assert all(m.value is not None and m.value[0] == 0 for m in messages)


async def test_an_event_without_a_registered_schema_is_not_published_unframed(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    # The fixture's seed events have no schema in the event store's registry.
    with ReplayRegistry(recorded("topic_strategy_seed", prefix)).running() as server:
        options = relay_options(prefix, schema_registry=registry(server.url))
        relay = Relay(relay_store, kafka_bootstrap, options)
        with pytest.raises(SchemaWireError, match=r"seed\.Planted v1 .*chronik schemas register"):
            await relay.publish_pending()
        assert server.received == []
        assert consume(kafka_bootstrap, [prefix + "seed"]) == []
        # Registered since (a deploy ran 'chronik schemas register'): the next try works.
        await register_schemas(relay_store)
        await relay.publish_pending()
    assert server.received == server.expected_requests()
    messages = consume(kafka_bootstrap, [prefix + "seed"])
    assert [framed_id(m.value or b"")[0] for m in messages] == [21] * 20


async def test_the_client_reports_an_invalid_schema_and_a_refused_connection(prefix: str) -> None:
    [pair] = recorded("invalid_schema", prefix)
    with ReplayRegistry([pair]).running() as server:
        client = ConfluentRegistryClient(registry(server.url))
        with pytest.raises(ConfluentRegistryError) as caught:
            await client.register(f"{prefix}acct-value", pair["request"]["body"]["schema"])
    assert server.received == [pair["request"]]
    assert (caught.value.status, caught.value.error_code) == (422, 42201)
    assert "HTTP 422 (error code 42201): Invalid schema" in str(caught.value)

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ConfluentRegistryClient(registry(f"https://u:pw@127.0.0.1:{port}"))
    with pytest.raises(ConfluentRegistryError, match="cannot reach") as refused:
        await client.register("s", "{}")
    assert refused.value.status is None and "u:***@" in str(refused.value)
    assert "u:pw@" not in str(refused.value)


async def test_structured_mode_cannot_promise_the_framing(relay_store: PostgresEventStore) -> None:
    options = relay_options(
        "x.", mode=CloudEventMode.STRUCTURED, schema_registry=registry("http://localhost:8081")
    )
    with pytest.raises(ValueError, match="binary mode"):
        Relay(relay_store, "localhost:9092", options)


def test_options_refuse_a_url_that_is_not_http() -> None:
    with pytest.raises(ValueError, match=r"file:///etc/passwd.*http"):
        SchemaRegistryOptions("file:///etc/passwd")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    data=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    schema_id=st.integers(0, 2**32 - 1),
)
def test_framed_and_plain_values_decode_to_the_same_event(
    data: dict[str, Any], schema_id: int
) -> None:
    event = RecordedEvent(
        "acct-1", 3, Position(9, 2), uuid.uuid4(), "wire.Opened", 1, data, {},
        datetime(2026, 1, 2, tzinfo=UTC),
    )  # fmt: skip
    plain = encode_event(event, "t", "chronik/test")
    framed = frame(schema_id) + plain.value
    assert unframe(framed) == (schema_id, plain.value)
    assert unframe(plain.value) is None  # JSON never starts with the magic byte
    assert decode(plain.headers, framed).data == decode(plain.headers, plain.value).data == data
    inbound = decode_inbound("t", 0, 0, plain.key, framed, plain.headers)
    assert inbound.event == decode_inbound("t", 0, 0, plain.key, plain.value, plain.headers).event
