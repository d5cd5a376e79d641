"""Kafka messages back into events: CloudEvents (binary or structured) to envelopes.

The relay writes each event as a CloudEvent in the Kafka protocol binding: binary
mode puts the attributes in ``ce_*`` headers and the event data in the value;
structured mode puts the whole CloudEvent, data included, in a JSON value with
``content-type: application/cloudevents+json``.  Both decode to the same
``RecordedEvent`` as stored (old schema versions stay old: the consumer upcasts
through the app's codec), with the correlation and causation ids and the W3C trace
context put back into the metadata.  Anything else is a ``BadMessageError`` naming
the topic, partition and offset, which the consumer sends to the dead-letter topic.

This module is pure: no I/O, no client.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventstore import START, Position, RecordedEvent

from ._consume_errors import BadMessageError

STRUCTURED = "application/cloudevents+json"

# chronik's facts travel as CloudEvents extension attributes (the relay's names).
STREAM_VERSION = "chronikversion"
SCHEMA_VERSION = "chronikschema"
POSITION = "chronikposition"
#: Metadata keys restored from extension attributes (CloudEvents tracing included).
TRACE_KEYS = {
    "correlationid": "correlation_id",
    "causationid": "causation_id",
    "traceparent": "traceparent",
    "tracestate": "tracestate",
}

# Retry and dead-letter bookkeeping (documented in the README).
ATTEMPTS = "chronik_attempts"
ORIGINAL_TOPIC = "chronik_original_topic"
ORIGINAL_PARTITION = "chronik_original_partition"
ORIGINAL_OFFSET = "chronik_original_offset"
ERROR_TYPE = "chronik_error_type"
ERROR_MESSAGE = "chronik_error_message"
NOT_BEFORE = "chronik_not_before"
SOURCE_GROUP = "chronik_group"

Headers = Mapping[str, bytes | str | None] | Sequence[tuple[str, bytes | str | None]] | None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a message first arrived (a retried message keeps its first home)."""

    topic: str
    partition: int
    offset: int
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class Inbound:
    """One decoded Kafka message: the event as stored and where it came from."""

    event: RecordedEvent
    topic: str
    partition: int
    offset: int
    origin: Origin
    timestamp: datetime | None = None


def header_map(headers: Headers) -> dict[str, str]:
    """Kafka headers as text (the last value wins, as the CloudEvents binding says)."""
    result: dict[str, str] = {}
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for name, value in pairs:
        if value is None:
            continue
        result[name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return result


def origin_of(topic: str, partition: int, offset: int, headers: Mapping[str, str]) -> Origin:
    """The message's first topic/partition/offset and the attempts it has had."""
    try:
        attempts = int(headers.get(ATTEMPTS, "0"))
        if ORIGINAL_TOPIC in headers:
            return Origin(
                headers[ORIGINAL_TOPIC],
                int(headers[ORIGINAL_PARTITION]),
                int(headers[ORIGINAL_OFFSET]),
                attempts,
            )
    except (KeyError, ValueError):
        attempts = 0
    return Origin(topic, partition, offset, attempts)


def decode(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | str | None,
    value: bytes | str | None,
    headers: Headers,
    timestamp_ms: int | None = None,
) -> Inbound:
    """Decode one message; ``BadMessageError`` (naming the message) if it is not an event."""
    fields = header_map(headers)

    def bad(reason: str) -> BadMessageError:
        return BadMessageError(topic, partition, offset, reason)

    content_type = fields.get("content-type", fields.get("ce_datacontenttype", ""))
    if content_type.split(";")[0].strip() == STRUCTURED:
        attributes = _json_object(value, bad, "structured CloudEvent")
        data = attributes.get("data")
        if "data_base64" in attributes:
            raise bad("binary data (data_base64) is not a chronik event")
    else:
        if "ce_specversion" not in fields:
            raise bad("not a CloudEvent: no ce_specversion header and not structured mode")
        attributes = {name[3:]: text for name, text in fields.items() if name.startswith("ce_")}
        if "traceparent" in fields:
            attributes.setdefault("traceparent", fields["traceparent"])
        data = _json_object(value, bad, "event data")
    if attributes.get("specversion") != "1.0":
        raise bad(f"unsupported CloudEvents specversion {attributes.get('specversion')!r}")
    for required in ("id", "type", "source"):
        if not attributes.get(required):
            raise bad(f"the CloudEvent has no {required!r}")
    if not isinstance(data, dict):
        raise bad("the event data is not a JSON object")
    try:
        event_id = uuid.UUID(str(attributes["id"]))
    except ValueError:
        raise bad(f"the CloudEvent id {attributes['id']!r} is not a UUID") from None
    stream = attributes.get("subject") or _text(key)
    if not stream:
        raise bad("no stream id: neither a ce_subject nor a message key")
    metadata = {
        key: str(attributes[name]) for name, key in TRACE_KEYS.items() if attributes.get(name)
    }
    event = RecordedEvent(
        stream_id=str(stream),
        version=_int(attributes.get(STREAM_VERSION), 0, bad, "stream version"),
        position=_position(attributes.get(POSITION), bad),
        event_id=event_id,
        type=str(attributes["type"]),
        schema_version=_int(attributes.get(SCHEMA_VERSION), 1, bad, "schema version"),
        data=data,
        metadata=metadata,
        recorded_at=_time(attributes.get("time"), timestamp_ms, bad),
    )
    timestamp = (
        datetime.fromtimestamp(timestamp_ms / 1000, UTC) if timestamp_ms is not None else None
    )
    return Inbound(
        event, topic, partition, offset, origin_of(topic, partition, offset, fields), timestamp
    )


def _text(raw: bytes | str | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _json_object(raw: bytes | str | None, bad: Any, what: str) -> Any:
    if raw is None:
        raise bad(f"the {what} is empty")
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise bad(f"the {what} is not JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise bad(f"the {what} is not a JSON object")
    return parsed


def _int(raw: object, default: int, bad: Any, what: str) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(str(raw))
    except ValueError:
        raise bad(f"the {what} {raw!r} is not an integer") from None


def _position(raw: object, bad: Any) -> Position:
    if raw is None or raw == "":
        return START
    try:
        return Position.parse(str(raw))
    except ValueError as error:
        raise bad(str(error)) from None


def _time(raw: object, timestamp_ms: int | None, bad: Any) -> datetime:
    if raw:
        try:
            moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            raise bad(f"the CloudEvent time {raw!r} is not an RFC 3339 time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if timestamp_ms is not None:
        return datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return datetime.now(UTC)
