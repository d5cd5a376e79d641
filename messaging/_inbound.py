"""Kafka messages back into events: CloudEvents (binary or structured) to envelopes.

The relay writes each event as a CloudEvent in the Kafka protocol binding, binary
or structured (``_cloudevents`` reads both).  Both decode to the same
``RecordedEvent`` as stored (old schema versions stay old: the consumer upcasts
through the app's codec), with the correlation and causation ids and the W3C trace
context put back into the metadata.  Anything else is a ``BadMessageError`` naming
the topic, partition and offset, which the consumer sends to the dead-letter topic.

This module is pure: no I/O, no client.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventstore import START, Position, RecordedEvent

from ._cloudevents import JSON, SPEC_VERSION
from ._cloudevents import decode as decode_cloudevent
from ._confluent import unframe
from ._consume_errors import BadMessageError
from ._errors import CloudEventFormatError

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


def trace_headers(messages: Iterable[Any]) -> Iterator[dict[str, str]]:
    """Each message's W3C trace headers (lazily: only a tracer asks)."""
    for message in messages:
        found = header_map(message.headers())
        yield {k: found[k] for k in ("traceparent", "tracestate") if k in found}


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
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
    timestamp_ms: int | None = None,
) -> Inbound:
    """Decode one message; ``BadMessageError`` (naming the message) if it is not an event."""
    pairs: Any = list(headers.items()) if isinstance(headers, Mapping) else headers or ()

    def bad(reason: str) -> BadMessageError:
        return BadMessageError(topic, partition, offset, reason)

    # One pass over the headers: the CloudEvents attributes of binary mode, and our
    # own bookkeeping (only on retried or replayed copies).  This is the hot path
    # of every consumer; anything unusual goes to the relay's full decoder.
    attributes: dict[str, str] = {}
    ours: dict[str, str] = {}
    content_type = ""
    try:
        for name, raw in pairs:
            if raw is None:
                continue
            text = raw.decode() if isinstance(raw, bytes) else raw
            if name.startswith("ce_"):
                attributes[name[3:]] = text
            elif name.startswith("chronik_"):
                ours[name] = text
            elif name.lower() == "content-type":
                content_type = text
    except UnicodeDecodeError:
        attributes = {}
    binary = (
        attributes.get("specversion") == SPEC_VERSION
        and all(attributes.get(name) for name in ("id", "source", "type"))
        and content_type.split(";")[0].strip() in ("", JSON)
        and value is not None
    )
    if binary:
        try:
            data = json.loads(value)  # type: ignore[arg-type]
        except ValueError as error:
            data = _unframed(value, error, bad)  # type: ignore[arg-type]
        extensions = attributes
        event_type, subject = attributes["type"], attributes.get("subject")
        event_text_id, time_text = attributes["id"], attributes.get("time")
    else:
        try:
            cloud_event = decode_cloudevent(
                pairs, value, key, where=f"{topic}[{partition}]@{offset}"
            )
        except CloudEventFormatError as error:
            raise bad(f"not a CloudEvent chronik can read: {error.reason}") from None
        data, extensions = cloud_event.data, cloud_event.extensions
        event_type, subject = cloud_event.type, cloud_event.subject
        event_text_id, time_text = cloud_event.id, cloud_event.time
    if not isinstance(data, dict):
        raise bad("the event data is not a JSON object")
    try:
        event_id = uuid.UUID(event_text_id)
    except ValueError:
        raise bad(f"the CloudEvent id {event_text_id!r} is not a UUID") from None
    stream = subject or (key.decode(errors="replace") if key is not None else None)
    if not stream:
        raise bad("no stream id: neither a subject nor a message key")
    metadata = {key: extensions[name] for name, key in TRACE_KEYS.items() if extensions.get(name)}
    event = RecordedEvent(
        stream_id=stream,
        version=_int(extensions.get(STREAM_VERSION), 0, bad, "stream version"),
        position=_position(extensions.get(POSITION), bad),
        event_id=event_id,
        type=event_type,
        schema_version=_int(extensions.get(SCHEMA_VERSION), 1, bad, "schema version"),
        data=data,
        metadata=metadata,
        recorded_at=_time(time_text, timestamp_ms, bad),
    )
    timestamp = (
        datetime.fromtimestamp(timestamp_ms / 1000, UTC) if timestamp_ms is not None else None
    )
    origin = (
        origin_of(topic, partition, offset, header_map(ours))
        if ours
        else Origin(topic, partition, offset)
    )
    return Inbound(event, topic, partition, offset, origin, timestamp)


def _unframed(value: bytes, error: ValueError, bad: Any) -> Any:
    """The JSON after Confluent's framing (magic byte, schema id), if that is what it is.

    Only tried once plain JSON failed: a JSON text never starts with a NUL byte,
    so this costs nothing for unframed messages.
    """
    framed = unframe(value)
    if framed is not None:
        try:
            return json.loads(framed[1])
        except ValueError as inner:
            error = inner
    raise bad(f"not a CloudEvent chronik can read: the value is not JSON ({error})") from None


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
