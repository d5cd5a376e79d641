"""A plain handler for the ``chronik consume --handler`` test: notes what it got."""

from __future__ import annotations

import os
from pathlib import Path

from eventstore import Event
from messaging import HandlerContext


async def handle(event: Event, context: HandlerContext) -> None:
    envelope = context.envelope
    note = f"{envelope.stream_id} {envelope.version} {event.event_type}\n"
    with Path(os.environ["CHRONIK_TEST_HANDLED"]).open("a", encoding="utf-8") as out:  # noqa: ASYNC230
        out.write(note)
