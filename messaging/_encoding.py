"""Events and outbox rows as Kafka records, and how an error names them."""

from __future__ import annotations

import json
import re
from typing import Any
from uuid import UUID

import orjson

from eventstore import Position, RawEvent, RecordedEvent

from ._checkpoints import OutboxRow
from ._cloudevents import (
    JSON,
    METADATA_EXTENSIONS,
    SPEC_VERSION,
    CloudEventMode,
    KafkaRecord,
    encode,
    encode_event,
)
from ._schema_wire import SchemaWire
from ._topics import TopicMapping

#: What a relay sends with each message: the checkpoint that becomes valid once it
#: and everything sent before it are delivered.
#: (kind, events position, outbox position, events counted, outbox rows counted)
Token = tuple[str, Position, Position, int, int]


class Encoder:
    """Turns the relay's inputs into records: topic mapping + CloudEvents mode."""

    def __init__(
        self,
        topics: TopicMapping,
        source: str,
        mode: CloudEventMode,
        wire: SchemaWire | None = None,
    ) -> None:
        self.topics = topics
        self.source = source
        self.mode = mode
        #: dataschema / Confluent framing: the relay ``prepare``s it before each batch.
        self.wire = wire
        self._source_header = ("ce_source", source.encode())
        # A function mapping needs the whole event; structured mode, the parsed data.
        self._slow = topics.function is not None or mode is not CloudEventMode.BINARY
        self._type_headers: dict[str, tuple[str, bytes]] = {}
        self._schema_headers: dict[int, tuple[str, bytes]] = {}

    def event(self, event: RecordedEvent) -> KafkaRecord:
        topic = self.topics.topic_for(event)
        wire = self.wire
        if wire is None:
            return encode_event(event, topic, self.source, self.mode)
        dataschema = wire.uri(event.type, event.schema_version)
        record = encode_event(event, topic, self.source, self.mode, dataschema=dataschema)
        if wire.client is not None:
            value = wire.frame(
                record.headers, topic, event.type, event.schema_version, record.value
            )
            record = record._replace(value=value)
        return record

    def topic_of(self, row: RawEvent) -> str:
        if self.topics.function is not None:
            return self.topics.topic_for(_recorded(row))
        return self.topics.topic_for_stream(row.stream_id, lambda: _describe_row(row))

    def row(self, row: RawEvent) -> KafkaRecord:
        """A raw feed event as ``encode_event`` would encode it, without parsing its data.

        The hot path of the relay, and the one place its messages are built (a
        hook for other wire formats belongs here): the data goes out as the bytes
        PostgreSQL sent (JSON text), and binary-mode headers are built directly,
        with what repeats (type, schema version, topic) looked up, not rebuilt.
        """
        if self._slow:
            return self._slow_row(row)
        stream = row.stream_id.encode()
        topic = self.topics.topic_for_stream(row.stream_id, lambda: _describe_row(row))
        type_header = self._type_headers.get(row.type)
        if type_header is None:
            type_header = self._type_headers[row.type] = ("ce_type", row.type.encode())
        schema_header = self._schema_headers.get(row.schema_version)
        if schema_header is None:
            schema_header = ("ce_chronikschema", b"%d" % row.schema_version)
            self._schema_headers[row.schema_version] = schema_header
        headers = [
            _SPEC_HEADER,
            ("ce_id", row.event_id.encode()),
            self._source_header,
            type_header,
            ("ce_subject", stream),
            ("ce_time", row.recorded_at.isoformat().encode()),
            ("ce_chronikversion", b"%d" % row.version),
            schema_header,
            ("ce_chronikposition", b"%d:%d" % (row.transaction_id, row.global_position)),
        ]
        if row.metadata == b"{}":
            headers.append(_CONTENT_TYPE)
        else:
            _metadata_headers(row.metadata, headers)
        if self.wire is not None:
            value = self.wire.apply(headers, topic, row.type, row.schema_version, row.data)
            return KafkaRecord(topic, stream, value, headers)
        return KafkaRecord(topic, stream, row.data, headers)

    def _slow_row(self, row: RawEvent) -> KafkaRecord:
        return self.event(_recorded(row))

    def outbox(self, row: OutboxRow) -> KafkaRecord:
        """Debezium's outbox router shape (key = aggregateid, value = payload, ``id``
        header) with CloudEvents attributes on top."""
        message_id = str(row.id)
        topic = self.topics.outbox_topic(row.aggregatetype, row.topic, message_id)
        attributes = {
            "specversion": SPEC_VERSION,
            "id": message_id,
            "source": self.source,
            "type": row.type,
            "subject": row.aggregateid,
            "time": row.created_at.isoformat(),
            "chronikoutbox": f"{row.position[0]}:{row.position[1]}",
        }
        extra = [("id", message_id.encode())]
        extra += [(name, value.encode()) for name, value in row.headers.items()]
        return encode(topic, row.aggregateid.encode(), attributes, row.payload, self.mode, extra)


_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_SPEC_HEADER = ("ce_specversion", SPEC_VERSION.encode())
_CONTENT_TYPE = ("content-type", JSON.encode())


def _metadata_headers(metadata: bytes, headers: list[tuple[str, bytes]]) -> None:
    """The extension headers from the event metadata, then content-type, then the
    plain W3C ``traceparent`` (the order ``encode`` writes them in)."""
    # orjson is several times faster, but reads an integer beyond 64 bits as a
    # rounded float: any such number has a run of 19+ digits, and goes to the
    # standard library (as does what orjson refuses: deep nesting, surrogates).
    if _LONG_DIGITS.search(metadata):
        found = json.loads(metadata)
    else:
        try:
            found = orjson.loads(metadata)
        except orjson.JSONDecodeError:
            found = json.loads(metadata)
    traceparent = None
    for key, name in METADATA_EXTENSIONS.items():
        value = found.get(key)
        if value is not None:
            text = str(value).encode()
            headers.append((f"ce_{name}", text))
            if name == "traceparent":
                traceparent = text
    headers.append(_CONTENT_TYPE)
    if traceparent is not None:
        headers.append(("traceparent", traceparent))


def _recorded(row: RawEvent) -> RecordedEvent:
    return RecordedEvent(
        row.stream_id,
        row.version,
        row.position,
        UUID(row.event_id),
        row.type,
        row.schema_version,
        json.loads(row.data),
        json.loads(row.metadata),
        row.recorded_at,
    )


def _describe_row(row: RawEvent) -> str:
    return f"event {row.event_id} ({row.type}, {row.stream_id}@{row.version})"


def describe(token: Token, record: KafkaRecord) -> str:
    """Names the message of ``token`` in an error: its id, type, key and position.

    The position comes from the message itself where it carries one: a token
    stands for a whole batch (see ``TrackedProducer.send_batch``).
    """
    headers = dict(record.headers)
    message_id = headers.get("ce_id") or headers.get("id")
    kind = headers.get("ce_type")
    events_at = headers.get("ce_chronikposition")
    outbox_at = headers.get("ce_chronikoutbox")
    if message_id is None and record.value:
        # Structured mode: the attributes are in the value.
        try:
            envelope: Any = json.loads(record.value)
            message_id, kind = envelope.get("id"), envelope.get("type")
            events_at = envelope.get("chronikposition")
            outbox_at = envelope.get("chronikoutbox")
        except (ValueError, AttributeError):
            pass
    name = _text(message_id) or "?"
    key = record.key.decode(errors="replace") if record.key else "-"
    if token[0] == "outbox":
        where = _text(outbox_at) if outbox_at else str(token[2])
        return f"outbox message {name} ({_text(kind)}, aggregate {key}, outbox {where})"
    if token[0] == "checkpoint":
        return "the relay's checkpoint record"
    where = _text(events_at) if events_at else str(token[1])
    return f"event {name} ({_text(kind)}, stream {key}, position {where})"


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)
