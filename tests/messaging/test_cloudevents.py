"""The wire format against the official CloudEvents SDK, both directions."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.v1.http import CloudEvent as SdkEvent
from cloudevents.v1.kafka import (
    KafkaMessage,
    from_binary,
    from_structured,
    to_binary,
    to_structured,
)
from hypothesis import given
from hypothesis import strategies as st

from eventstore import Position, RecordedEvent
from messaging import CloudEventFormatError, CloudEventMode, decode, encode_event

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def recorded(data: dict[str, Any], metadata: dict[str, Any] | None = None) -> RecordedEvent:
    return RecordedEvent(
        stream_id="ledger-älice",
        version=7,
        position=Position(1234, 56),
        event_id=uuid.uuid4(),
        type="ledger.Deposited",
        schema_version=2,
        data=data,
        metadata=metadata or {},
        recorded_at=datetime(2026, 5, 1, 12, 30, 1, 123456, tzinfo=UTC),
    )


def sdk_message(record: Any) -> KafkaMessage:
    return KafkaMessage(dict(record.headers), record.key, record.value)


@given(data=st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_binary_mode_parses_with_the_sdk(data: dict[str, Any]) -> None:
    event = recorded(
        data,
        {"correlation_id": "corr-1", "causationId": "cause-2", "traceparent": "00-ab-cd-01"},
    )
    record = encode_event(event, "chronik.ledger", "chronik/test")
    parsed = from_binary(sdk_message(record))
    assert parsed["id"] == str(event.event_id)
    assert parsed["type"] == "ledger.Deposited"
    assert parsed["source"] == "chronik/test"
    assert parsed["specversion"] == "1.0"
    assert parsed["subject"] == "ledger-älice"
    assert datetime.fromisoformat(parsed["time"]) == event.recorded_at
    assert parsed["datacontenttype"] == "application/json"
    assert parsed["chronikversion"] == "7"
    assert parsed["chronikschema"] == "2"
    assert parsed["chronikposition"] == "1234:56"
    assert parsed["correlationid"] == "corr-1"
    assert parsed["causationid"] == "cause-2"
    assert parsed["traceparent"] == "00-ab-cd-01"
    assert parsed.get_data() == data
    assert record.key == "ledger-älice".encode()
    assert ("traceparent", b"00-ab-cd-01") in record.headers


@given(data=st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_structured_mode_parses_with_the_sdk(data: dict[str, Any]) -> None:
    event = recorded(data)
    record = encode_event(event, "chronik.ledger", "chronik/test", CloudEventMode.STRUCTURED)
    parsed = from_structured(sdk_message(record))
    assert parsed["id"] == str(event.event_id)
    assert parsed["subject"] == event.stream_id
    assert parsed["chronikposition"] == "1234:56"
    assert parsed.get_data() == data
    assert dict(record.headers)["content-type"] == b"application/cloudevents+json"


@pytest.mark.parametrize("mode", list(CloudEventMode))
def test_decode_inverts_encode(mode: CloudEventMode) -> None:
    event = recorded({"amount": "10.00", "note": "naïve ✓"}, {"correlation_id": "c"})
    record = encode_event(event, "chronik.ledger", "chronik/test", mode)
    decoded = decode(record.headers, record.value, record.key)
    assert decoded.id == str(event.event_id)
    assert decoded.type == event.type
    assert decoded.subject == event.stream_id
    assert decoded.key == event.stream_id
    assert decoded.data == event.data
    assert decoded.stream_version == 7
    assert decoded.position == "1234:56"
    assert decoded.extensions["correlationid"] == "c"


@pytest.mark.parametrize("encoder", [to_binary, to_structured])
def test_decode_reads_what_the_sdk_writes(encoder: Any) -> None:
    sdk_event = SdkEvent(
        {
            "id": "e-1",
            "source": "elsewhere",
            "type": "other.Happened",
            "subject": "thing-1",
            "datacontenttype": "application/json",
            "partitionkey": "thing-1",
            "traceparent": "00-11-22-01",
        },
        {"n": 1},
    )
    message = encoder(sdk_event)
    headers = [(name, value) for name, value in message.headers.items()]
    decoded = decode(headers, message.value, message.key.encode())
    assert (decoded.id, decoded.source, decoded.type) == ("e-1", "elsewhere", "other.Happened")
    assert decoded.subject == "thing-1"
    assert decoded.data == {"n": 1}
    assert decoded.extensions["traceparent"] == "00-11-22-01"


def test_decode_names_what_is_wrong() -> None:
    with pytest.raises(CloudEventFormatError, match=r"orders\[2\]@9.*missing attribute\(s\) id"):
        decode(
            [("ce_specversion", b"1.0"), ("ce_source", b"s"), ("ce_type", b"t")],
            b"{}",
            where="orders[2]@9",
        )
    with pytest.raises(CloudEventFormatError, match="not JSON"):
        decode([("content-type", b"application/cloudevents+json")], b"{nope", where="x")
    with pytest.raises(CloudEventFormatError, match="specversion"):
        body = json.dumps({"specversion": "0.3", "id": "1", "source": "s", "type": "t"})
        decode([("content-type", b"application/cloudevents+json")], body.encode())
