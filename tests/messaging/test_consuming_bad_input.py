"""Bad input to the consuming side (delivery policy, consumer construction): a
``MessagingConfigError`` naming the field and the value, raised before anything is
read, and still a ``ValueError`` for callers that catch that."""

from __future__ import annotations

import asyncio
import functools
import math

import pytest

from aggregates import build_codec
from aggregates.ledger import Ledger
from eventstore import Event, EventCodec
from messaging import (
    ConsumerOptions,
    DeliveryPolicy,
    HandlerConsumer,
    HandlerContext,
    KafkaProjection,
    MessagingConfigError,
    check_consumer,
    consume,
    consumer_lag,
)
from projections.shipped import LEDGER_BALANCES

POLICIES: list[tuple[dict[str, object], str]] = [
    ({"attempts": 0}, "attempts must be an int >= 1, not 0"),
    ({"attempts": True}, "attempts must be an int >= 1, not True"),
    ({"attempts": 2.0}, "attempts must be an int >= 1, not 2.0"),
    ({"retry_topics": -1}, "retry_topics must be an int >= 0, not -1"),
    ({"retry_topics": False}, "retry_topics must be an int >= 0, not False"),
    ({"initial_delay": -0.1}, "initial_delay must be finite seconds >= 0, not -0.1"),
    # NaN compares false with everything: min() in backoff() used to let it through.
    ({"initial_delay": math.nan}, "initial_delay must be finite seconds >= 0, not nan"),
    ({"max_delay": math.inf}, "max_delay must be finite seconds >= 0, not inf"),
    ({"retry_delay": -math.inf}, "retry_delay must be finite seconds >= 0, not -inf"),
    ({"retry_delay": "1"}, "retry_delay must be finite seconds >= 0, not '1'"),
    ({"max_delay": True}, "max_delay must be finite seconds >= 0, not True"),
]


@pytest.mark.parametrize(
    ("settings", "says"),
    POLICIES,
    ids=[f"{next(iter(s))}={s[next(iter(s))]!r}" for s, _ in POLICIES],
)
def test_a_delivery_policy_refuses_what_it_cannot_wait_or_count(
    settings: dict[str, object], says: str
) -> None:
    with pytest.raises(MessagingConfigError) as raised:
        DeliveryPolicy(**settings)  # type: ignore[arg-type]
    assert says in str(raised.value)
    assert str(raised.value).startswith("delivery policy: ")
    assert isinstance(raised.value, ValueError)


def test_a_delivery_policy_takes_zero_delays_and_int_seconds() -> None:
    policy = DeliveryPolicy(attempts=1, initial_delay=0, max_delay=3, retry_topics=0, retry_delay=0)
    assert policy.backoff(1) == 0.0 and policy.topics_for(["a"]) == []


OPTIONS: list[tuple[dict[str, object], str]] = [
    ({"batch_size": 0}, "batch_size must be an int >= 1, not 0"),
    ({"batch_size": True}, "batch_size must be an int >= 1, not True"),
    ({"poll_timeout": 0}, "poll_timeout must be finite seconds > 0, not 0"),
    ({"poll_timeout": math.nan}, "poll_timeout must be finite seconds > 0, not nan"),
    ({"session_timeout_ms": 0}, "session_timeout_ms must be an int >= 1, not 0"),
    ({"heartbeat_interval_ms": 10_000}, "heartbeat_interval_ms must be below session_timeout_ms"),
    ({"config": [("client.id", "x")]}, "config must map librdkafka setting names"),
    ({"config": {"enable.auto.commit": True}}, "'enable.auto.commit' (offsets are committed"),
    ({"config": {"auto.offset.reset": "earliest"}}, "'auto.offset.reset' (use start= and"),
    ({"config": {"isolation.level": "read_uncommitted"}}, "'isolation.level' (read_committed"),
    ({"config": {"group.id": "other"}}, "'group.id' (the consumer's group argument)"),
    ({"start": "beginning"}, "start must be 'earliest' or 'latest', not 'beginning'"),
    ({"offset_gap": "skip"}, "offset_gap must be 'stop' or 'resume', not 'skip'"),
    ({"on_offset_gap": "alert"}, "on_offset_gap must be callable or None, not 'alert'"),
]


@pytest.mark.parametrize(
    ("settings", "says"), OPTIONS, ids=[f"{next(iter(s))}={s[next(iter(s))]!r}" for s, _ in OPTIONS]
)
def test_consumer_options_are_checked_when_made(settings: dict[str, object], says: str) -> None:
    with pytest.raises(MessagingConfigError) as raised:
        ConsumerOptions(**settings)  # type: ignore[arg-type]
    assert says in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_consumer_options_name_every_owned_setting_and_take_the_rest() -> None:
    owned = {"session.timeout.ms": 1, "heartbeat.interval.ms": 1, "client.id": "me"}
    with pytest.raises(MessagingConfigError) as raised:
        ConsumerOptions(config=owned)
    said = str(raised.value)
    assert "'heartbeat.interval.ms' (use heartbeat_interval_ms=)" in said
    assert "'session.timeout.ms' (use session_timeout_ms=)" in said
    assert "client.id" not in said
    security = {"client.id": "me", "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}
    assert ConsumerOptions(config=security).config == security


async def _handle(event: Event, context: HandlerContext) -> None:
    return None


def _sync_handle(event: Event, context: HandlerContext) -> None:
    return None


class _SyncCall:
    def __call__(self, event: Event, context: HandlerContext) -> None:
        return None


class _AsyncCall:
    async def __call__(self, event: Event, context: HandlerContext) -> None:
        return None


def _handlers() -> HandlerConsumer:
    return HandlerConsumer("mailer", _handle, EventCodec())


CONSUME: list[tuple[dict[str, object], str]] = [
    # librdkafka refuses these only when the member starts, inside the restart loop:
    # the call used to log "failed; restarting" forever.
    ({"group": ""}, "consumer group '': a group id is a non-blank string"),
    ({"group": " "}, "consumer group ' ': a group id is a non-blank string"),
    ({"group": "a\nb"}, "printable characters"),
    ({"group": 7}, "consumer group 7: a group id"),
    # An empty list subscribed to nothing and waited forever; a string was one topic
    # per character.
    ({"topics": []}, "topics is empty: name at least one topic"),
    ({"topics": "orders"}, "topics must be a list of topic names, not 'orders'"),
    ({"topics": ["orders", "orders"]}, "topic 'orders' is listed twice"),
    ({"topics": ["bad topic"]}, "topics: 'bad topic' is not a Kafka topic name"),
    ({"topics": ["orders.dlq"]}, "'orders.dlq' is a retry or dead-letter topic"),
    ({"topics": ["orders.retry.1"]}, "'orders.retry.1' is a retry or dead-letter topic"),
    ({"processor": object()}, "is not a consumer processor"),
    ({"policy": {"attempts": 2}}, "policy must be a DeliveryPolicy"),
    ({"options": {"batch_size": 5}}, "options must be a ConsumerOptions"),
    ({"restart_delay": math.inf}, "restart_delay must be finite seconds > 0, not inf"),
    ({"max_restart_delay": 0.1}, "max_restart_delay must be >= restart_delay (0.5), not 0.1"),
]


@pytest.mark.parametrize(
    ("changed", "says"), CONSUME, ids=[f"{next(iter(c))}={c[next(iter(c))]!r}" for c, _ in CONSUME]
)
async def test_consume_refuses_what_no_member_can_run_with(
    changed: dict[str, object], says: str
) -> None:
    arguments: dict[str, object] = {
        "processor": _handlers(),
        "bootstrap": "127.0.0.1:1",  # nothing listens: the checks come first
        "group": "mailer",
        "topics": ["orders"],
        "stop": asyncio.Event(),
        **changed,
    }
    # The deadline only guards against the old endless restart loop.
    with pytest.raises(MessagingConfigError) as raised:
        await asyncio.wait_for(consume(**arguments), timeout=60)  # type: ignore[arg-type]
    assert says in str(raised.value)


@pytest.mark.parametrize(
    ("handler", "says"),
    [
        # A plain def failed on every message ("can't be used in 'await'"), sending
        # each one through the retry topics to the DLQ.
        (_sync_handle, "the handler _sync_handle must be an async def"),
        (_SyncCall(), "the handler _SyncCall.__call__ must be an async def"),
        ("module:handle", "the handler must be callable, not 'module:handle'"),
    ],
    ids=["def", "sync __call__", "not callable"],
)
def test_a_handler_consumer_refuses_a_handler_it_cannot_await(handler: object, says: str) -> None:
    with pytest.raises(MessagingConfigError, match="handler consumer 'mailer'") as raised:
        HandlerConsumer("mailer", handler, EventCodec())  # type: ignore[arg-type]
    assert says in str(raised.value)


@pytest.mark.parametrize(
    "handler",
    [_handle, _AsyncCall(), functools.partial(_handle)],
    ids=["async def", "async __call__", "partial"],
)
def test_a_handler_consumer_takes_what_it_can_await(handler: object) -> None:
    assert HandlerConsumer("mailer", handler, EventCodec()).handler is handler  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"name": ""}, "handler consumer '': a group id is a non-blank string"),
        ({"codec": {}}, "codec must be an EventCodec, not {}"),
        ({"policy": 3}, "policy must be a DeliveryPolicy, not 3"),
    ],
    ids=["name", "codec", "policy"],
)
def test_a_handler_consumer_checks_its_other_arguments(
    arguments: dict[str, object], says: str
) -> None:
    settings = {"name": "mailer", "handler": _handle, "codec": EventCodec(), **arguments}
    with pytest.raises(MessagingConfigError) as raised:
        HandlerConsumer(**settings)  # type: ignore[arg-type]
    assert says in str(raised.value)


def test_a_kafka_projection_refuses_handlers_of_types_the_app_does_not_know() -> None:
    # Each such message was parked as an unknown type: the handler never ran.
    assert LEDGER_BALANCES.handled_types <= set(build_codec([Ledger]).event_classes)
    with pytest.raises(MessagingConfigError) as raised:
        KafkaProjection(LEDGER_BALANCES, None, known=EventCodec())  # type: ignore[arg-type]
    unknown = ", ".join(repr(t) for t in sorted(LEDGER_BALANCES.handled_types))
    assert str(raised.value) == (
        f"Kafka projection {LEDGER_BALANCES.name!r}: it handles event type(s) {unknown} "
        "that the app's codec (known=) has no class for"
    )


def test_a_kafka_projection_needs_a_projection() -> None:
    with pytest.raises(MessagingConfigError, match="projection must be a Projection, not 'x'"):
        KafkaProjection("x", None)  # type: ignore[arg-type]


async def test_consumer_lag_refuses_a_blank_group_but_reads_side_topics() -> None:
    with pytest.raises(MessagingConfigError, match="consumer group '': a group id"):
        await consumer_lag("127.0.0.1:1", "", ["orders.dlq"])
    assert check_consumer("g", ["orders.retry.1", "orders.dlq"], side_topics=True) == [
        "orders.retry.1",
        "orders.dlq",
    ]
