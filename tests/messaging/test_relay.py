"""The relay against a real Kafka protocol: every event once, in order per key."""

from __future__ import annotations

import uuid
from collections import defaultdict

from cloudevents.v1.kafka import KafkaMessage, from_binary
from support.kafka import consume, relay_options, until_true
from support.projection_runs import feed_shows, last_committed

from eventstore import NewEvent, PostgresEventStore
from messaging import Relay, decode, relay_status


async def test_publishes_every_event_once_in_stream_order(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    streams = [f"ledger-{uuid.uuid4().hex[:6]}" for _ in range(5)] + [
        f"order-{uuid.uuid4().hex[:6]}" for _ in range(3)
    ]
    for round_ in range(4):
        for stream in streams:
            await relay_store.append(
                stream, [NewEvent("x.Happened", {"round": round_, "i": i}) for i in range(3)]
            )
    # publish_pending sends what the feed shows now: wait until it shows every event
    # (a transaction open anywhere on the server holds the feed's head back).
    through = await last_committed(relay_store)
    await until_true(lambda: feed_shows(relay_store, through))
    relay = Relay(relay_store, kafka_bootstrap, relay_options(prefix, batch_size=7))
    checkpoint = await relay.publish_pending()
    assert checkpoint.events == through

    messages = consume(kafka_bootstrap, [prefix + "ledger", prefix + "order", prefix + "seed"])
    by_key: dict[str, list[int]] = defaultdict(list)
    for message in messages:
        event = decode(message.headers, message.value, message.key)
        sdk = from_binary(KafkaMessage(dict(message.headers), message.key, message.value))
        assert sdk["id"] == event.id
        assert message.topic == prefix + event.subject.split("-")[0]  # type: ignore[union-attr]
        by_key[message.key.decode()].append(event.stream_version)  # type: ignore[union-attr, arg-type]
    assert set(by_key) == {*streams, "seed-0"}
    for stream in streams:
        assert by_key[stream] == list(range(1, 13)), stream
    assert by_key["seed-0"] == list(range(1, 21))

    [status] = await relay_status(relay_store, "test")
    assert status.lag_events == 0
    assert status.published_events == len(streams) * 12 + 20
    assert status.checkpoint == checkpoint.events


async def test_a_second_pass_publishes_only_new_events(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    relay = Relay(relay_store, kafka_bootstrap, relay_options(prefix))
    await relay.publish_pending()
    await relay_store.append("ledger-late", [NewEvent("x.Late", {})])
    [status] = await relay_status(relay_store, "test")
    assert status.lag_events == 1
    await Relay(relay_store, kafka_bootstrap, relay_options(prefix)).publish_pending()
    seed = consume(kafka_bootstrap, [prefix + "seed"])
    late = consume(kafka_bootstrap, [prefix + "ledger"])
    assert len(seed) == 20
    assert [m.key for m in late] == [b"ledger-late"]
