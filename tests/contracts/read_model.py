"""The ReadModel contract: the same tests for every read-model backend.

Subclass ``ReadModelContract`` in ``tests/backends/`` and provide:

* a ``read_model`` fixture: a fresh read model in a keyspace of its own;
* ``put(writes, key, value)``: queue "key := value" (a string);
* ``add(writes, key, amount)``: queue "key += amount" (an int);
* ``value(snapshot, key)``: what ``snapshot()`` shows for ``key`` as (string | None, int).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore import START, Position, RecordedEvent
from projections import (
    CheckpointConflictError,
    CommitBatch,
    DeadLetter,
    DeadLetterNotFoundError,
    ProjectionError,
    ProjectionNotReadyError,
    ReadModel,
    SlotNotActiveError,
    SlotState,
    Writes,
)

W = TypeVar("W", bound=Writes)


def pos(n: int) -> Position:
    return Position(1000 + n, n)


def envelope(n: int, data: dict[str, Any] | None = None) -> RecordedEvent:
    return RecordedEvent(
        stream_id=f"s-{n % 3}",
        version=n,
        position=pos(n),
        event_id=uuid.uuid4(),
        type="test.Thing",
        schema_version=1,
        data=data if data is not None else {"n": n, "odd.key": {"$x": [1, "two"]}},
        metadata={"trace": "t"},
        recorded_at=datetime.now(UTC),
    )


def letter(name: str, slot: str, n: int, *, blocking: bool = False) -> DeadLetter:
    return DeadLetter(
        projection=name,
        slot=slot,
        position=pos(n),
        event=envelope(n),
        error_type="builtins.ValueError",
        error=f"boom {n}",
        traceback="Traceback (most recent call last):\n  ...\nValueError: boom",
        attempts=3,
        failed_at=datetime.now(UTC),
        blocking=blocking,
        checkpoint_before=pos(n - 1) if blocking else None,
    )


class ReadModelContract(Generic[W]):
    name: ClassVar[str] = "things"

    # -- hooks for subclasses ------------------------------------------------------

    def put(self, writes: W, key: str, value: str) -> None:
        raise NotImplementedError

    def add(self, writes: W, key: str, amount: int) -> None:
        raise NotImplementedError

    def value(self, snapshot: dict[str, Any], key: str) -> tuple[str | None, int]:
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------------

    def batch(
        self,
        read_model: ReadModel[W],
        slot: str,
        first: int,
        last: int,
        *,
        previous: Position | None = None,
        adds: dict[str, int] | None = None,
    ) -> CommitBatch[W]:
        """Events first..last, each adding 1 to "count" and setting "last" := n."""
        writes = read_model.new_writes(self.name, slot)
        for n in range(first, last + 1):
            writes.begin_event(n - first, pos(n))
            self.add(writes, "count", 1)
            self.put(writes, "last", str(n))
            for key, amount in (adds or {}).items():
                self.add(writes, key, amount)
        return CommitBatch(
            previous=previous if previous is not None else (pos(first - 1) if first > 1 else START),
            position=pos(last),
            writes=writes,
            events=last - first + 1,
            event_time=datetime.now(UTC),
        )

    async def active_slot(self, read_model: ReadModel[W]) -> str:
        info = await read_model.create_slot(self.name, 1)
        assert await read_model.activate(self.name, info.slot)
        return info.slot

    # -- slots and the active pointer ----------------------------------------------

    async def test_an_unknown_projection_has_no_slots(self, read_model: ReadModel[W]) -> None:
        meta = await read_model.meta(self.name)
        assert meta.active is None and meta.slots == {}
        assert await read_model.checkpoint(self.name) is None
        with pytest.raises(ProjectionNotReadyError):
            await read_model.snapshot(self.name)

    async def test_slots_are_created_building_with_rising_generations(
        self, read_model: ReadModel[W]
    ) -> None:
        first = await read_model.create_slot(self.name, 1)
        second = await read_model.create_slot(self.name, 1, pos(7))
        other = await read_model.create_slot(self.name, 2)
        assert (first.slot, second.slot, other.slot) == ("v1g1", "v1g2", "v2g1")
        meta = await read_model.meta(self.name)
        assert meta.active is None
        assert {s.slot: s.state for s in meta.slots.values()} == {
            "v1g1": SlotState.BUILDING,
            "v1g2": SlotState.BUILDING,
            "v2g1": SlotState.BUILDING,
        }
        assert meta.slots["v1g2"].position == pos(7) == meta.slots["v1g2"].from_position
        assert meta.slots["v1g1"].position == START
        assert await read_model.projection_names() == [self.name]

    async def test_concurrent_slot_creation_never_hands_out_one_slot_twice(
        self, read_model: ReadModel[W]
    ) -> None:
        infos = await asyncio.gather(*(read_model.create_slot(self.name, 3) for _ in range(5)))
        assert sorted(i.slot for i in infos) == [f"v3g{g}" for g in range(1, 6)]

    async def test_activation_needs_the_new_slot_to_have_caught_up(
        self, read_model: ReadModel[W]
    ) -> None:
        old = await self.active_slot(read_model)
        await read_model.commit(
            self.name, old, self.batch(read_model, old, 1, 5), require_active=True
        )
        new = (await read_model.create_slot(self.name, 2)).slot
        await read_model.commit(
            self.name, new, self.batch(read_model, new, 1, 3), require_active=False
        )
        assert not await read_model.activate(self.name, new)
        assert (await read_model.meta(self.name)).active == old

        batch = self.batch(read_model, new, 4, 5)
        await read_model.commit(self.name, new, batch, require_active=False)
        assert await read_model.activate(self.name, new)
        meta = await read_model.meta(self.name)
        assert meta.active == new
        assert meta.slots[new].state is SlotState.ACTIVE
        assert meta.slots[old].state is SlotState.RETIRED
        assert await read_model.checkpoint(self.name) == pos(5)

    async def test_a_retired_slot_keeps_its_data_until_dropped(
        self, read_model: ReadModel[W]
    ) -> None:
        old = await self.active_slot(read_model)
        await read_model.commit(
            self.name, old, self.batch(read_model, old, 1, 2), require_active=True
        )
        new = (await read_model.create_slot(self.name, 2)).slot
        await read_model.commit(
            self.name,
            new,
            self.batch(read_model, new, 1, 2, adds={"extra": 5}),
            require_active=False,
        )
        assert await read_model.activate(self.name, new)
        assert self.value(await read_model.snapshot(self.name, old), "count")[1] == 2
        assert self.value(await read_model.snapshot(self.name), "extra")[1] == 10

        with pytest.raises(ProjectionError, match="active"):
            await read_model.drop_slot(self.name, new)
        await read_model.drop_slot(self.name, old)
        assert await read_model.snapshot(self.name, old) == {}
        assert old not in (await read_model.meta(self.name)).slots
        assert self.value(await read_model.snapshot(self.name), "count")[1] == 2

    async def test_slot_states_can_be_set_but_not_to_active(self, read_model: ReadModel[W]) -> None:
        info = await read_model.create_slot(self.name, 1)
        await read_model.set_slot_state(self.name, info.slot, SlotState.ABANDONED)
        assert (await read_model.meta(self.name)).slots[info.slot].state is SlotState.ABANDONED
        assert not await read_model.activate(self.name, info.slot), "an abandoned build came back"
        with pytest.raises(ValueError, match="activate"):
            await read_model.set_slot_state(self.name, info.slot, SlotState.ACTIVE)

    async def test_drop_projection_removes_everything(self, read_model: ReadModel[W]) -> None:
        slot = await self.active_slot(read_model)
        batch = self.batch(read_model, slot, 1, 2)
        batch.dead_letters.append(letter(self.name, slot, 2))
        await read_model.commit(self.name, slot, batch, require_active=True)
        await read_model.drop_projection(self.name)
        assert (await read_model.meta(self.name)).slots == {}
        assert await read_model.dead_letters(self.name, slot) == []
        assert await read_model.projection_names() == []

    # -- commits -------------------------------------------------------------------

    async def test_a_commit_applies_the_writes_and_moves_the_checkpoint(
        self, read_model: ReadModel[W]
    ) -> None:
        slot = await self.active_slot(read_model)
        batch = self.batch(read_model, slot, 1, 4)
        assert await read_model.commit(self.name, slot, batch, require_active=True) == []
        snapshot = await read_model.snapshot(self.name)
        assert self.value(snapshot, "count")[1] == 4
        assert self.value(snapshot, "last")[0] == "4"
        meta = await read_model.meta(self.name)
        assert meta.slots[slot].position == pos(4)
        assert meta.slots[slot].events == 4
        assert meta.slots[slot].event_time == batch.event_time

    async def test_a_commit_from_a_stale_checkpoint_applies_nothing(
        self, read_model: ReadModel[W]
    ) -> None:
        slot = await self.active_slot(read_model)
        await read_model.commit(
            self.name, slot, self.batch(read_model, slot, 1, 3), require_active=True
        )
        stale = self.batch(read_model, slot, 2, 5, previous=pos(1))
        with pytest.raises(CheckpointConflictError) as caught:
            await read_model.commit(self.name, slot, stale, require_active=True)
        assert caught.value.found == pos(3) and caught.value.expected == pos(1)
        assert self.value(await read_model.snapshot(self.name), "count")[1] == 3
        assert await read_model.checkpoint(self.name) == pos(3)

    async def test_committing_the_same_batch_twice_applies_it_once(
        self, read_model: ReadModel[W]
    ) -> None:
        slot = await self.active_slot(read_model)
        batch = self.batch(read_model, slot, 1, 3)
        await read_model.commit(self.name, slot, batch, require_active=True)
        await read_model.commit(self.name, slot, batch, require_active=True)
        assert self.value(await read_model.snapshot(self.name), "count")[1] == 3

    async def test_a_live_commit_into_a_swapped_out_slot_is_refused(
        self, read_model: ReadModel[W]
    ) -> None:
        old = await self.active_slot(read_model)
        new = (await read_model.create_slot(self.name, 1)).slot
        assert await read_model.activate(self.name, new)
        with pytest.raises(SlotNotActiveError) as caught:
            await read_model.commit(
                self.name, old, self.batch(read_model, old, 1, 1), require_active=True
            )
        assert caught.value.active == new
        assert await read_model.snapshot(self.name, old) == {}

    async def test_racing_writers_of_one_slot_apply_each_batch_once(
        self, read_model: ReadModel[W]
    ) -> None:
        slot = await self.active_slot(read_model)
        batches = [self.batch(read_model, slot, 1, 5) for _ in range(4)]
        results = await asyncio.gather(
            *(read_model.commit(self.name, slot, b, require_active=True) for b in batches),
            return_exceptions=True,
        )
        # Identical batches: the first applies, the others find it applied or conflict.
        assert all(r == [] or isinstance(r, CheckpointConflictError) for r in results)
        assert self.value(await read_model.snapshot(self.name), "count")[1] == 5

    @settings(max_examples=15)
    @given(
        plan=st.lists(
            st.tuples(st.integers(1, 4), st.sampled_from(["once", "twice", "stale"])),
            min_size=1,
            max_size=8,
        )
    )
    async def test_replayed_and_stale_batches_never_double_apply(
        self, read_model: ReadModel[W], plan: list[tuple[int, str]]
    ) -> None:
        await read_model.drop_projection(self.name)
        slot = await self.active_slot(read_model)
        done = 0
        for size, how in plan:
            batch = self.batch(read_model, slot, done + 1, done + size)
            await read_model.commit(self.name, slot, batch, require_active=True)
            if how == "twice":
                await read_model.commit(self.name, slot, batch, require_active=True)
            elif how == "stale" and done > 0:
                # Overlaps what is applied and reaches past it: refused as a whole.
                stale = self.batch(read_model, slot, done, done + size + 1, previous=pos(done - 1))
                with pytest.raises(CheckpointConflictError):
                    await read_model.commit(self.name, slot, stale, require_active=True)
            done += size
        snapshot = await read_model.snapshot(self.name)
        assert self.value(snapshot, "count")[1] == done
        assert self.value(snapshot, "last")[0] == str(done)
        assert await read_model.checkpoint(self.name) == pos(done)

    # -- dead letters --------------------------------------------------------------

    async def test_dead_letters_commit_with_the_batch_and_round_trip(
        self, read_model: ReadModel[W]
    ) -> None:
        slot = await self.active_slot(read_model)
        batch = self.batch(read_model, slot, 1, 4)
        parked = [letter(self.name, slot, 4), letter(self.name, slot, 2)]
        batch.dead_letters.extend(parked)
        await read_model.commit(self.name, slot, batch, require_active=True)
        stored = await read_model.dead_letters(self.name, slot)
        assert stored == sorted(parked, key=lambda d: d.position)
        assert stored[0].event.data == {"n": 2, "odd.key": {"$x": [1, "two"]}}

    async def test_a_conflicting_commit_parks_nothing(self, read_model: ReadModel[W]) -> None:
        slot = await self.active_slot(read_model)
        await read_model.commit(
            self.name, slot, self.batch(read_model, slot, 1, 2), require_active=True
        )
        stale = self.batch(read_model, slot, 2, 3, previous=pos(1))
        stale.dead_letters.append(letter(self.name, slot, 3))
        with pytest.raises(CheckpointConflictError):
            await read_model.commit(self.name, slot, stale, require_active=True)
        assert await read_model.dead_letters(self.name, slot) == []

    async def test_resolved_blocking_letters_are_unparked_by_the_batch(
        self, read_model: ReadModel[W]
    ) -> None:
        slot = await self.active_slot(read_model)
        first = self.batch(read_model, slot, 1, 2)
        first.dead_letters.append(letter(self.name, slot, 3, blocking=True))
        await read_model.commit(self.name, slot, first, require_active=True)
        second = self.batch(read_model, slot, 3, 4)
        second.resolved.append(pos(3))
        await read_model.commit(self.name, slot, second, require_active=True)
        assert await read_model.dead_letters(self.name, slot) == []

    async def test_park_stores_and_overwrites(self, read_model: ReadModel[W]) -> None:
        slot = await self.active_slot(read_model)
        first = letter(self.name, slot, 5)
        await read_model.park(self.name, slot, [first])
        again = first.failed_again(RuntimeError("still"), "tb", datetime.now(UTC))
        await read_model.park(self.name, slot, [again])
        assert await read_model.dead_letters(self.name, slot) == [again]
        assert again.replays == 1 and again.error == "still"

    async def test_the_partial_flag_of_a_dead_letter_is_kept(
        self, read_model: ReadModel[W]
    ) -> None:
        slot = await self.active_slot(read_model)
        partial = replace(letter(self.name, slot, 4), partial=True)
        batch = self.batch(read_model, slot, 1, 3)
        batch.dead_letters.append(letter(self.name, slot, 2))
        await read_model.commit(self.name, slot, batch, require_active=True)
        await read_model.park(self.name, slot, [partial])
        parked = await read_model.dead_letters(self.name, slot)
        assert [(d.position, d.partial) for d in parked] == [(pos(2), False), (pos(4), True)]

    async def test_a_replay_applies_once_and_unparks(self, read_model: ReadModel[W]) -> None:
        slot = await self.active_slot(read_model)
        batch = self.batch(read_model, slot, 1, 3)
        parked = letter(self.name, slot, 2)
        batch.dead_letters.append(parked)
        await read_model.commit(self.name, slot, batch, require_active=True)

        writes = read_model.new_writes(self.name, slot)
        writes.begin_event(0, parked.position)
        self.add(writes, "replayed", 7)
        await read_model.commit_replay(self.name, slot, parked, writes)
        with pytest.raises(DeadLetterNotFoundError):
            await read_model.commit_replay(self.name, slot, parked, writes)
        snapshot = await read_model.snapshot(self.name)
        assert self.value(snapshot, "replayed")[1] == 7
        assert await read_model.dead_letters(self.name, slot) == []
        assert await read_model.checkpoint(self.name) == pos(3)

    async def test_replaying_a_blocking_letter_moves_the_checkpoint_past_it(
        self, read_model: ReadModel[W]
    ) -> None:
        slot = await self.active_slot(read_model)
        batch = self.batch(read_model, slot, 1, 2)
        stuck = letter(self.name, slot, 3, blocking=True)
        batch.dead_letters.append(stuck)
        await read_model.commit(self.name, slot, batch, require_active=True)

        writes = read_model.new_writes(self.name, slot)
        writes.begin_event(0, stuck.position)
        self.add(writes, "count", 1)
        await read_model.commit_replay(self.name, slot, stuck, writes)
        assert await read_model.checkpoint(self.name) == pos(3)
        assert self.value(await read_model.snapshot(self.name), "count")[1] == 3

    async def test_a_blocking_replay_behind_the_checkpoint_is_refused(
        self, read_model: ReadModel[W]
    ) -> None:
        slot = await self.active_slot(read_model)
        stuck = letter(self.name, slot, 3, blocking=True)
        batch = self.batch(read_model, slot, 1, 4)
        batch.dead_letters.append(stuck)
        await read_model.commit(self.name, slot, batch, require_active=True)
        writes = read_model.new_writes(self.name, slot)
        writes.begin_event(0, stuck.position)
        self.add(writes, "count", 1)
        with pytest.raises(CheckpointConflictError):
            await read_model.commit_replay(self.name, slot, stuck, writes)
        assert self.value(await read_model.snapshot(self.name), "count")[1] == 4
        assert await read_model.dead_letters(self.name, slot) == [stuck]

    # -- writes buffers -----------------------------------------------------------

    async def test_rolled_back_writes_are_not_committed(self, read_model: ReadModel[W]) -> None:
        slot = await self.active_slot(read_model)
        writes = read_model.new_writes(self.name, slot)
        writes.begin_event(0, pos(1))
        self.add(writes, "count", 1)
        mark = writes.begin_event(1, pos(2))
        self.add(writes, "count", 100)
        self.put(writes, "last", "bad")
        writes.rollback(mark)
        writes.begin_event(1, pos(2))
        self.add(writes, "count", 1)
        batch = CommitBatch(previous=START, position=pos(2), writes=writes, events=2)
        await read_model.commit(self.name, slot, batch, require_active=True)
        snapshot = await read_model.snapshot(self.name)
        assert self.value(snapshot, "count")[1] == 2
        assert self.value(snapshot, "last")[0] is None
        assert writes.event_of(0) == 0 and writes.event_of(len(writes) - 1) == 1
