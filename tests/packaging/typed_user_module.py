"""A user's module, checked with ``mypy --strict`` against the installed wheel.

It uses the typed surface a service touches: events, a pydantic state, an
aggregate, the repository, a projection handler and reading back through a view.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from aggregates import Aggregate, Repository, applies, command
from chronik import App
from eventstore import Event, Position, PostgresEventStore, RecordedEvent
from projections import Projection, RedisReadModel, RedisWrites


class Tallied(Event):
    event_type: ClassVar[str] = "tally.Tallied"
    by: int


class Reset(Event):
    event_type: ClassVar[str] = "tally.Reset"


class TallyState(BaseModel):
    total: int = 0


class Tally(Aggregate[TallyState]):
    type_name = "tally"

    @command
    def add(self, by: int) -> None:
        self.record(Tallied(by=by))

    @applies
    def _tallied(self, event: Tallied) -> None:
        self.state.total += event.by

    @applies
    def _reset(self, event: Reset) -> None:
        self.state.total = 0


TOTALS: Projection[RedisWrites] = Projection("totals", writes=RedisWrites)


@TOTALS.on(Tallied)
def tallied(event: Tallied, envelope: RecordedEvent, writes: RedisWrites) -> None:
    writes.hincrby("totals", envelope.stream_id, event.by)


CHANGES: Projection[RedisWrites] = Projection("changes", writes=RedisWrites)


@CHANGES.on(Tallied, Reset)  # one handler of two classes takes their union
async def changed(event: Tallied | Reset, envelope: RecordedEvent, writes: RedisWrites) -> None:
    writes.rpush("changes", event.by if isinstance(event, Tallied) else "reset")


app = App(name="tally", aggregates=[Tally], projections=[TOTALS, CHANGES])


async def total(store: PostgresEventStore, tally_id: str) -> int:
    repository = Repository(store, [Tally])
    tally: Tally = await repository.update(Tally, tally_id, lambda t: t.add(2))
    position: Position | None = await store.head()
    print(position)
    return tally.state.total


async def projected(read_model: RedisReadModel, stream_id: str) -> str | None:
    view = await read_model.view(TOTALS.name)
    value = await view.client.hget(view.key("totals"), stream_id)
    return None if value is None else str(value)
