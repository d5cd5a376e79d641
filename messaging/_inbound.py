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

import orjson

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

    @property
    def is_copy(self) -> bool:
        """Whether this is a copy of a message first seen elsewhere (a retry, a replay)."""
        origin = self.origin
        return (
            origin.offset != self.offset
            or origin.partition != self.partition
            or origin.topic != self.topic
        )


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
    # The last value of a header wins (the CloudEvents binding), and dict() keeps
    # the last.  A None value is no value: rebuild without them (rare).
    found: dict[str, bytes | str] = dict(pairs)
    if None in found.values():
        found = {name: raw for name, raw in pairs if raw is not None}
    where = (topic, partition, offset)
    try:
        event = _binary_event(found, key, value, timestamp_ms, where)
    except UnicodeDecodeError:
        # The full decoder below names the header that is not UTF-8.
        event = None
    if event is None:
        event = _other_event(pairs, key, value, timestamp_ms, where)
    timestamp = (
        datetime.fromtimestamp(timestamp_ms / 1000, UTC) if timestamp_ms is not None else None
    )
    origin = (
        origin_of(topic, partition, offset, header_map(pairs))
        if ATTEMPTS in found or ORIGINAL_TOPIC in found
        else Origin(topic, partition, offset)
    )
    return Inbound(event, topic, partition, offset, origin, timestamp)


Where = tuple[str, int, int]


def _bad(where: Where, reason: str) -> BadMessageError:
    return BadMessageError(where[0], where[1], where[2], reason)


def _binary_event(
    found: dict[str, bytes | str],
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int | None,
    where: Where,
) -> RecordedEvent | None:
    """The event of a binary-mode CloudEvent as the relay writes it; None for anything else.

    This is the hot path of every consumer, and it was half of a consumer's CPU
    while it decoded every header to text and built dictionaries of them: it now
    compares bytes, decodes only the attributes an event needs, parses integers
    straight from bytes and reuses the text of event types already seen.
    Anything unusual (structured mode, another content type, a missing attribute)
    returns None and goes to the full decoder.
    """
    if value is None or found.get("ce_specversion") not in _SPEC_VERSIONS:
        return None
    raw_id, raw_type = found.get("ce_id"), found.get("ce_type")
    if not (raw_id and raw_type and found.get("ce_source")):
        return None
    content = found.get("content-type")
    if content is None:
        # Header names are case-insensitive; the relay writes them lower-case.
        content = next((v for n, v in found.items() if n.lower() == "content-type"), None)
    if content and content not in _JSON_TYPES and _text(content).split(";")[0].strip() != JSON:
        return None
    try:
        # orjson reads a small event's data ten times faster than json; json reads
        # what orjson refuses but the relay's encoder may write (NaN, for one).
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        data = _json(value, where)
    if not isinstance(data, dict):
        raise _bad(where, "the event data is not a JSON object")
    event_type = _TYPE_NAMES.get(raw_type)
    if event_type is None:
        event_type = _text(raw_type)
        if len(_TYPE_NAMES) < _MAX_TYPE_NAMES:
            _TYPE_NAMES[raw_type] = event_type
    subject = found.get("ce_subject")
    metadata = {}
    for header, name in _TRACE_HEADERS:
        raw = found.get(header)
        if raw:
            metadata[name] = _text(raw)
    return RecordedEvent(
        stream_id=_stream(_text(subject) if subject else None, key, where),
        version=_int(found.get("ce_" + STREAM_VERSION), 0, where, "stream version"),
        position=_position(found.get("ce_" + POSITION), where),
        event_id=_uuid(_text(raw_id), where),
        type=event_type,
        schema_version=_int(found.get("ce_" + SCHEMA_VERSION), 1, where, "schema version"),
        data=data,
        metadata=metadata,
        recorded_at=_time(found.get("ce_time"), timestamp_ms, where),
    )


def _other_event(
    pairs: Any, key: bytes | None, value: bytes | None, timestamp_ms: int | None, where: Where
) -> RecordedEvent:
    """Any other CloudEvent (structured mode, unusual headers) through the full decoder."""
    try:
        cloud_event = decode_cloudevent(
            pairs, value, key, where=f"{where[0]}[{where[1]}]@{where[2]}"
        )
    except CloudEventFormatError as error:
        raise _bad(where, f"not a CloudEvent chronik can read: {error.reason}") from None
    data, extensions = cloud_event.data, cloud_event.extensions
    if not isinstance(data, dict):
        raise _bad(where, "the event data is not a JSON object")
    metadata = {key: extensions[name] for name, key in TRACE_KEYS.items() if extensions.get(name)}
    return RecordedEvent(
        stream_id=_stream(cloud_event.subject, key, where),
        version=_int(extensions.get(STREAM_VERSION), 0, where, "stream version"),
        position=_position(extensions.get(POSITION), where),
        event_id=_uuid(cloud_event.id, where),
        type=cloud_event.type,
        schema_version=_int(extensions.get(SCHEMA_VERSION), 1, where, "schema version"),
        data=data,
        metadata=metadata,
        recorded_at=_time(cloud_event.time, timestamp_ms, where),
    )


_SPEC_VERSIONS = (SPEC_VERSION.encode(), SPEC_VERSION)
_JSON_TYPES = (JSON.encode(), JSON)
_TRACE_HEADERS = tuple((f"ce_{name}", key) for name, key in TRACE_KEYS.items())
#: Event type names by their header bytes: a topic carries a handful of types, so
#: each is decoded once (bounded, in case a producer invents names without end).
_TYPE_NAMES: dict[bytes | str, str] = {}
_MAX_TYPE_NAMES = 1024


def _json(value: bytes, where: Where) -> Any:
    """What orjson refused: JSON only Python's reader takes (NaN), or JSON after
    Confluent's framing (magic byte, schema id).  A JSON text never starts with a NUL
    byte, so unframing costs nothing for plain messages."""
    try:
        return json.loads(value)
    except ValueError as error:
        problem = error
    framed = unframe(value)
    if framed is not None:
        try:
            return json.loads(framed[1])
        except ValueError as error:
            problem = error
    raise _bad(where, f"not a CloudEvent chronik can read: the value is not JSON ({problem})")


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _stream(subject: str | None, key: bytes | None, where: Where) -> str:
    stream = subject or (key.decode(errors="replace") if key is not None else None)
    if not stream:
        raise _bad(where, "no stream id: neither a subject nor a message key")
    return stream


def _uuid(text: str, where: Where) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise _bad(where, f"the CloudEvent id {text!r} is not a UUID") from None


def _int(raw: bytes | str | None, default: int, where: Where, what: str) -> int:
    if raw is None or raw == "" or raw == b"":
        return default
    try:
        # int() reads ASCII digits from bytes as from text: no decoding needed.
        return int(raw)
    except ValueError:
        raise _bad(where, f"the {what} {_lenient(raw)!r} is not an integer") from None


def _position(raw: bytes | str | None, where: Where) -> Position:
    if raw is None or raw == "" or raw == b"":
        return START
    if isinstance(raw, bytes):
        # "txid:seq" parsed from bytes; anything odd gets Position.parse's message.
        first, colon, second = raw.partition(b":")
        if colon and first.isdigit() and second.isdigit():
            position = Position(int(first), int(second))
            if position[0] < 2**63 and position[1] < 2**63:
                return position
    try:
        return Position.parse(_lenient(raw))
    except ValueError as error:
        raise _bad(where, str(error)) from None


def _time(raw: bytes | str | None, timestamp_ms: int | None, where: Where) -> datetime:
    if raw:
        text = _lenient(raw)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise _bad(where, f"the CloudEvent time {text!r} is not an RFC 3339 time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if timestamp_ms is not None:
        return datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return datetime.now(UTC)


def _lenient(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
