"""An app whose projection can be held mid-batch, for the interrupt tests.

While the file named by ``CHRONIK_TEST_HOLD`` exists, the handler waits (after
touching ``CHRONIK_TEST_ENTERED``), so a test can signal a rebuild that is
certainly between its start and its swap.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import ClassVar

from chronik import App
from eventstore import Event, EventCodec, RecordedEvent
from projections import Projection, RedisWrites


class Ticked(Event):
    event_type: ClassVar[str] = "slow.Ticked"


def _path(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value) if value else None


def ticks() -> Projection[RedisWrites]:
    projection = Projection("ticks", writes=RedisWrites, codec=EventCodec([Ticked]))

    @projection.on(Ticked)
    async def ticked(event: Ticked, envelope: RecordedEvent, w: RedisWrites) -> None:
        w.hincrby("ticks", "count", 1)
        entered, hold = _path("CHRONIK_TEST_ENTERED"), _path("CHRONIK_TEST_HOLD")
        if entered is not None:
            entered.touch()
        while hold is not None and hold.exists():  # noqa: ASYNC110 (a file, not an event)
            await asyncio.sleep(0.02)

    return projection


app = App(name="slow", events=[Ticked], projections=[ticks()])
