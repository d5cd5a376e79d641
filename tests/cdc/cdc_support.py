"""Helpers shared by the CDC tests."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import psycopg

from messaging._cdc_capture import ChangeCapture
from messaging._cdc_envelope import ChangeEvent


async def read_until(
    capture: ChangeCapture, count: int, *, confirm: bool = True, deadline: float = 30.0
) -> list[ChangeEvent]:
    """Read the slot until ``count`` events came (a condition, with a generous deadline)."""
    events: list[ChangeEvent] = []
    give_up = time.monotonic() + deadline
    while len(events) < count:
        batch = await capture.read()
        events += batch.events
        if confirm and batch.confirm_lsn is not None:
            await capture.confirm(batch.confirm_lsn)
        if not batch.events:
            if time.monotonic() > give_up:
                raise AssertionError(f"only {len(events)} of {count} changes came: {events}")
            await asyncio.sleep(0.02)
    return events


@dataclass
class CdcTable:
    dsn: str
    schema: str
    name: str  # the connector name: slot and publication chronik_cdc_<name>

    @property
    def table(self) -> str:
        return f"{self.schema}.rides"

    async def execute(self, statement: str, *params: object) -> None:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as c:
            await c.execute(statement.format(t=self.table), params or None)
