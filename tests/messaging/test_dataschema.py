"""CloudEvents ``dataschema`` on the relay's messages: the registered schema's URI,
read by the official SDK and by chronik's consumers; resolved once per (type, version)."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from cloudevents.v1.kafka import KafkaMessage, from_binary, from_structured
from support.kafka import consume, relay_options

from eventstore import Event, NewEvent, PostgresEventStore, RawEvent, SchemaRecord, schema_uri
from messaging import CloudEventMode, Relay, decode
from messaging._inbound import decode as decode_inbound
from messaging._schema_wire import SchemaWire


class Opened(Event):
    event_type: ClassVar[str] = "wire.Opened"
    owner: str


class Deposited(Event):
    event_type: ClassVar[str] = "wire.Deposited"
    event_version: ClassVar[int] = 2
    cents: int


def sdk(message: Any) -> KafkaMessage:
    return KafkaMessage(dict(message.headers), message.key, message.value)


async def test_binary_messages_name_the_registered_schema(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    stream = f"acct-{uuid.uuid4().hex[:8]}"
    # Typed appends register their classes' schemas; the fixture's seed events are
    # raw dicts of a type nobody registered.
    await relay_store.append(stream, [Opened(owner="ann"), Deposited(cents=5)])
    await relay_store.append(stream, [NewEvent("wire.Unregistered", {"x": 1})])
    await Relay(relay_store, kafka_bootstrap, relay_options(prefix)).publish_pending()

    messages = consume(kafka_bootstrap, [prefix + "acct", prefix + "seed"])
    found = {}
    for message in messages:
        parsed = from_binary(sdk(message))
        event = decode(message.headers, message.value, message.key)
        inbound = decode_inbound(
            message.topic, message.partition, message.offset, message.key, message.value,
            message.headers,
        )  # fmt: skip
        assert event.dataschema == parsed.get("dataschema")
        assert inbound.event.data == parsed.get_data()
        found[parsed["type"]] = parsed.get("dataschema")
    assert found == {
        "wire.Opened": "urn:chronik:schema:wire.Opened:1",
        "wire.Deposited": "urn:chronik:schema:wire.Deposited:2",
        "wire.Unregistered": None,
        "seed.Planted": None,
    }


async def test_structured_messages_with_a_base_url(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    base = "https://schemas.example.com/bank/"
    await relay_store.append(f"acct-{uuid.uuid4().hex[:8]}", [Opened(owner="bo")])
    options = relay_options(prefix, mode=CloudEventMode.STRUCTURED, schema_base_url=base)
    await Relay(relay_store, kafka_bootstrap, options).publish_pending()
    [message] = consume(kafka_bootstrap, [prefix + "acct"])
    parsed = from_structured(sdk(message))
    assert parsed["dataschema"] == schema_uri("wire.Opened", 1, base=base)
    assert parsed["dataschema"] == "https://schemas.example.com/bank/wire.Opened/v1.json"
    assert decode(message.headers, message.value).dataschema == parsed["dataschema"]


async def test_a_type_registered_while_the_relay_runs_gets_its_dataschema(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    relay = Relay(relay_store, kafka_bootstrap, relay_options(prefix))
    stream = f"acct-{uuid.uuid4().hex[:8]}"
    await relay_store.append(stream, [Opened(owner="cy")])
    await relay.publish_pending()
    # A newer deploy writes a type the relay has not seen: the same relay object
    # (its caches warm) must look it up rather than publish it without.
    await relay_store.append(stream, [Deposited(cents=1)])
    await relay.publish_pending()
    schemas = [m.header("ce_dataschema") for m in consume(kafka_bootstrap, [prefix + "acct"])]
    assert schemas == ["urn:chronik:schema:wire.Opened:1", "urn:chronik:schema:wire.Deposited:2"]


async def test_dataschema_can_be_turned_off(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    await relay_store.append(f"acct-{uuid.uuid4().hex[:8]}", [Opened(owner="di")])
    relay = Relay(relay_store, kafka_bootstrap, relay_options(prefix, dataschema=False))
    assert relay.encoder.wire is None
    await relay.publish_pending()
    [message] = consume(kafka_bootstrap, [prefix + "acct"])
    assert message.header("ce_dataschema") is None
    assert message.header("ce_type") == "wire.Opened"


def row(event_type: str, version: int, n: int) -> RawEvent:
    from datetime import UTC, datetime

    return RawEvent(
        f"acct-{n}", 1, 1, n, str(uuid.uuid4()), event_type, version, b"{}", b"{}",
        datetime.now(UTC),
    )  # fmt: skip


async def test_the_registry_is_read_once_per_new_type_not_per_batch() -> None:
    calls = []
    records = [SchemaRecord.of(Opened), SchemaRecord.of(Deposited)]

    async def list_schemas() -> list[SchemaRecord]:
        calls.append(1)
        return records

    wire = SchemaWire(list_schemas, base_url="https://s.example")
    batch = [row("wire.Opened", 1, n) for n in range(500)]
    for _ in range(5):
        await wire.prepare(batch, lambda r: "t")
    assert len(calls) == 1
    headers: list[tuple[str, bytes]] = []
    assert wire.apply(headers, "t", "wire.Opened", 1, b"{}") == b"{}"
    assert headers == [("ce_dataschema", b"https://s.example/wire.Opened/v1.json")]

    # A type never registered is remembered as such (no query per batch) ...
    unknown = [row("wire.Other", 1, 1)]
    await wire.prepare(unknown, lambda r: "t")
    await wire.prepare(unknown, lambda r: "t")
    assert len(calls) == 2
    headers = []
    wire.apply(headers, "t", "wire.Other", 1, b"{}")
    assert headers == []
    # ... and looked up again once the recheck interval has passed.
    wire.recheck_seconds = 0
    records.append(SchemaRecord("wire.Other", 1, {"type": "object"}, "f"))
    await wire.prepare(unknown, lambda r: "t")
    assert len(calls) == 3
    assert wire.uri("wire.Other", 1) == "https://s.example/wire.Other/v1.json"
