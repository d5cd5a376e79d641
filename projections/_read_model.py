"""The read-model contract every backend fulfils (pinned by tests/contracts/read_model.py).

A read model stores, per projection: the slots (builds) with their checkpoints,
the active pointer readers resolve, the slots' data, and the dead letters.  The
one rule everything rests on: ``commit`` applies a batch's writes, its dead
letters and its new checkpoint together, and only if the checkpoint is still
where the writer found it (``CheckpointConflictError`` otherwise).  That makes
the checkpoint a fencing token: two runners that both believe they own a
projection cannot both apply the same events.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from eventstore import START, AsyncClosing, Position

from ._dead_letters import DeadLetter
from ._slots import ProjectionMeta, SlotInfo, SlotState
from ._writes import Writes

W = TypeVar("W", bound=Writes)


@dataclass(slots=True)
class CommitBatch(Generic[W]):
    """What one batch commits: writes, dead letters and the checkpoint move."""

    previous: Position
    position: Position
    writes: W
    events: int
    event_time: datetime | None = None
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: Blocking dead letters whose events this batch applied after all.
    resolved: list[Position] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FailedWrite:
    """A write the backend refused *after* the batch was committed (Redis runs every
    command of an EXEC even when one fails): the event it belonged to must be parked."""

    event_index: int
    error: str


@dataclass(frozen=True, slots=True)
class PendingFailures:
    """Refused writes of a committed batch whose dead letters are not yet stored.

    The commit records them with the checkpoint, in the same atomic step, so an
    event whose write was refused is never lost between the commit and ``settle``:
    a runner that finds them (after a crash, a lost reply, a failed ``settle``)
    re-reads the batch's events after ``previous`` and settles them before going on.
    ``failures`` index the batch, which starts just after ``previous``.
    """

    previous: Position
    position: Position
    failures: list[FailedWrite]


class ReadModel(AsyncClosing, Generic[W]):
    """Storage for projections' slots, checkpoints, data and dead letters."""

    #: The ``Writes`` type handlers of projections on this read model receive.
    writes_type: type[W]
    #: Identifies this read model's keyspace (for lock names and messages).
    scope: str

    # -- slots ---------------------------------------------------------------

    @abc.abstractmethod
    async def meta(self, name: str) -> ProjectionMeta:
        """The projection's slots with their checkpoints, and the active slot."""

    @abc.abstractmethod
    async def projection_names(self) -> list[str]:
        """Names of the projections this read model holds, sorted."""

    @abc.abstractmethod
    async def create_slot(
        self, name: str, version: int, from_position: Position = START
    ) -> SlotInfo:
        """A new, empty building slot for ``version`` (the next generation)."""

    @abc.abstractmethod
    async def set_slot_state(self, name: str, slot: str, state: SlotState) -> None:
        """Mark a slot (e.g. abandoned); never used to activate (see ``activate``)."""

    @abc.abstractmethod
    async def activate(self, name: str, slot: str) -> bool:
        """Point readers at ``slot``, atomically, if it is at least as far as the active one.

        Returns False (nothing changed) when the slot is behind the active slot or the
        pointer moved meanwhile; the caller tries again later.
        """

    @abc.abstractmethod
    async def drop_slot(self, name: str, slot: str) -> None:
        """Delete an inactive slot: its data, checkpoint and dead letters."""

    @abc.abstractmethod
    async def drop_projection(self, name: str) -> None:
        """Delete everything of a projection, active slot included (scratch models, tests)."""

    # -- writing -------------------------------------------------------------

    @abc.abstractmethod
    def new_writes(self, name: str, slot: str) -> W:
        """An empty write buffer for one batch of ``slot``."""

    @abc.abstractmethod
    async def commit(
        self, name: str, slot: str, batch: CommitBatch[W], *, require_active: bool
    ) -> list[FailedWrite]:
        """Apply the batch atomically with its checkpoint; fenced on ``batch.previous``.

        Raises ``CheckpointConflictError`` when the checkpoint is elsewhere, and with
        ``require_active`` ``SlotNotActiveError`` when the slot is not the active one.
        A commit that already happened (the checkpoint is at ``batch.position``)
        succeeds again without writing (returning the failed writes it recorded, if
        they are still pending).  Failed writes are recorded as ``pending_failures``
        with the checkpoint; the caller parks them with ``settle``, and until then
        the slot takes no further commit.  ``WriteRejectedError``: nothing was
        written; the batch holds a write the backend refuses.
        """

    # -- dead letters --------------------------------------------------------

    @abc.abstractmethod
    async def park(self, name: str, slot: str, dead_letters: list[DeadLetter]) -> None:
        """Store (or overwrite) dead letters outside a batch."""

    async def pending_failures(self, name: str, slot: str) -> PendingFailures | None:
        """Refused writes a commit recorded and nobody settled yet (None: there are none).

        Backends whose ``commit`` never returns failed writes have none.
        """
        return None

    async def settle(
        self, name: str, slot: str, pending: PendingFailures, dead_letters: list[DeadLetter]
    ) -> None:
        """Park the dead letters of ``pending`` and clear it, atomically.

        A no-op when ``pending`` is no longer recorded (someone settled it already).
        """
        raise NotImplementedError(f"{type(self).__name__} records no pending failures")

    @abc.abstractmethod
    async def dead_letters(self, name: str, slot: str) -> list[DeadLetter]:
        """The slot's parked events, oldest position first."""

    @abc.abstractmethod
    async def commit_replay(self, name: str, slot: str, dead_letter: DeadLetter, writes: W) -> None:
        """Apply a replayed dead letter's writes and unpark it, atomically and at most once.

        For a blocking dead letter the checkpoint must still be at
        ``checkpoint_before`` and moves to the event.  ``DeadLetterNotFoundError``:
        it is no longer parked (replayed by someone else).
        """

    # -- reading -------------------------------------------------------------

    @abc.abstractmethod
    async def snapshot(self, name: str, slot: str | None = None) -> dict[str, Any]:
        """All data of a slot (default: the active one) as plain values, by relative key."""

    async def checkpoint(self, name: str, slot: str | None = None) -> Position | None:
        """The checkpoint of a slot (default: the active one); None when there is none."""
        meta = await self.meta(name)
        info = meta.slots.get(slot) if slot is not None else meta.active_slot
        return info.position if info is not None else None

    # -- lifecycle -----------------------------------------------------------

    @abc.abstractmethod
    async def close(self) -> None: ...
