"""The event schema registry: the JSON Schema of every (event type, schema version) used.

A store records a model's schema the first time this process writes an event of
it (``EventStore.append`` with typed events, ``Repository.save``), and
``chronik schemas register`` records all of an app's models at once.  Each
registry remembers per process which classes it has already seen, so an append
costs a dict lookup per event class, not a query.

The schema is pydantic's *serialization* schema: the shape of the ``data`` the
store keeps and the relay publishes, so it is what consumers in other languages
generate types from.  ``schema_uri`` names it stably; the relay can set it as the
CloudEvents ``dataschema`` without asking the database.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ._events import Event
from ._schema_diff import SchemaChange, compare_schemas, incompatible_changes

logger = logging.getLogger("chronik.eventstore")

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_uri(event_type: str, schema_version: int, *, base: str | None = None) -> str:
    """The stable URI of one event schema.

    Without ``base``: ``urn:chronik:schema:<type>:<version>`` (a name, valid as a
    CloudEvents ``dataschema``).  With ``base`` (where ``chronik schemas export``
    output is served): ``<base>/<type>/v<version>.json``, the exported file's path.
    The type is percent-encoded except for letters, digits and ``.-_~``.
    """
    if isinstance(schema_version, bool) or not isinstance(schema_version, int):
        raise TypeError(f"schema_version must be an int, got {schema_version!r}")
    name = quote(event_type, safe=".-_~")
    if base is None:
        return f"urn:chronik:schema:{name}:{schema_version}"
    return f"{base.rstrip('/')}/{name}/v{schema_version}.json"


def schema_file_name(event_type: str, schema_version: int) -> str:
    """The export path of a schema relative to the export folder (see ``schema_uri``)."""
    return f"{quote(event_type, safe='.-_~')}/v{schema_version}.json"


def event_json_schema(model: type[Event]) -> dict[str, Any]:
    """The JSON Schema of an event class's stored data."""
    return model.model_json_schema(mode="serialization")


def schema_fingerprint(schema: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON: equal schemas, equal fingerprints, whatever the key order."""
    text = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SchemaRecord:
    """One registered schema: the type, its version, the JSON Schema and who wrote it."""

    event_type: str
    schema_version: int
    json_schema: dict[str, Any]
    fingerprint: str
    model: str = ""
    registered_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, model: type[Event]) -> SchemaRecord:
        schema = event_json_schema(model)
        return cls(
            model.event_type,
            model.event_version,
            schema,
            schema_fingerprint(schema),
            f"{model.__module__}.{model.__qualname__}",
        )

    @property
    def key(self) -> tuple[str, int]:
        return self.event_type, self.schema_version

    @property
    def uri(self) -> str:
        return schema_uri(self.event_type, self.schema_version)


class RegistrationStatus(enum.StrEnum):
    """What registering one schema did."""

    REGISTERED = "registered"  # the version had no schema yet
    UNCHANGED = "unchanged"  # the same schema was registered already
    UPDATED = "updated"  # a compatible change replaced the registered schema
    REFUSED = "refused"  # incompatible with the registered schema: nothing written


@dataclass(frozen=True, slots=True)
class Registration:
    """One schema's registration outcome, with the changes found (if it differed)."""

    record: SchemaRecord
    status: RegistrationStatus
    changes: tuple[SchemaChange, ...] = field(default=())


def decide(existing: SchemaRecord | None, record: SchemaRecord) -> Registration:
    """What registering ``record`` over ``existing`` must do (pure; backends apply it)."""
    if existing is None:
        return Registration(record, RegistrationStatus.REGISTERED)
    if existing.fingerprint == record.fingerprint:
        return Registration(record, RegistrationStatus.UNCHANGED)
    changes = tuple(compare_schemas(existing.json_schema, record.json_schema))
    refused = incompatible_changes(list(changes))
    status = RegistrationStatus.REFUSED if refused else RegistrationStatus.UPDATED
    return Registration(record, status, changes)


class SchemaRegistry(abc.ABC):
    """The schemas one event store has recorded; backends keep them beside the events."""

    def __init__(self) -> None:
        # Classes this process has registered (or found registered): the fast path.
        self._seen: dict[type[Event], RegistrationStatus] = {}
        self._lock = asyncio.Lock()

    async def ensure(self, models: Iterable[type[Event]]) -> None:
        """Record the schema of every class not seen yet by this registry.

        Called on the write path; a class is looked at once per process.  A class
        whose schema is incompatible with the one registered for its version is
        not recorded; that is logged as a warning (once) and refused by ``chronik
        schemas check``, the gate before a deploy, rather than failing writes.
        """
        seen = self._seen
        missing = [m for m in models if m not in seen]
        if not missing:
            return
        async with self._lock:
            missing = list(dict.fromkeys(m for m in missing if m not in seen))
            if not missing:
                return
            outcomes = await self.register([SchemaRecord.of(m) for m in missing])
            for model, outcome in zip(missing, outcomes, strict=True):
                seen[model] = outcome.status
                if outcome.status is RegistrationStatus.REFUSED:
                    logger.warning(
                        "event %s v%d: the schema of %s differs from the one registered for "
                        "this version (%s); bump event_version and add an upcaster, and run "
                        "'chronik schemas check' before deploying",
                        model.event_type,
                        model.event_version,
                        outcome.record.model,
                        "; ".join(str(c) for c in incompatible_changes(list(outcome.changes))),
                    )

    @abc.abstractmethod
    async def register(self, records: Iterable[SchemaRecord]) -> list[Registration]:
        """Record each schema unless its version holds an incompatible one."""

    @abc.abstractmethod
    async def list(self) -> list[SchemaRecord]:
        """Every registered schema, ordered by type and version."""

    async def get(self, event_type: str, schema_version: int) -> SchemaRecord | None:
        for record in await self.list():
            if record.key == (event_type, schema_version):
                return record
        return None


class InMemorySchemaRegistry(SchemaRegistry):
    """The registry of an ``InMemoryEventStore`` (and of tests)."""

    def __init__(self) -> None:
        super().__init__()
        self._records: dict[tuple[str, int], SchemaRecord] = {}

    async def register(self, records: Iterable[SchemaRecord]) -> list[Registration]:
        outcomes: list[Registration] = []
        for record in records:
            outcome = decide(self._records.get(record.key), record)
            now = datetime.now(UTC)
            if outcome.status is RegistrationStatus.REGISTERED:
                self._records[record.key] = _stamped(record, now, now)
            elif outcome.status is RegistrationStatus.UPDATED:
                first = self._records[record.key].registered_at
                self._records[record.key] = _stamped(record, first, now)
            outcomes.append(outcome)
        return outcomes

    async def list(self) -> list[SchemaRecord]:
        return [self._records[key] for key in sorted(self._records)]


def _stamped(record: SchemaRecord, registered: datetime | None, updated: datetime) -> SchemaRecord:
    return SchemaRecord(
        record.event_type,
        record.schema_version,
        record.json_schema,
        record.fingerprint,
        record.model,
        registered,
        updated,
    )
