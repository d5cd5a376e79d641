"""Generated from eventstore/_schemas.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``eventstore._schemas``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterable
from datetime import UTC, datetime

from eventstore._events import Event
from eventstore._schema_diff import incompatible_changes
from eventstore._schemas import (
    Registration,
    RegistrationStatus,
    SchemaRecord,
    _stamped,
    decide,
    logger,
)


class SchemaRegistry(abc.ABC):
    """The schemas one event store has recorded; backends keep them beside the events."""

    def __init__(self) -> None:
        self._seen: dict[type[Event], RegistrationStatus] = {}
        self._lock = threading.Lock()

    def ensure(self, models: Iterable[type[Event]]) -> None:
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
        with self._lock:
            missing = list(dict.fromkeys(m for m in missing if m not in seen))
            if not missing:
                return
            outcomes = self.register([SchemaRecord.of(m) for m in missing])
            for model, outcome in zip(missing, outcomes, strict=True):
                seen[model] = outcome.status
                if outcome.status is RegistrationStatus.REFUSED:
                    logger.warning(
                        "event %s v%d: the schema of %s differs from the one registered for this version (%s); bump event_version and add an upcaster, and run 'chronik schemas check' before deploying",
                        model.event_type,
                        model.event_version,
                        outcome.record.model,
                        "; ".join(str(c) for c in incompatible_changes(list(outcome.changes))),
                    )

    @abc.abstractmethod
    def register(self, records: Iterable[SchemaRecord]) -> list[Registration]:
        """Record each schema unless its version holds an incompatible one."""

    @abc.abstractmethod
    def list(self) -> list[SchemaRecord]:
        """Every registered schema, ordered by type and version."""

    def get(self, event_type: str, schema_version: int) -> SchemaRecord | None:
        for record in self.list():
            if record.key == (event_type, schema_version):
                return record
        return None


class InMemorySchemaRegistry(SchemaRegistry):
    """The registry of an ``InMemoryEventStore`` (and of tests)."""

    def __init__(self) -> None:
        super().__init__()
        self._records: dict[tuple[str, int], SchemaRecord] = {}

    def register(self, records: Iterable[SchemaRecord]) -> list[Registration]:
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

    def list(self) -> list[SchemaRecord]:
        return [self._records[key] for key in sorted(self._records)]
