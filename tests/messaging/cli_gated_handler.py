"""A handler for ``chronik consume --handler`` that holds every message until a gate
file exists: it keeps the group behind for as long as a test needs to look."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from eventstore import Event
from messaging import HandlerContext


async def handle(event: Event, context: HandlerContext) -> None:
    gate = Path(os.environ["CHRONIK_TEST_GATE"])
    while not gate.exists():  # noqa: ASYNC110, ASYNC240 (a file has nothing to await)
        await asyncio.sleep(0.02)
