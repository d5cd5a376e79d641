"""Event schemas on the wire: CloudEvents ``dataschema`` and Confluent's framing.

The relay tells consumers which schema an event's data follows:

- ``dataschema``: the CloudEvents attribute (binary mode: the ``ce_dataschema``
  header) is the registered schema's URI, ``eventstore.schema_uri(type, version,
  base=...)``: ``urn:chronik:schema:<type>:<version>`` by default, or
  ``<base>/<type>/v<version>.json`` where ``chronik schemas export`` output is
  served.  Only for (type, version)s the event store's schema registry holds: a
  URI must name a schema that exists.
- Confluent Schema Registry (optional): each (type, version)'s JSON Schema is
  registered under a subject and the value is framed as Confluent's serializers
  do (see ``_confluent``).  An event whose schema cannot be registered stops the
  relay (stuck, retrying, with the reason): it never goes out unframed.

Cost.  Everything is resolved once per (type, version) (per topic too, for
Confluent) before a batch is encoded (``prepare``, which may ask the database or
the registry), then cached for the life of the relay; encoding a message costs a
dict lookup and one header.  A (type, version) found unregistered is looked up
again after ``recheck_seconds`` (it may be registered by a newer deploy).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from eventstore import JSON_SCHEMA_DIALECT, PostgresEventStore, RawEvent, SchemaRecord, schema_uri

from ._cloudevents import CloudEventMode
from ._confluent import (
    SCHEMA_ID_HEADER,
    ConfluentRegistryClient,
    SchemaRegistryOptions,
    frame,
)
from ._errors import MessagingConfigError, SchemaWireError

if TYPE_CHECKING:
    from ._relay import RelayOptions

DATASCHEMA_HEADER = "ce_dataschema"
_TYPE = attrgetter("type")
_VERSION = attrgetter("schema_version")

ListSchemas = Callable[[], Awaitable[list[SchemaRecord]]]


def schema_document(
    event_type: str, schema_version: int, json_schema: dict[str, Any], base: str | None = None
) -> dict[str, Any]:
    """The self-describing JSON Schema document of one version (what is exported and
    what is registered with Confluent): ``$schema`` and ``$id`` on top."""
    if not isinstance(event_type, str) or not event_type.strip():
        raise SchemaWireError(repr(event_type), "an event type is a non-empty string")
    if (
        isinstance(schema_version, bool)
        or not isinstance(schema_version, int)
        or schema_version < 1
    ):
        raise SchemaWireError(
            f"event type {event_type}", f"a schema version is a number >= 1, not {schema_version!r}"
        )
    uri = schema_uri(event_type, schema_version, base=base)
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": uri, **json_schema}


def schema_wire(store: PostgresEventStore, options: RelayOptions) -> SchemaWire | None:
    """The relay's ``SchemaWire`` for its options (None when it adds nothing)."""
    registry = options.schema_registry
    if registry is not None and options.mode is not CloudEventMode.BINARY:
        raise MessagingConfigError(
            f"relay {options.name!r}",
            "the Confluent wire format frames the event data: use CloudEvents binary mode "
            "with schema_registry (structured mode puts the whole envelope in the value)",
        )
    if not options.dataschema and registry is None:
        return None
    return SchemaWire(
        store.schemas.list,
        dataschema=options.dataschema,
        base_url=options.schema_base_url,
        registry=registry,
    )


class SchemaWire:
    """What the relay adds to each event for its schema; resolved per key, then cached."""

    def __init__(
        self,
        list_schemas: ListSchemas,
        *,
        dataschema: bool = True,
        base_url: str | None = None,
        registry: SchemaRegistryOptions | None = None,
        recheck_seconds: float = 30.0,
    ) -> None:
        self._list_schemas = list_schemas
        self.dataschema = dataschema
        self.base_url = base_url
        self.registry = registry
        self.client = ConfluentRegistryClient(registry) if registry is not None else None
        self.recheck_seconds = recheck_seconds
        #: (type, version) -> the ``ce_dataschema`` header, or None: not registered.
        self.headers: dict[tuple[str, int], tuple[str, bytes] | None] = {}
        #: (topic, type, version) -> (the 5-byte frame, the schema id header).
        self.frames: dict[tuple[str, str, int], tuple[bytes, tuple[str, bytes]]] = {}
        self._records: dict[tuple[str, int], SchemaRecord] = {}
        self._ids: dict[tuple[str, str], int] = {}  # (subject, fingerprint) -> id
        self._loaded_at: float | None = None

    # -- before a batch (async: may read the registry) -------------------------

    async def prepare(self, rows: Sequence[RawEvent], topic_of: Callable[[RawEvent], str]) -> None:
        """Resolve every (type, version) of ``rows`` not resolved yet."""
        if self.dataschema:
            keys = set(zip(map(_TYPE, rows), map(_VERSION, rows), strict=True))
            missing = keys - self.headers.keys()
            if missing or self._stale_misses():
                await self._resolve_uris(keys)
        if self.client is not None:
            wanted = {(topic_of(row), row.type, row.schema_version) for row in rows}
            # Sorted: the registry sees the same requests in the same order every run.
            for key in sorted(wanted - self.frames.keys()):
                await self._register(*key)

    def _stale_misses(self) -> bool:
        if self._loaded_at is None or time.monotonic() - self._loaded_at < self.recheck_seconds:
            return False
        return None in self.headers.values()

    async def _load(self) -> None:
        self._records = {record.key: record for record in await self._list_schemas()}
        self._loaded_at = time.monotonic()

    async def _resolve_uris(self, keys: set[tuple[str, int]]) -> None:
        await self._load()
        for key in [k for k, header in self.headers.items() if header is None]:
            del self.headers[key]  # looked up again below if still in use
        for key in keys:
            if key in self._records:
                uri = schema_uri(key[0], key[1], base=self.base_url)
                self.headers[key] = (DATASCHEMA_HEADER, uri.encode())
            else:
                self.headers[key] = None

    async def _register(self, topic: str, event_type: str, version: int) -> None:
        assert self.client is not None and self.registry is not None
        record = self._records.get((event_type, version))
        if record is None:
            await self._load()  # registered since the last look?
            record = self._records.get((event_type, version))
        if record is None:
            raise SchemaWireError(
                f"event type {event_type} v{version} (topic {topic!r})",
                "the event store's schema registry has no JSON Schema for it, and the relay "
                "publishes to the Confluent Schema Registry only framed values; run 'chronik "
                "schemas register' with the app that writes these events",
            )
        subject = self.registry.subject_strategy.subject(topic, event_type)
        schema_id = self._ids.get((subject, record.fingerprint))
        if schema_id is None:
            document = schema_document(event_type, version, record.json_schema, self.base_url)
            text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            schema_id = await self.client.register(subject, text)
            self._ids[(subject, record.fingerprint)] = schema_id
        self.frames[(topic, event_type, version)] = (
            frame(schema_id),
            (SCHEMA_ID_HEADER, str(schema_id).encode()),
        )

    # -- per message (sync, cached) ----------------------------------------------

    def uri(self, event_type: str, version: int) -> str | None:
        """The ``dataschema`` of a prepared (type, version), None if unregistered or off."""
        header = self.headers.get((event_type, version)) if self.dataschema else None
        return header[1].decode() if header is not None else None

    def apply(
        self,
        headers: list[tuple[str, bytes]],
        topic: str,
        event_type: str,
        version: int,
        value: bytes,
    ) -> bytes:
        """Add the prepared headers to a binary-mode message; return its (framed) value."""
        if self.dataschema:
            header = self.headers.get((event_type, version))
            if header is not None:
                headers.append(header)
        if self.client is not None:
            return self.frame(headers, topic, event_type, version, value)
        return value

    def frame(
        self,
        headers: list[tuple[str, bytes]],
        topic: str,
        event_type: str,
        version: int,
        value: bytes,
    ) -> bytes:
        """``value`` in Confluent's wire format (the key must have been prepared)."""
        prefix, header = self.frames[(topic, event_type, version)]
        headers.append(header)
        return prefix + value

    def __repr__(self) -> str:
        parts = [f"dataschema={self.dataschema}", f"base_url={self.base_url!r}"]
        if self.client is not None:
            parts.append(f"registry={self.client.shown!r}")
        return f"SchemaWire({', '.join(parts)})"
