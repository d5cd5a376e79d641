"""``chronik history`` writes each event as it reads it: a long stream never sits in memory.

The command's handler runs in-process here against the real store, with the
store's reader and the output watched: each line must be written while the
reader is still at that event, not after it has read the whole stream.
"""

from __future__ import annotations

import argparse
import io
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cli_runner import Chronik

from chronik import Config
from chronik._cmd_store import run_history
from chronik._context import Context
from eventstore import NewEvent, PostgresEventStore, RecordedEvent

EVENTS = 2_500  # three pages of the store's reader


@pytest.fixture(scope="module")
async def long_stream(
    chronik: Chronik, cli_schema: str, make_pg_store: Callable[..., Awaitable[PostgresEventStore]]
) -> tuple[PostgresEventStore, str]:
    assert chronik("init").code == 0
    store = await make_pg_store(schema=cli_schema)
    stream = f"long-{uuid.uuid4().hex[:8]}"
    for start in range(0, EVENTS, 500):
        await store.append(
            stream, [NewEvent("x.Counted", {"n": n}) for n in range(start, start + 500)]
        )
    return store, stream


class _WatchedStore:
    """The real store; counts the events its stream reader has handed out."""

    def __init__(self, store: PostgresEventStore) -> None:
        self.store = store
        self.handed_out = 0

    async def stream_version(self, stream_id: str) -> int:
        return await self.store.stream_version(stream_id)

    async def read_stream(self, *args: Any) -> AsyncIterator[RecordedEvent]:
        async for event in self.store.read_stream(*args):
            self.handed_out += 1
            yield event


class _Services:
    def __init__(self, store: _WatchedStore) -> None:
        self.watched = store

    async def store(self) -> _WatchedStore:
        return self.watched


class _Recorder(io.StringIO):
    """Output that notes how far the reader was at every write."""

    def __init__(self, store: _WatchedStore) -> None:
        super().__init__()
        self.watched = store
        self.read_at_write: list[int] = []

    def write(self, text: str) -> int:
        self.read_at_write.append(self.watched.handed_out)
        return super().write(text)


async def _history(store: PostgresEventStore, stream: str, *, json_output: bool) -> _Recorder:
    watched = _WatchedStore(store)
    out = _Recorder(watched)
    config = Config(None, None, None, None, None, store.schema, Path(".chronik"))
    ctx = Context(config, _Services(watched), out=out, err=io.StringIO())  # type: ignore[arg-type]
    args = argparse.Namespace(
        stream=stream, raw=True, from_version=1, to_version=None, json=json_output
    )
    assert await run_history(ctx, args) == 0
    assert watched.handed_out == EVENTS
    return out


async def test_json_is_written_event_by_event(long_stream: tuple[PostgresEventStore, str]) -> None:
    out = await _history(*long_stream, json_output=True)
    # One write per event, each while the reader stands at that very event.
    assert out.read_at_write[:EVENTS] == list(range(1, EVENTS + 1))
    events = json.loads(out.getvalue())
    assert [e["data"]["n"] for e in events] == list(range(EVENTS))


async def test_table_is_written_while_reading(long_stream: tuple[PostgresEventStore, str]) -> None:
    out = await _history(*long_stream, json_output=False)
    # The first lines go out after a small sample fixes the column widths.
    assert out.read_at_write[0] < 1_000
    assert out.read_at_write[-1] == EVENTS
    assert len(set(out.read_at_write)) > EVENTS // 2
    lines = out.getvalue().splitlines()
    assert len(lines) == EVENTS + 1
    assert lines[-1].split()[0] == str(EVENTS)


def test_long_history_through_the_command(
    chronik: Chronik, long_stream: tuple[PostgresEventStore, str]
) -> None:
    _, stream = long_stream
    events = chronik("history", stream, "--raw", "--json").json()
    assert [e["version"] for e in events] == list(range(1, EVENTS + 1))
    table = chronik("history", stream, "--raw", "--from-version", "2001")
    assert table.code == 0, table.describe()
    assert len(table.stdout.splitlines()) == EVENTS - 2000 + 1
    assert f"{EVENTS - 2000} of {EVENTS} event(s) shown" in table.stderr
