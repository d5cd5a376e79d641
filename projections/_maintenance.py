"""Operations on projections: rebuild, replay into a scratch model, diff, drop slots.

Plain async functions, so the CLI and applications call the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventstore import START, Position

from ._errors import ProjectionError
from ._locks import LockProvider
from ._projection import Projection
from ._read_model import ReadModel
from ._runner import default_locks, lock_name
from ._slots import SlotState, check_name
from ._source import EventSource
from ._worker import Mode, ProjectionWorker, RunnerOptions


@dataclass(frozen=True, slots=True)
class RebuildResult:
    name: str
    version: int
    #: The slot readers used before the swap (kept until dropped), if any.
    previous_slot: str | None
    slot: str
    #: The new slot's checkpoint at the swap.
    position: Position


async def rebuild(
    projection: Projection[Any],
    read_model: ReadModel[Any],
    source: EventSource,
    *,
    from_position: Position | None = None,
    locks: LockProvider | None = None,
    options: RunnerOptions | None = None,
    stop: asyncio.Event | None = None,
) -> RebuildResult:
    """Build the projection afresh beside the active slot, then swap readers to it.

    Readers keep the old slot until the swap, which happens once the new slot has
    caught up with the active one (and with the feed's head at the start).  A
    runner keeping the old slot live follows the swap by itself.  Events at or
    before ``from_position`` are not projected (default: all are).  The old slot
    is kept for readers still on it; drop it with ``drop_inactive_slots``.
    """
    before = (await read_model.meta(projection.name)).active
    provider = locks if locks is not None else default_locks(source)
    worker = ProjectionWorker(
        projection,
        read_model,
        source,
        lock=provider.lock(lock_name(projection, read_model, "rebuild")),
        options=options or RunnerOptions(),
        mode=Mode.REBUILD,
        from_position=from_position,
    )
    await worker.run(stop or asyncio.Event())
    if not worker.state.activated:
        raise ProjectionError(projection.name, "the rebuild was stopped before its swap")
    slot = worker.state.activated[-1]
    meta = await read_model.meta(projection.name)
    return RebuildResult(
        projection.name, projection.version, before, slot, meta.slots[slot].position
    )


async def replay_into(
    projection: Projection[Any],
    source: EventSource,
    scratch: ReadModel[Any],
    *,
    up_to: Position | None = None,
    options: RunnerOptions | None = None,
) -> Position:
    """Project from the start into ``scratch`` up to ``up_to`` (default: the head now).

    Whatever ``scratch`` held of this projection is dropped first.  Returns the
    scratch checkpoint; compare with ``diff`` against the live read model.
    """
    target = up_to if up_to is not None else (await source.head() or START)
    await scratch.drop_projection(projection.name)
    worker = ProjectionWorker(
        projection,
        scratch,
        source,
        lock=None,
        options=options or RunnerOptions(),
        mode=Mode.REPLAY,
        stop_at=target,
    )
    await worker.run(asyncio.Event())
    position = await scratch.checkpoint(projection.name)
    return position if position is not None else START


@dataclass(frozen=True, slots=True)
class ReadModelDiff:
    """How two read models' copies of one projection differ, by relative key."""

    name: str
    left_checkpoint: Position | None
    right_checkpoint: Position | None
    only_left: dict[str, Any]
    only_right: dict[str, Any]
    changed: dict[str, tuple[Any, Any]]

    @property
    def identical(self) -> bool:
        return not (self.only_left or self.only_right or self.changed)


def diff_snapshots(
    left: Mapping[str, Any], right: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, tuple[Any, Any]]]:
    """Keys only in ``left``, only in ``right``, and in both with different values."""
    only_left = {k: v for k, v in left.items() if k not in right}
    only_right = {k: v for k, v in right.items() if k not in left}
    changed = {k: (v, right[k]) for k, v in left.items() if k in right and right[k] != v}
    return only_left, only_right, changed


async def diff(
    name: str,
    left: ReadModel[Any],
    right: ReadModel[Any],
    *,
    left_slot: str | None = None,
    right_slot: str | None = None,
) -> ReadModelDiff:
    """Compare a projection's data in two read models (default: their active slots).

    Meaningful when both are at the same checkpoint (both are reported): replay
    into a scratch model ``up_to`` the live checkpoint, then diff.
    """
    check_name(name)
    only_left, only_right, changed = diff_snapshots(
        await left.snapshot(name, left_slot), await right.snapshot(name, right_slot)
    )
    return ReadModelDiff(
        name,
        await left.checkpoint(name, left_slot),
        await right.checkpoint(name, right_slot),
        only_left,
        only_right,
        changed,
    )


async def drop_inactive_slots(read_model: ReadModel[Any], name: str) -> list[str]:
    """Delete a projection's retired and abandoned slots; the dropped slot ids."""
    meta = await read_model.meta(name)
    dropped = []
    for info in meta.slots.values():
        if info.state in (SlotState.RETIRED, SlotState.ABANDONED) and info.slot != meta.active:
            await read_model.drop_slot(name, info.slot)
            dropped.append(info.slot)
    return sorted(dropped)
