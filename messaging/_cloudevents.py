"""CloudEvents 1.0 on Kafka (the Kafka protocol binding), both ways.

Binary mode (the default) puts the event's data, as JSON, in the message value
and every attribute in a ``ce_<name>`` header, with ``content-type`` for
``datacontenttype``.  Structured mode puts the whole event, attributes and
data, in the value as ``application/cloudevents+json``.  The message key is the
stream id (the aggregate), so one aggregate's events share a partition.

chronik's own facts travel as CloudEvents extension attributes, so both modes
carry them and any CloudEvents SDK reads them: ``chronikversion`` (stream
version), ``chronikschema`` (schema version of the data), ``chronikposition``
(global feed position ``"txid:seq"``), and from the event metadata
``correlationid``, ``causationid``, ``traceparent`` and ``tracestate`` (the
CloudEvents distributed-tracing extension).  Extension names must be lower-case
letters and digits, which is why they are run together.

``decode`` is the inverse of both encoders; Kafka consumers use it.  The tests
check both directions against the official ``cloudevents`` SDK.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from eventstore import RecordedEvent

from ._confluent import unframe
from ._errors import CloudEventFormatError

SPEC_VERSION = "1.0"
JSON = "application/json"
STRUCTURED_JSON = "application/cloudevents+json"

# Metadata keys (either spelling) that become extension attributes.
METADATA_EXTENSIONS = {
    "correlation_id": "correlationid",
    "correlationId": "correlationid",
    "causation_id": "causationid",
    "causationId": "causationid",
    "traceparent": "traceparent",
    "tracestate": "tracestate",
}
_REQUIRED = ("id", "source", "type")
_CORE = frozenset(
    {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema"}
)


class CloudEventMode(enum.Enum):
    BINARY = "binary"
    STRUCTURED = "structured"


class KafkaRecord(NamedTuple):
    """One message to produce (or as consumed): what the producer layer sends."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """A decoded CloudEvent: the context attributes, the data, and the extensions."""

    id: str
    source: str
    type: str
    data: Any
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = JSON
    extensions: dict[str, str] = field(default_factory=dict)
    #: The Kafka message key (the stream id for chronik's events).
    key: str | None = None
    #: The URI of the schema the data follows (see ``_schema_wire``), if given.
    dataschema: str | None = None

    @property
    def stream_version(self) -> int | None:
        found = self.extensions.get("chronikversion")
        return int(found) if found is not None else None

    @property
    def position(self) -> str | None:
        return self.extensions.get("chronikposition")


def _dumps(data: Any) -> bytes:
    # Compact, and UTF-8 rather than \u escapes: the same bytes a JSON producer
    # in another language writes for the same data.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def event_attributes(
    event: RecordedEvent, source: str, dataschema: str | None = None
) -> dict[str, str]:
    """The CloudEvents attributes (core and extensions) of a stored event."""
    attributes = {
        "specversion": SPEC_VERSION,
        "id": str(event.event_id),
        "source": source,
        "type": event.type,
        "subject": event.stream_id,
        "time": event.recorded_at.isoformat(),
        "chronikversion": str(event.version),
        "chronikschema": str(event.schema_version),
        "chronikposition": f"{event.position[0]}:{event.position[1]}",
    }
    if dataschema is not None:
        attributes["dataschema"] = dataschema
    metadata = event.metadata
    if metadata:
        for key, name in METADATA_EXTENSIONS.items():
            value = metadata.get(key)
            if value is not None:
                attributes[name] = str(value)
    return attributes


def encode_event(
    event: RecordedEvent,
    topic: str,
    source: str,
    mode: CloudEventMode = CloudEventMode.BINARY,
    *,
    dataschema: str | None = None,
) -> KafkaRecord:
    """A stored event as a Kafka message: key = stream id, CloudEvents in ``mode``;
    ``dataschema``: the URI of the schema its data follows."""
    attributes = event_attributes(event, source, dataschema)
    return encode(topic, event.stream_id.encode(), attributes, event.data, mode)


def encode(
    topic: str,
    key: bytes | None,
    attributes: Mapping[str, str],
    data: Any,
    mode: CloudEventMode = CloudEventMode.BINARY,
    extra_headers: Sequence[tuple[str, bytes]] = (),
) -> KafkaRecord:
    """Attributes (without ``datacontenttype``: always JSON) and JSON data as a message.

    Attributes without ``specversion``, ``id``, ``source`` or ``type`` raise
    ``CloudEventFormatError``: the message would not be a CloudEvent."""
    missing = [name for name in ("specversion", *_REQUIRED) if not attributes.get(name)]
    if missing:
        raise CloudEventFormatError(
            f"a message for topic {topic!r}", f"attributes lack {', '.join(missing)}"
        )
    if mode is CloudEventMode.BINARY:
        headers = [(f"ce_{name}", value.encode()) for name, value in attributes.items()]
        headers.append(("content-type", b"application/json"))
        traceparent = attributes.get("traceparent")
        if traceparent is not None:
            # Also as the plain W3C header OpenTelemetry's Kafka propagators read.
            headers.append(("traceparent", traceparent.encode()))
        headers.extend(extra_headers)
        return KafkaRecord(topic, key, _dumps(data), headers)
    envelope: dict[str, Any] = dict(attributes)
    envelope["datacontenttype"] = JSON
    envelope["data"] = data
    headers = [("content-type", STRUCTURED_JSON.encode()), *extra_headers]
    return KafkaRecord(topic, key, _dumps(envelope), headers)


def decode(
    headers: Sequence[tuple[str, bytes | None]] | None,
    value: bytes | None,
    key: bytes | None = None,
    *,
    where: str = "message",
) -> CloudEvent:
    """A consumed Kafka message back into a ``CloudEvent`` (binary or structured mode).

    ``where`` names the message in errors (``"topic[partition]@offset"``).
    """
    found: dict[str, str] = {}
    for name, raw in headers or ():
        if raw is None:
            continue
        try:
            found[name.lower()] = raw.decode()
        except UnicodeDecodeError as error:
            raise CloudEventFormatError(where, f"header {name!r} is not UTF-8") from error
    content_type = found.get("content-type", "")
    text_key = key.decode(errors="replace") if key is not None else None
    structured = content_type.split(";")[0].strip() == STRUCTURED_JSON
    if structured or "ce_specversion" not in found:
        # Structured mode.  The spec marks it by content type; the Python SDK
        # instead moves ``datacontenttype`` into that header, so an event without
        # ``ce_`` headers whose value holds ``specversion`` counts as structured too.
        envelope = _load(value, where)
        if isinstance(envelope, dict) and (structured or "specversion" in envelope):
            attributes = {k: v for k, v in envelope.items() if k not in ("data", "data_base64")}
            if not structured and content_type:
                attributes.setdefault("datacontenttype", content_type)
            return _build(attributes, envelope.get("data"), text_key, where)
        if structured:
            raise CloudEventFormatError(where, "a structured CloudEvent must be a JSON object")
    attributes = {k[3:]: v for k, v in found.items() if k.startswith("ce_")}
    if content_type:
        attributes["datacontenttype"] = content_type
    data = _load(value, where) if value is not None else None
    return _build(attributes, data, text_key, where)


def _load(value: bytes | None, where: str) -> Any:
    if value is None:
        raise CloudEventFormatError(where, "the message has no value")
    try:
        return json.loads(value)
    except ValueError as error:
        framed = unframe(value)
        if framed is not None:
            # Confluent's wire format (magic byte, schema id): the JSON follows it.
            return _load(framed[1], where)
        raise CloudEventFormatError(where, f"the value is not JSON ({error})") from error


def _build(attributes: dict[str, Any], data: Any, key: str | None, where: str) -> CloudEvent:
    missing = [name for name in (*_REQUIRED, "specversion") if name not in attributes]
    if missing:
        raise CloudEventFormatError(where, f"missing attribute(s) {', '.join(missing)}")
    if attributes["specversion"] != SPEC_VERSION:
        raise CloudEventFormatError(
            where, f"specversion {attributes['specversion']!r}, expected {SPEC_VERSION!r}"
        )
    time = attributes.get("time")
    if time is not None:
        try:
            datetime.fromisoformat(str(time))
        except ValueError as error:
            raise CloudEventFormatError(where, f"time {time!r} is not RFC 3339") from error
    return CloudEvent(
        id=str(attributes["id"]),
        source=str(attributes["source"]),
        type=str(attributes["type"]),
        data=data,
        subject=_text(attributes.get("subject")),
        time=_text(time),
        datacontenttype=_text(attributes.get("datacontenttype")),
        dataschema=_text(attributes.get("dataschema")),
        extensions={k: str(v) for k, v in attributes.items() if k not in _CORE},
        key=key,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
