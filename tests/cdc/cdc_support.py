"""Helpers shared by the CDC tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from messaging._cdc_capture import CdcOptions, ChangeCapture
from messaging._cdc_envelope import ChangeEvent

REPO = Path(__file__).resolve().parents[2]


def chronik(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m chronik *args`` in ``cwd``, with the connection settings in ``env``
    only (none inherited), data under ``cwd``, and no terminal to ask on."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "CHRONIK_SCHEMA"}
    }
    environment.update(PYTHONPATH=str(REPO), CHRONIK_DATA_DIR=str(cwd / ".chronik"), **env)
    return subprocess.run(
        [sys.executable, "-m", "chronik", *args],
        env=environment,
        cwd=cwd,
        stdin=subprocess.DEVNULL,  # not a terminal: a command that would ask refuses
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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


@contextlib.asynccontextmanager
async def snapshotted(table: CdcTable) -> AsyncIterator[ChangeCapture]:
    """A capture of ``table`` under its connector name, the initial snapshot read and
    delivered: from here on the connector's slot keeps every change (what the CLI
    tests then inspect, drop or find busy)."""
    options = CdcOptions(tables=(table.table,), name=table.name)
    async with ChangeCapture(table.dsn, options) as capture:
        async for _ in capture.snapshot():
            pass
        await capture.snapshot_delivered()
        yield capture
