"""The projections' branch of the chronik error tree.

::

    ChronikError
     └── ProjectionError                   names the projection it is about
          ├── ProjectionDefinitionError     a bad projection (name, handlers, codec)
          ├── ProjectionNotReadyError       no version of the projection is active yet
          ├── ProjectionStoppedError        a poison event stopped a projection set to stop
          ├── ProjectionSupersededError     a newer version of the projection is active
          ├── CheckpointConflictError       another writer moved the checkpoint (fencing)
          ├── SlotNotActiveError            the slot being written was swapped out
          ├── ReadModelError                the read model failed or refused a write
          │    └── WriteRejectedError       a write of one event was refused by the backend
          ├── DeadLetterNotFoundError       no parked event at that position
          └── PartialDeadLetterError        a dead letter whose writes were partly applied

Errors are picklable: each keeps its constructor arguments in ``args``.
"""

from __future__ import annotations

from eventstore import ChronikError, Position


class ProjectionError(ChronikError):
    """Root of the projection errors; ``projection`` is the projection's name."""

    def __init__(self, projection: str, reason: str) -> None:
        super().__init__(projection, reason)
        self.projection = projection
        self.reason = reason

    def __str__(self) -> str:
        return f"projection {self.projection!r}: {self.reason}"


class ProjectionDefinitionError(ProjectionError, ValueError):
    """A projection is defined wrongly (found when it is declared or bound)."""


class ProjectionNotReadyError(ProjectionError, LookupError):
    """Readers asked for a projection that has no active version yet."""


class ProjectionStoppedError(ProjectionError):
    """A poison event stopped a projection whose policy is to stop.

    The event is parked as a blocking dead letter; the checkpoint stays before it.
    """

    def __init__(self, projection: str, reason: str, position: Position) -> None:
        ProjectionError.__init__(self, projection, reason)
        self.args = (projection, reason, position)
        self.position = position

    def __str__(self) -> str:
        return f"projection {self.projection!r} stopped at position {self.position}: {self.reason}"


class ProjectionSupersededError(ProjectionError):
    """This version of the projection is older than the active one; it must not write."""

    def __init__(self, projection: str, version: int, active_version: int) -> None:
        ProjectionError.__init__(
            self,
            projection,
            f"version {version} is superseded by the active version {active_version}",
        )
        self.args = (projection, version, active_version)
        self.version = version
        self.active_version = active_version


class CheckpointConflictError(ProjectionError):
    """The checkpoint was not where this writer left it: another writer got there first.

    Nothing of the batch was committed (Redis) or only idempotent guarded writes
    were (Mongo without transactions).  Re-read the checkpoint and go on from there.
    """

    def __init__(
        self, projection: str, slot: str, expected: Position, found: Position | None
    ) -> None:
        ProjectionError.__init__(
            self,
            projection,
            f"checkpoint of slot {slot} is at {found}, the writer expected {expected}",
        )
        self.args = (projection, slot, expected, found)
        self.slot = slot
        self.expected = expected
        self.found = found


class SlotNotActiveError(ProjectionError):
    """A live writer's slot is no longer the active one (a rebuild swapped it out)."""

    def __init__(self, projection: str, slot: str, active: str | None) -> None:
        ProjectionError.__init__(
            self, projection, f"slot {slot} is no longer active (active: {active})"
        )
        self.args = (projection, slot, active)
        self.slot = slot
        self.active = active


class ReadModelError(ProjectionError):
    """The read model could not be read or written (the driver error is the cause)."""


class WriteRejectedError(ReadModelError):
    """The backend refused a write queued for one event of a batch.

    ``event_index`` is the index of that event within the batch, when known.
    ``partial``: some other writes of that event may have been applied anyway
    (a backend without transactions), so it must not simply be replayed.
    """

    def __init__(
        self, projection: str, reason: str, event_index: int | None, partial: bool = False
    ) -> None:
        ReadModelError.__init__(self, projection, reason)
        self.args = (projection, reason, event_index, partial)
        self.event_index = event_index
        self.partial = partial


class DeadLetterNotFoundError(ProjectionError, LookupError):
    """No event is parked at that position."""

    def __init__(self, projection: str, position: Position) -> None:
        ProjectionError.__init__(self, projection, f"no dead letter at position {position}")
        self.args = (projection, position)
        self.position = position


class PartialDeadLetterError(ProjectionError):
    """A replay was asked for a dead letter whose other writes were already applied."""

    def __init__(self, projection: str, position: Position) -> None:
        ProjectionError.__init__(
            self,
            projection,
            f"the dead letter at position {position} cannot be replayed: its writes were "
            "partly applied; rebuild the projection instead (or force the replay)",
        )
        self.args = (projection, position)
        self.position = position
