"""Slots: the versions of a projection's read model, and which one readers use.

A projection's read model lives in *slots*, one per build: ``v<version>g<generation>``.
Readers resolve the projection's *active* pointer to a slot and read only that one.
A new projection version (or an explicit rebuild) builds a fresh slot from the
start of the feed while readers keep using the active one; once the new slot has
caught up, the pointer moves to it in one atomic write.  Each slot has its own
checkpoint, so the live slot and a shadow build never disturb each other.

This module is pure: names, slot ids, the metadata records and the choice of slot.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from eventstore import START, Position

from ._errors import ProjectionDefinitionError, ProjectionSupersededError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_SLOT = re.compile(r"^v([1-9][0-9]*)g([1-9][0-9]*)$")


def check_name(name: object) -> str:
    """A projection name: letters, digits, ``_`` and ``-``; it becomes part of keys and
    collection names, where ``:`` and ``.`` separate it from the slot."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ProjectionDefinitionError(
            str(name),
            "a projection name is 1-100 letters, digits, '_' or '-', "
            "starting with a letter or digit",
        )
    return name


def slot_id(version: int, generation: int) -> str:
    return f"v{version}g{generation}"


def parse_slot_id(name: str, slot: str) -> tuple[int, int]:
    match = _SLOT.match(slot)
    if match is None:
        raise ProjectionDefinitionError(name, f"invalid slot id {slot!r}: expected 'v<N>g<N>'")
    return int(match.group(1)), int(match.group(2))


class SlotState(enum.StrEnum):
    BUILDING = "building"
    ACTIVE = "active"
    RETIRED = "retired"  # was active; kept for readers still on it until dropped
    ABANDONED = "abandoned"  # a build that a newer build of the same version replaced


@dataclass(frozen=True, slots=True)
class SlotInfo:
    """One build of a projection: its version, state and checkpoint."""

    slot: str
    version: int
    generation: int
    state: SlotState
    position: Position
    from_position: Position = START
    created_at: datetime | None = None
    updated_at: datetime | None = None
    event_time: datetime | None = None
    events: int = 0

    def registry_record(self) -> dict[str, Any]:
        """The slot's static facts (the checkpoint is stored apart, beside the data)."""
        return {
            "version": self.version,
            "generation": self.generation,
            "state": str(self.state),
            "from_position": str(self.from_position),
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }

    def with_state(self, state: SlotState) -> SlotInfo:
        return replace(self, state=state)

    @classmethod
    def new_build(cls, version: int, generation: int, from_position: Position) -> SlotInfo:
        """A slot just created to build into, starting after ``from_position``."""
        now = datetime.now(UTC)
        return cls(
            slot_id(version, generation),
            version,
            generation,
            SlotState.BUILDING,
            from_position,
            from_position,
            created_at=now,
            updated_at=now,
        )


@dataclass(frozen=True, slots=True)
class ProjectionMeta:
    """What a read model knows about one projection: its slots and the active one."""

    name: str
    active: str | None = None
    slots: dict[str, SlotInfo] = field(default_factory=dict)

    @property
    def active_slot(self) -> SlotInfo | None:
        return self.slots.get(self.active) if self.active is not None else None

    def current_slot(self, version: int | None = None) -> SlotInfo | None:
        """The slot that matters for ``version`` (default: any): the active one if it is
        of that version, else the newest slot being built for it."""
        active = self.active_slot
        if active is not None and (version is None or active.version == version):
            return active
        building = [
            s
            for s in self.slots.values()
            if s.state is SlotState.BUILDING and (version is None or s.version == version)
        ]
        return max(building, key=lambda s: (s.version, s.generation)) if building else None


class SlotChoice(enum.Enum):
    LIVE = "live"  # keep the active slot up to date
    BUILD = "build"  # go on building an existing shadow slot
    CREATE = "create"  # start a new shadow slot for this version


def choose_slot(meta: ProjectionMeta, version: int) -> tuple[SlotChoice, SlotInfo | None]:
    """Where a runner of projection version ``version`` should write.

    A newer active version means this runner is out of date: it must not write
    (``ProjectionSupersededError``), or old code would fight new code.
    """
    active = meta.active_slot
    if active is not None and active.version == version:
        return SlotChoice.LIVE, active
    if active is not None and active.version > version:
        raise ProjectionSupersededError(meta.name, version, active.version)
    building = [
        s for s in meta.slots.values() if s.version == version and s.state is SlotState.BUILDING
    ]
    if building:
        return SlotChoice.BUILD, max(building, key=lambda s: s.generation)
    return SlotChoice.CREATE, None


# Mongo compares strings, not pairs: a fixed-width text sorts like the Position.
_KEY_WIDTH = 20


def position_key(position: Position) -> str:
    """``Position`` as text whose string order is the feed order."""
    return f"{position.transaction_id:0{_KEY_WIDTH}d}:{position.global_position:0{_KEY_WIDTH}d}"


def parse_position_key(text: str) -> Position:
    return Position.parse(text)
