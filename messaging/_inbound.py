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
from typing import Any, NamedTuple

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


class Inbound(NamedTuple):
    """One decoded Kafka message: the event as stored and where it came from.

    A named tuple, built once per consumed message: it costs a third of a frozen
    dataclass, and its ``origin`` is only built when someone asks for it (nearly
    every message is its own origin).
    """

    event: RecordedEvent
    topic: str
    partition: int
    offset: int
    #: Where a copy (a retry, a replayed dead letter) first arrived; None for an
    #: original, whose origin is where it is now.
    first: Origin | None = None
    #: The broker's timestamp of the message (ms since the epoch), if it has one.
    timestamp_ms: int | None = None

    @property
    def origin(self) -> Origin:
        """Where the message first arrived, and the attempts it has had."""
        first = self.first
        return first if first is not None else Origin(self.topic, self.partition, self.offset)

    @property
    def is_copy(self) -> bool:
        """Whether this is a copy of a message first seen elsewhere (a retry, a replay)."""
        first = self.first
        return first is not None and (
            first.offset != self.offset
            or first.partition != self.partition
            or first.topic != self.topic
        )

    @property
    def timestamp(self) -> datetime | None:
        stamp = self.timestamp_ms
        return datetime.fromtimestamp(stamp / 1000, UTC) if stamp is not None else None


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
    pairs: Any
    if type(headers) is list:  # what confluent-kafka returns: skip the ABC check
        pairs = headers
    else:
        pairs = list(headers.items()) if isinstance(headers, Mapping) else headers or ()
    # The last value of a header wins (the CloudEvents binding), and dict() keeps
    # the last.  A None value is no value: rebuild without them (rare).
    found: dict[str, bytes | str] = dict(pairs)
    if None in found.values():
        found = {name: raw for name, raw in pairs if raw is not None}
    try:
        event = _binary_event(found, key, value, timestamp_ms, topic, partition, offset)
    except UnicodeDecodeError:
        # The full decoder below names the header that is not UTF-8.
        event = None
    if event is None:
        event = _other_event(pairs, key, value, timestamp_ms, (topic, partition, offset))
    if ATTEMPTS in found or ORIGINAL_TOPIC in found:
        first = origin_of(topic, partition, offset, header_map(pairs))
        return Inbound(event, topic, partition, offset, first, timestamp_ms)
    return Inbound(event, topic, partition, offset, None, timestamp_ms)


Where = tuple[str, int, int]


def _bad(where: Where, reason: str) -> BadMessageError:
    return BadMessageError(where[0], where[1], where[2], reason)


def _binary_event(
    found: dict[str, bytes | str],
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int | None,
    topic: str,
    partition: int,
    offset: int,
) -> RecordedEvent | None:
    """The event of a binary-mode CloudEvent as the relay writes it; None for anything else.

    This is the hot path of every consumer, so it is written for speed: it
    compares bytes, decodes only the attributes an event needs, parses integers,
    positions and ids straight from the relay's bytes, reuses the text of event
    types already seen, and calls no helper on the way (each call was a few
    percent of a consumer's CPU).  Anything unusual (structured mode, another
    content type, a missing attribute, a value in an unexpected form) returns None
    or goes to the lenient helpers, which name what is wrong.
    """
    get = found.get
    if value is None or get("ce_specversion") not in _SPEC_VERSIONS:
        return None
    raw_id, raw_type = get("ce_id"), get("ce_type")
    if not (raw_id and raw_type and get("ce_source")):
        return None
    content = get("content-type")
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
        data = _json(value, (topic, partition, offset))
    if type(data) is not dict:
        raise BadMessageError(topic, partition, offset, "the event data is not a JSON object")
    event_type = _TYPE_NAMES.get(raw_type)
    if event_type is None:
        event_type = _text(raw_type)
        if len(_TYPE_NAMES) < _MAX_TYPE_NAMES:
            _TYPE_NAMES[raw_type] = event_type
    metadata = {}
    for header, name in _TRACE_HEADERS:
        raw = get(header)
        if raw:
            metadata[name] = _text(raw)
    subject = get("ce_subject")
    stream: str
    if subject:
        stream = subject.decode() if isinstance(subject, bytes) else subject
    else:
        stream = _stream(None, key, (topic, partition, offset))
    raw = get(_VERSION_HEADER)
    version = int(raw) if type(raw) is bytes and raw.isdigit() else None
    if version is None:
        version = _int(raw, 0, (topic, partition, offset), "stream version")
    raw = get(_SCHEMA_HEADER)
    schema = int(raw) if type(raw) is bytes and raw.isdigit() else None
    if schema is None:
        schema = _int(raw, 1, (topic, partition, offset), "schema version")
    raw = get(_POSITION_HEADER)
    position = None
    if type(raw) is bytes:
        # "txid:seq" as the relay writes it; anything odd gets Position.parse's message.
        first, colon, second = raw.partition(b":")
        if colon and first.isdigit() and second.isdigit():
            position = Position(int(first), int(second))
            if position[0] >= 2**63 or position[1] >= 2**63:
                position = None
    if position is None:
        position = _position(raw, (topic, partition, offset))
    raw = get("ce_time")
    recorded_at = None
    if type(raw) is bytes:
        try:
            recorded_at = _fromisoformat(raw.decode())
        except ValueError:
            pass
        else:
            if recorded_at.tzinfo is None:
                recorded_at = recorded_at.replace(tzinfo=UTC)
    if recorded_at is None:
        recorded_at = _time(raw, timestamp_ms, (topic, partition, offset))
    return RecordedEvent(
        stream,
        version,
        position,
        (_FAST_IDS and _canonical_id(raw_id)) or _uuid(_text(raw_id), (topic, partition, offset)),
        event_type,
        schema,
        data,
        metadata,
        recorded_at,
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
_VERSION_HEADER = f"ce_{STREAM_VERSION}"
_SCHEMA_HEADER = f"ce_{SCHEMA_VERSION}"
_POSITION_HEADER = f"ce_{POSITION}"
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


_fromisoformat = datetime.fromisoformat
_UUID = uuid.UUID
_new_object = object.__new__
_set_slot = object.__setattr__
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown


def _canonical_id(raw: bytes | str) -> uuid.UUID | None:
    """The UUID of a canonical (36-character) id, built without ``UUID.__init__``.

    Half the cost of ``uuid.UUID(text)``, and the same result: the canonical form
    is what the relay writes, and ``int(hex, 16)`` is what ``UUID()`` runs on it.
    None for any other form (``_uuid`` then parses it, or names what is wrong).
    """
    if type(raw) is not bytes or len(raw) != 36:
        return None
    digits = raw.replace(b"-", b"")
    if len(digits) != 32 or not digits.isalnum():
        return None
    try:
        number = int(digits, 16)
    except ValueError:
        return None
    event_id = _new_object(_UUID)
    _set_slot(event_id, "int", number)
    _set_slot(event_id, "is_safe", _UNKNOWN_SAFETY)
    return event_id


def _fast_ids_work() -> bool:
    # The shortcut relies on UUID's two slots; a Python whose UUID differs keeps
    # the ordinary constructor.
    sample = "0b8f8a4a-4a0b-4a4e-9c1e-3c3f2b1a0d9e"
    try:
        made = _canonical_id(sample.encode())
    except (AttributeError, TypeError):
        return False
    return made == _UUID(sample) and str(made) == sample and hash(made) == hash(_UUID(sample))


_FAST_IDS = _fast_ids_work()


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
