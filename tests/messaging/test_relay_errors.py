"""Bad input and an absent broker: one clear error naming event and topic, checkpoint unmoved."""

from __future__ import annotations

import uuid

import pytest
from support.kafka import consume, relay_options

from eventstore import START, NewEvent, PostgresEventStore
from messaging import (
    BrokerUnavailableError,
    PublishError,
    Relay,
    TopicMapping,
    TopicMappingError,
    relay_status,
)


async def append_one(store: PostgresEventStore, data: dict[str, object]) -> str:
    result = await store.append(f"ledger-{uuid.uuid4().hex[:8]}", [NewEvent("x.Big", data)])
    async for event in store.read_stream(result.stream_id):
        return str(event.event_id)
    raise AssertionError("not appended")


async def assert_unmoved(store: PostgresEventStore, message: str) -> None:
    [status] = await relay_status(store, "test")
    assert status.checkpoint == START
    assert status.published_events == 0
    assert status.last_error is not None and message in status.last_error


async def test_a_message_over_the_size_limit(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    event_id = await append_one(relay_store, {"blob": "x" * 5000})
    relay = Relay(
        relay_store,
        kafka_bootstrap,
        relay_options(prefix, max_message_bytes=4000),
    )
    with pytest.raises(PublishError) as caught:
        await relay.publish_pending()
    text = str(caught.value)
    assert "\n" not in text
    assert event_id in text and f"'{prefix}ledger'" in text and "too large" in text
    await assert_unmoved(relay_store, event_id)


async def test_a_bad_topic_from_the_mapping(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    event_id = await append_one(relay_store, {})
    topics = TopicMapping(function=lambda e: "seed" if e.stream_id == "seed-0" else "bad topic!")
    relay = Relay(relay_store, kafka_bootstrap, relay_options(prefix, topics=topics))
    with pytest.raises(TopicMappingError, match=rf"event {event_id} .*'bad topic!'"):
        await relay.publish_pending()
    await assert_unmoved(relay_store, event_id)
    with pytest.raises(TopicMappingError, match="aggregate type 'ledger'"):
        TopicMapping(mapping={"ledger": "no spaces allowed"})


async def test_an_unknown_topic_with_auto_create_off(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    event_id = await append_one(relay_store, {})
    relay = Relay(
        relay_store,
        kafka_bootstrap,
        relay_options(
            prefix,
            producer_config={
                "allow.auto.create.topics": False,
                "topic.metadata.propagation.max.ms": 500,
            },
            topics=TopicMapping(prefix=prefix, default=prefix + "all"),
        ),
    )
    with pytest.raises(PublishError, match=r"to topic '.*'.*[Uu]nknown topic") as caught:
        await relay.publish_pending()
    assert "event " in str(caught.value)
    [status] = await relay_status(relay_store, "test")
    assert status.checkpoint == START
    assert consume(kafka_bootstrap, [prefix + "seed", prefix + "ledger"]) == []
    del event_id


async def test_an_unreachable_broker(relay_store: PostgresEventStore, prefix: str) -> None:
    relay = Relay(relay_store, "127.0.0.1:9", relay_options(prefix, delivery_timeout=1.0))
    with pytest.raises(BrokerUnavailableError, match=rf"event .*seed-0.* to topic '{prefix}seed'"):
        await relay.publish_pending()
    await assert_unmoved(relay_store, "seed-0")
