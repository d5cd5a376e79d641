"""Kafka messages back into events: the consumers' decoder is the relay's inverse.

Pure (no broker): whatever the relay encodes, in either CloudEvents mode, decodes
to the event as stored; retried copies keep their first home; what is not a
chronik event is a ``BadMessageError`` naming the message.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore import Position, RecordedEvent
from messaging import BadMessageError, CloudEventMode, encode_event
from messaging._inbound import ATTEMPTS, ORIGINAL_OFFSET, ORIGINAL_PARTITION, ORIGINAL_TOPIC
from messaging._inbound import decode as decode_inbound

TRACE = st.fixed_dictionaries(
    {},
    optional={
        "correlation_id": st.uuids().map(str),
        "causation_id": st.uuids().map(str),
        "traceparent": st.just("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    },
)
JSON_VALUES = st.one_of(st.integers(-(2**53), 2**53), st.text(max_size=20), st.booleans())


@st.composite
def recorded(draw: st.DrawFn) -> RecordedEvent:
    moment = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(microseconds=draw(st.integers(0, 10**15)))
    return RecordedEvent(
        stream_id=draw(st.text(st.characters(codec="utf-8"), min_size=1, max_size=30)),
        version=draw(st.integers(1, 2**40)),
        position=Position(draw(st.integers(1, 2**40)), draw(st.integers(0, 2**20))),
        event_id=draw(st.uuids()),
        type=draw(st.from_regex(r"[a-z]{1,8}\.[A-Z][a-z]{0,8}", fullmatch=True)),
        schema_version=draw(st.integers(1, 9)),
        data=draw(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4)),
        metadata=draw(TRACE),
        recorded_at=moment,
    )


@settings(max_examples=150, deadline=None)
@given(event=recorded(), mode=st.sampled_from(CloudEventMode), offset=st.integers(0, 2**40))
def test_what_the_relay_encodes_decodes_to_the_stored_event(
    event: RecordedEvent, mode: CloudEventMode, offset: int
) -> None:
    record = encode_event(event, "bank.account", "test", mode)
    inbound = decode_inbound("bank.account", 3, offset, record.key, record.value, record.headers)
    assert inbound.event == event
    assert (inbound.topic, inbound.partition, inbound.offset) == ("bank.account", 3, offset)
    assert (inbound.origin.topic, inbound.origin.offset, inbound.origin.attempts) == (
        "bank.account",
        offset,
        0,
    )


def _event() -> RecordedEvent:
    return RecordedEvent(
        "acct-1", 2, Position(7, 1), uuid.uuid4(), "bank.Deposited", 1, {"amount": 5}, {},
        datetime(2024, 5, 1, tzinfo=UTC),
    )  # fmt: skip


def test_a_retried_copy_keeps_its_first_home_and_attempts() -> None:
    record = encode_event(_event(), "bank", "test")
    headers = [
        *record.headers,
        (ATTEMPTS, b"4"),
        (ORIGINAL_TOPIC, b"bank"),
        (ORIGINAL_PARTITION, b"1"),
        (ORIGINAL_OFFSET, b"99"),
    ]
    inbound = decode_inbound("bank.retry.1", 0, 5, record.key, record.value, headers)
    assert inbound.origin.topic == "bank"
    assert (inbound.origin.partition, inbound.origin.offset, inbound.origin.attempts) == (1, 99, 4)
    assert inbound.event == _event()._replace(event_id=inbound.event.event_id)


def test_the_last_header_value_wins_and_header_names_ignore_case() -> None:
    event = _event()
    record = encode_event(event, "bank", "test")
    headers = [
        (name, value) if name != "content-type" else ("Content-Type", value)
        for name, value in record.headers
    ]
    headers.append(("ce_chronikversion", b"9"))
    inbound = decode_inbound("bank", 0, 1, record.key, record.value, headers)
    assert inbound.event == event._replace(version=9)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ce_id": b"not-a-uuid"}, "is not a UUID"),
        ({"ce_chronikversion": b"x"}, "stream version 'x' is not an integer"),
        ({"ce_type": b"\xff"}, "not a CloudEvent"),
    ],
)
def test_a_broken_message_is_a_bad_message_naming_it(change: dict[str, bytes], reason: str) -> None:
    record = encode_event(_event(), "bank", "test")
    headers = [(name, change.get(name, value)) for name, value in record.headers]
    with pytest.raises(BadMessageError, match=reason) as caught:
        decode_inbound("bank", 2, 41, record.key, record.value, headers)
    assert "bank" in str(caught.value) and "41" in str(caught.value)


def test_a_value_that_is_not_json_is_a_bad_message() -> None:
    record = encode_event(_event(), "bank", "test")
    with pytest.raises(BadMessageError, match="not JSON"):
        decode_inbound("bank", 0, 3, record.key, b"{oops", record.headers)


def test_text_headers_and_empty_values_decode_like_bytes() -> None:
    """Headers given as a mapping of text (a test double, another client) and a header
    without a value (which is no value: it hides nothing sent before it)."""
    event = _event()
    record = encode_event(event, "bank", "test")
    as_text = {name: value.decode() for name, value in record.headers}
    assert decode_inbound("bank", 0, 1, record.key, record.value, as_text).event == event
    with_empty = [*record.headers, ("ce_chronikversion", None)]
    assert decode_inbound("bank", 0, 1, record.key, record.value, with_empty).event == event


def test_data_only_the_standard_json_reader_accepts_still_decodes() -> None:
    """NaN is not JSON, but Python's encoder writes it; the fast reader refuses it and
    the standard one takes over rather than dead-lettering the event."""
    record = encode_event(_event(), "bank", "test")
    value = b'{"amount": NaN}'
    inbound = decode_inbound("bank", 0, 1, record.key, value, record.headers)
    assert inbound.event.data["amount"] != inbound.event.data["amount"]  # NaN


@settings(max_examples=300, deadline=None)
@given(
    event_id=st.uuids(),
    text=st.text("0123456789abcdefABCDEF-_+x {}g", min_size=36, max_size=36),
)
def test_event_ids_read_from_bytes_are_what_uuid_reads(event_id: uuid.UUID, text: str) -> None:
    """The decoder builds canonical ids without ``UUID()``; the result must be the same
    UUID (equal, same text, same hash), and any other 36-character form is left to
    ``UUID()``, whose verdict (a UUID or an error) the message then gets."""
    record = encode_event(_event()._replace(event_id=event_id), "bank", "test")
    found = decode_inbound("bank", 0, 1, record.key, record.value, record.headers).event.event_id
    assert (found, str(found), hash(found)) == (event_id, str(event_id), hash(event_id))
    headers = [(n, text.encode() if n == "ce_id" else v) for n, v in record.headers]
    try:
        expected: uuid.UUID | None = uuid.UUID(text)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(BadMessageError, match="is not a UUID"):
            decode_inbound("bank", 0, 1, record.key, record.value, headers)
    else:
        decoded = decode_inbound("bank", 0, 1, record.key, record.value, headers).event.event_id
        assert (decoded, str(decoded)) == (expected, str(expected))
