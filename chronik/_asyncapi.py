"""An AsyncAPI 3.0 document for the topics the relay publishes an app's events to.

``chronik schemas export --out DIR`` writes it as ``DIR/asyncapi.json`` beside
the JSON Schema files, so code generators in other languages get both the
payload types and where to find them:

- one channel per topic: the relay routes an event by its stream's aggregate type
  (``ledger-alice`` -> ``<prefix>ledger``), so each aggregate of the app gives a
  channel whose messages are its event types, every exported version of each
  (the relay publishes events as stored, old versions included);
- each message: the payload is a ``$ref`` to the exported schema file, the
  headers are the CloudEvents binary-mode headers the relay writes (with
  ``ce_type``, ``ce_chronikschema`` and ``ce_dataschema`` fixed per message),
  and the Kafka binding says the key is the stream id;
- one ``send`` operation per channel: the relay publishing.

JSON, not YAML: AsyncAPI accepts both, and JSON needs no dependency.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from eventstore import Event
from messaging import TopicMapping, TopicMappingError

from ._app import App, aggregate_events, aggregate_stream_prefix, aggregate_type_name

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

_HEADERS: dict[str, dict[str, Any]] = {
    "ce_specversion": {"type": "string", "const": "1.0"},
    "ce_id": {"type": "string", "format": "uuid", "description": "The event id."},
    "ce_source": {"type": "string", "description": "chronik/<schema> by default."},
    "ce_subject": {"type": "string", "description": "The stream id (also the key)."},
    "ce_time": {"type": "string", "format": "date-time", "description": "When it was stored."},
    "ce_chronikversion": {"type": "string", "description": "The event's stream version."},
    "ce_chronikposition": {
        "type": "string",
        "description": "The global feed position, 'transaction:sequence'.",
    },
    "ce_correlationid": {"type": "string"},
    "ce_causationid": {"type": "string"},
    "ce_traceparent": {"type": "string", "description": "W3C trace context."},
    "ce_tracestate": {"type": "string"},
    "traceparent": {"type": "string", "description": "W3C trace context (plain header)."},
    "content-type": {"type": "string", "const": "application/json"},
}
_REQUIRED_HEADERS = [
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_subject",
    "ce_time",
    "ce_chronikversion",
    "ce_chronikschema",
    "ce_chronikposition",
    "content-type",
]


def asyncapi_document(
    app: App, documents: list[dict[str, Any]], topics: TopicMapping
) -> tuple[dict[str, Any], list[str]]:
    """The AsyncAPI document, and notes on event types that got no channel.

    ``documents`` are ``chronik schemas export``'s (type, schema_version, uri,
    file); payload ``$ref``s are their ``file`` paths, relative to the document.
    """
    by_type: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        by_type.setdefault(document["type"], []).append(document)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    routed: set[str] = set()
    notes: list[str] = []
    for topic, kinds in _routes(app, topics, notes):
        channel_id = _identifier(topic, channels)
        refs: dict[str, Any] = {}
        for kind in sorted(kinds):
            routed.add(kind)
            for document in by_type.get(kind, []):
                message_id = _identifier(f"{kind}.v{document['schema_version']}", messages)
                messages[message_id] = _message(document)
                refs[message_id] = {"$ref": f"#/components/messages/{message_id}"}
        if not refs:
            continue
        channels[channel_id] = {
            "address": topic,
            "title": topic,
            "description": "Events published by the chronik relay; key = stream id, in "
            "stream order within a partition.",
            "messages": refs,
            "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        operations[_identifier(f"publish-{topic}", operations)] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"The relay publishes the events routed to {topic}.",
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in refs],
        }
    unrouted = sorted(set(by_type) - routed)
    if unrouted:
        notes.append(
            f"no channel for {', '.join(unrouted)}: no aggregate of the app declares them, "
            "so their topic depends on the streams they are written to"
        )
    document = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": f"{app.name} events",
            "version": _version(documents),
            "description": "The topics the chronik relay publishes this app's events to, as "
            "CloudEvents in Kafka binary mode. Payload schemas are the exported JSON Schema "
            "files beside this document.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
    return document, notes


def _routes(app: App, topics: TopicMapping, notes: list[str]) -> Iterable[tuple[str, set[str]]]:
    """(topic, event types) for each aggregate, merged when two share a topic."""
    found: dict[str, set[str]] = {}
    for aggregate in app.aggregates:
        prefix = aggregate_stream_prefix(aggregate) or f"{aggregate_type_name(aggregate)}-"
        kinds = {cls.event_type for cls in aggregate_events(aggregate) if _is_event(cls)}
        subject = f"aggregate {aggregate_type_name(aggregate)}"
        try:
            topic = topics.topic_for_stream(f"{prefix}x", lambda: subject)  # noqa: B023 (called now)
        except TopicMappingError as error:
            notes.append(f"no channel for aggregate {aggregate_type_name(aggregate)}: {error}")
            continue
        found.setdefault(topic, set()).update(kinds)
    return sorted(found.items())


def _is_event(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, Event)


def _message(document: dict[str, Any]) -> dict[str, Any]:
    kind, version = document["type"], document["schema_version"]
    headers = dict(_HEADERS)
    headers["ce_type"] = {"type": "string", "const": kind}
    headers["ce_chronikschema"] = {"type": "string", "const": str(version)}
    headers["ce_dataschema"] = {"type": "string", "const": document["uri"]}
    return {
        "name": kind,
        "title": f"{kind} v{version}",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": dict(sorted(headers.items())),
            "required": _REQUIRED_HEADERS,
        },
        "payload": {"$ref": document["file"]},
        "correlationId": {"location": "$message.header#/ce_correlationid"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The stream id."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _identifier(name: str, taken: dict[str, Any]) -> str:
    """An id AsyncAPI accepts as a channel, operation or message key; unique in ``taken``."""
    base = _ID_UNSAFE.sub("_", name)
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def _version(documents: list[dict[str, Any]]) -> str:
    # The document changes exactly when the set of schemas does: name that set.
    keys = sorted(f"{d['type']}:{d['schema_version']}:{d['uri']}" for d in documents)
    return "schemas-" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:12]
