"""Dead letters: events a projection could not apply, parked with the reason.

A dead letter keeps the event *as stored* (before upcasting), so replaying it
after a fix runs the then-current upcasters and handler on it.  It is written in
the same read-model transaction that moves the checkpoint past the event (or, for
a projection set to stop, that leaves the checkpoint just before it), so a parked
event is never lost between the two.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from eventstore import Position, RecordedEvent, UnreadableEventError


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One parked event of one projection slot.

    ``blocking``: the projection stopped at this event (its policy is to stop) and
    its checkpoint is still ``checkpoint_before``; replaying it moves the
    checkpoint on.  A non-blocking dead letter was skipped: the projection went on.
    """

    projection: str
    slot: str
    position: Position
    event: RecordedEvent
    error_type: str
    error: str
    traceback: str
    attempts: int
    failed_at: datetime
    blocking: bool = False
    checkpoint_before: Position | None = None
    replays: int = 0
    partial: bool = False

    @property
    def unreadable(self) -> bool:
        """The store could not decode the stored event: no data to replay it with."""
        return self.error_type == _error_type_name(UnreadableEventError)

    @property
    def stream_id(self) -> str:
        return self.event.stream_id

    @property
    def version(self) -> int:
        return self.event.version

    @property
    def event_type(self) -> str:
        return self.event.type

    def failed_again(self, error: BaseException, trace: str, at: datetime) -> DeadLetter:
        return replace(
            self,
            error_type=_error_type(error),
            error=str(error),
            traceback=trace,
            failed_at=at,
            replays=self.replays + 1,
        )

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict (the stored form in every read model)."""
        event = self.event
        return {
            "projection": self.projection,
            "slot": self.slot,
            "position": str(self.position),
            "event": {
                "stream_id": event.stream_id,
                "version": event.version,
                "position": str(event.position),
                "event_id": str(event.event_id),
                "type": event.type,
                "schema_version": event.schema_version,
                "data": event.data,
                "metadata": event.metadata,
                "recorded_at": event.recorded_at.isoformat(),
            },
            "error_type": self.error_type,
            "error": self.error,
            "traceback": self.traceback,
            "attempts": self.attempts,
            "failed_at": self.failed_at.isoformat(),
            "blocking": self.blocking,
            "checkpoint_before": (
                str(self.checkpoint_before) if self.checkpoint_before is not None else None
            ),
            "replays": self.replays,
            "partial": self.partial,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_record(), separators=(",", ":"))

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> DeadLetter:
        raw = record["event"]
        event = RecordedEvent(
            stream_id=raw["stream_id"],
            version=int(raw["version"]),
            position=Position.parse(raw["position"]),
            event_id=UUID(raw["event_id"]),
            type=raw["type"],
            schema_version=int(raw["schema_version"]),
            data=raw["data"],
            metadata=raw["metadata"],
            recorded_at=datetime.fromisoformat(raw["recorded_at"]),
        )
        before = record.get("checkpoint_before")
        return cls(
            projection=record["projection"],
            slot=record["slot"],
            position=Position.parse(record["position"]),
            event=event,
            error_type=record["error_type"],
            error=record["error"],
            traceback=record["traceback"],
            attempts=int(record["attempts"]),
            failed_at=datetime.fromisoformat(record["failed_at"]),
            blocking=bool(record.get("blocking", False)),
            checkpoint_before=Position.parse(before) if before else None,
            replays=int(record.get("replays", 0)),
            partial=bool(record.get("partial", False)),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> DeadLetter:
        return cls.from_record(json.loads(text))


def _error_type(error: BaseException) -> str:
    return _error_type_name(type(error))


def _error_type_name(kind: type[BaseException]) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def new_dead_letter(
    projection: str,
    slot: str,
    event: RecordedEvent,
    error: BaseException,
    trace: str,
    attempts: int,
    at: datetime,
    *,
    blocking: bool = False,
    checkpoint_before: Position | None = None,
    partial: bool = False,
) -> DeadLetter:
    return DeadLetter(
        projection=projection,
        slot=slot,
        position=event.position,
        event=event,
        error_type=_error_type(error),
        error=str(error),
        traceback=trace,
        attempts=attempts,
        failed_at=at,
        blocking=blocking,
        checkpoint_before=checkpoint_before,
        partial=partial,
    )
