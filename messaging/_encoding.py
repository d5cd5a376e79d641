"""Events and outbox rows as Kafka records, and how an error names them."""

from __future__ import annotations

import json
from typing import Any

from eventstore import Position, RecordedEvent

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
from ._feed import FeedRow
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

    def topic_of(self, row: FeedRow) -> str:
        if self.topics.function is not None:
            return self.topics.topic_for(_recorded(row))
        return self.topics.topic_for_stream(row.stream_id, lambda: _describe_row(row))

    def row(self, row: FeedRow) -> KafkaRecord:
        """A feed row as ``encode_event`` would encode it, without parsing its data.

        The hot path of the relay: the data goes out as the bytes PostgreSQL sent
        (JSON text), and binary-mode headers are built directly.
        """
        if self.topics.function is not None or self.mode is not CloudEventMode.BINARY:
            return self._slow_row(row)
        stream = row.stream_id.encode()
        topic = self.topics.topic_for_stream(row.stream_id, lambda: _describe_row(row))
        position = row.position
        headers = [
            _SPEC_HEADER,
            ("ce_id", str(row.event_id).encode()),
            self._source_header,
            ("ce_type", row.type.encode()),
            ("ce_subject", stream),
            ("ce_time", row.recorded_at.isoformat().encode()),
            ("ce_chronikversion", str(row.version).encode()),
            ("ce_chronikschema", str(row.schema_version).encode()),
            ("ce_chronikposition", f"{position[0]}:{position[1]}".encode()),
        ]
        traceparent = None
        if row.metadata != b"{}":
            metadata = json.loads(row.metadata)
            for key, name in METADATA_EXTENSIONS.items():
                value = metadata.get(key)
                if value is not None:
                    headers.append((f"ce_{name}", str(value).encode()))
                    if name == "traceparent":
                        traceparent = str(value).encode()
        headers.append(_CONTENT_TYPE)
        if traceparent is not None:
            headers.append(("traceparent", traceparent))
        if self.wire is not None:
            value = self.wire.apply(headers, topic, row.type, row.schema_version, row.data)
            return KafkaRecord(topic, stream, value, headers)
        return KafkaRecord(topic, stream, row.data, headers)

    def _slow_row(self, row: FeedRow) -> KafkaRecord:
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


_SPEC_HEADER = ("ce_specversion", SPEC_VERSION.encode())
_CONTENT_TYPE = ("content-type", JSON.encode())


def _recorded(row: FeedRow) -> RecordedEvent:
    return RecordedEvent(
        row.stream_id,
        row.version,
        row.position,
        row.event_id,
        row.type,
        row.schema_version,
        json.loads(row.data),
        json.loads(row.metadata),
        row.recorded_at,
    )


def _describe_row(row: FeedRow) -> str:
    return f"event {row.event_id} ({row.type}, {row.stream_id}@{row.version})"


def describe(token: Token, record: KafkaRecord) -> str:
    """Names the message of ``token`` in an error: its id, type, key and position."""
    headers = dict(record.headers)
    message_id = headers.get("ce_id") or headers.get("id")
    kind = headers.get("ce_type")
    if message_id is None and record.value:
        # Structured mode: the attributes are in the value.
        try:
            envelope: Any = json.loads(record.value)
            message_id, kind = envelope.get("id"), envelope.get("type")
        except ValueError:
            pass
    name = _text(message_id) or "?"
    key = record.key.decode(errors="replace") if record.key else "-"
    if token[0] == "outbox":
        return f"outbox message {name} ({_text(kind)}, aggregate {key}, outbox {token[2]})"
    if token[0] == "checkpoint":
        return "the relay's checkpoint record"
    return f"event {name} ({_text(kind)}, stream {key}, position {token[1]})"


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)
