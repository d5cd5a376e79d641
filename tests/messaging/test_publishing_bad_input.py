"""Bad input to the publishing side (relay options, topic mapping, producer and
registry settings): a ``MessagingConfigError`` naming the option, raised before
anything is read or sent, and never retried by the relay as if it were an outage."""

from __future__ import annotations

import asyncio
import math
import uuid

import pytest
from support.kafka import relay_options

from eventstore import START, NewEvent, PostgresEventStore
from messaging import (
    CloudEventFormatError,
    MessagingConfigError,
    MockCluster,
    MockClusterError,
    Relay,
    RelayOptions,
    SchemaRegistryOptions,
    SchemaWireError,
    SubjectStrategy,
    TopicMapping,
    TopicMappingError,
    encode,
    producer_config,
    relay_status,
    schema_document,
)

RELAY_OPTIONS: list[tuple[dict[str, object], str]] = [
    ({"name": ""}, "relay '': a relay name is a non-empty string"),
    ({"name": "a\nb"}, "printable characters"),
    ({"batch_size": 0}, "batch_size must be >= 1, not 0"),
    ({"max_in_flight": -1}, "max_in_flight must be >= 1, not -1"),
    # librdkafka reads a zero message timeout as "never": no outage would be reported.
    ({"delivery_timeout": 0}, "delivery_timeout must be seconds > 0, not 0"),
    ({"delivery_timeout": math.nan}, "delivery_timeout must be seconds > 0, not nan"),
    ({"poll_interval": -1.0}, "poll_interval must be seconds > 0"),
    ({"backoff_initial": 2.0, "backoff_max": 1.0}, "backoff_max must be >= backoff_initial"),
    ({"checkpoint_topic": "relay checkpoints"}, "'relay checkpoints' is not a Kafka topic"),
    ({"mode": "binary"}, "mode must be a CloudEventMode, not 'binary'"),
    ({"topics": {"ledger": "ledgers"}}, "topics must be a TopicMapping"),
    ({"schema_registry": "http://registry:8081"}, "schema_registry must be SchemaRegistryOptions"),
    ({"max_message_bytes": 999}, "max_message_bytes must be an int from 1000 to 1000000000"),
    ({"max_message_bytes": True}, "max_message_bytes must be an int from 1000"),
    # A second limit for the producer alone could let publish() accept what it refuses.
    ({"producer_config": {"message.max.bytes": 5000}}, "set max_message_bytes rather than"),
]


@pytest.mark.parametrize(
    ("settings", "says"), RELAY_OPTIONS, ids=[next(iter(s)) for s, _ in RELAY_OPTIONS]
)
def test_relay_options_are_checked_when_made(settings: dict[str, object], says: str) -> None:
    with pytest.raises(MessagingConfigError) as raised:
        RelayOptions(**settings)  # type: ignore[arg-type]
    assert says in str(raised.value)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("role", ["prefix", "outbox_prefix"])
def test_a_topic_prefix_kafka_rejects_is_refused_by_the_mapping(role: str) -> None:
    with pytest.raises(TopicMappingError, match=f"the topic {role} 'orders/'"):
        TopicMapping(**{role: "orders/"})  # type: ignore[arg-type]


def test_a_zero_delivery_timeout_is_refused_for_every_producer() -> None:
    with pytest.raises(MessagingConfigError, match="delivery_timeout must be seconds > 0"):
        producer_config("127.0.0.1:9092", delivery_timeout=0)


@pytest.mark.parametrize(
    ("url", "options", "says"),
    [
        ("http://svc:hunter2@registry:99999", {}, "'http://svc:***@registry:99999' is malformed"),
        ("http://svc:hunter2@[::1", {}, "'http://svc:***@[::1' is malformed"),
        ("ftp://svc:hunter2@registry", {}, "is not an http(s):// URL"),
        ("http://registry:8081", {"timeout": 0}, "timeout must be seconds > 0, not 0"),
        ("http://registry:8081", {"subject_strategy": "by-topic"}, "unknown subject strategy"),
    ],
    ids=["port out of range", "unclosed bracket", "scheme", "zero timeout", "strategy"],
)
def test_schema_registry_options_are_checked_and_keep_the_password_out(
    url: str, options: dict[str, object], says: str
) -> None:
    with pytest.raises(MessagingConfigError) as raised:
        SchemaRegistryOptions(url, **options)  # type: ignore[arg-type]
    assert says in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_a_subject_strategy_given_by_its_name_is_taken() -> None:
    options = SchemaRegistryOptions("http://registry:8081", subject_strategy="record")  # type: ignore[arg-type]
    assert options.subject_strategy is SubjectStrategy.RECORD


async def test_a_producer_option_librdkafka_refuses_stops_the_relay_instead_of_retrying(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    await relay_store.append(f"ledger-{uuid.uuid4().hex[:8]}", [NewEvent("x.Opened", {})])
    options = relay_options(prefix, producer_config={"no.such.property": "1"})
    relay = Relay(relay_store, kafka_bootstrap, options)
    with pytest.raises(MessagingConfigError, match=r'No such configuration property: "no\.such'):
        await relay.publish_pending()
    # A leading relay used to take the refusal for an outage and retry it forever
    # ("stuck"); the deadline only guards against that hang.
    with pytest.raises(MessagingConfigError, match="refused its configuration"):
        await asyncio.wait_for(relay.run(asyncio.Event()), timeout=60)
    [status] = await relay_status(relay_store, "test")
    assert status.checkpoint == START and status.published_events == 0
    assert status.last_error is not None and "no.such.property" in status.last_error


async def test_relay_status_of_an_empty_name_is_an_empty_list(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    await Relay(relay_store, kafka_bootstrap, relay_options(prefix)).publish_pending()
    assert [s.name for s in await relay_status(relay_store)] == ["test"]
    # The empty name once left the WHERE clause's placeholder without its parameter.
    assert await relay_status(relay_store, "") == []


def test_encode_refuses_attributes_that_make_no_cloudevent() -> None:
    # Consumers would park such a message as undecodable; the producer is told instead.
    with pytest.raises(CloudEventFormatError, match="topic 'orders': attributes lack id, type"):
        encode("orders", b"k", {"specversion": "1.0", "source": "shop"}, {})


def test_a_mock_cluster_without_brokers_is_refused_at_once() -> None:
    # librdkafka starts nothing then: the caller used to wait out the whole timeout.
    with pytest.raises(MockClusterError, match="at least one broker, not 0"):
        MockCluster(0, timeout=30)


@pytest.mark.parametrize(
    ("event_type", "version", "says"),
    [("", 1, "an event type is a non-empty string"), ("shop.Paid", 0, "not 0")],
)
def test_schema_document_refuses_what_no_schema_uri_can_name(
    event_type: str, version: int, says: str
) -> None:
    with pytest.raises(SchemaWireError, match=says):
        schema_document(event_type, version, {"type": "object"})
