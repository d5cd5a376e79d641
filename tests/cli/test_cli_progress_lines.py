"""Progress through the real command with stderr redirected (not a terminal): plain
lines with counts and rate, no bar drawing, and nothing of it with ``--json``."""

from __future__ import annotations

import json
import queue
import re
import signal
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import IO

from cli_runner import Chronik, Result

from aggregates import Repository
from aggregates.ledger import Ledger
from eventstore import PostgresEventStore

V1 = ("--app", "cli_bug_app:app_v1")
V2 = ("--app", "cli_bug_app:app_v2")


def _progress(result: Result, label: str) -> list[str]:
    assert "\r" not in result.stderr and "\x1b" not in result.stderr, result.describe()
    return [line for line in result.stderr.splitlines() if line.startswith(label)]


def _finished(result: Result, label: str, unit: str) -> re.Match[str]:
    """The closing line: everything done, with the rate and the time it took.
    ``label``: a pattern (the projection's version is the app's)."""
    lines = [line for line in _progress(result, "") if re.match(label, line)]
    assert lines, result.describe()
    done = re.fullmatch(
        rf"{label}  100%  ([\d,]+)/\1 {unit}  \S+ {unit}/s  elapsed \d+:\d\d", lines[-1]
    )
    assert done, lines
    return done


async def test_long_commands_print_plain_progress_lines_and_none_with_json(
    chronik: Chronik,
    cli_schema: str,
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
) -> None:
    demo = chronik("demo")
    assert demo.code == 0, demo.describe()
    seeded = _progress(demo, "seeding")
    assert seeded and re.search(r"[\d,]+/[\d,]+ commands  \S+ commands/s", seeded[-1]), seeded

    rebuilt = chronik("rebuild", "ledger_balances")
    assert rebuilt.code == 0, rebuilt.describe()
    events = _finished(rebuilt, r"rebuilding ledger_balances v\d+", "events").group(1)
    assert int(events.replace(",", "")) > 0
    quiet = chronik("rebuild", "ledger_balances", "--json")
    assert json.loads(quiet.stdout)["name"] == "ledger_balances"
    assert _progress(quiet, "rebuilding") == []

    replayed = chronik("replay", "ledger_balances", "--into", "p1")
    assert replayed.code == 0, replayed.describe()
    _finished(replayed, r"replaying ledger_balances v\d+ into p1", "events")
    assert _progress(chronik("replay", "ledger_balances", "--into", "p2", "--json"), "repl") == []

    # Two poison events for the buggy app's 'freezes' projection, then replay them.
    store = await make_pg_store(schema=cli_schema)
    repository = Repository(store, [Ledger])
    for _ in range(2):
        frozen = f"f{uuid.uuid4().hex[:6]}"
        await repository.create(Ledger, frozen, lambda x: (x.open("Fay", "EUR"), x.deposit(1)))
        await repository.update(Ledger, frozen, lambda x: x.freeze("audit"))
    ran = chronik("run", "--until-caught-up", *V1)
    assert ran.code == 0, ran.describe()
    _finished(ran, "projecting", "events")
    parked = len(chronik("deadletters", "list", "freezes", "--json", *V1).json())
    assert parked >= 2
    still = chronik("deadletters", "replay", "freezes", "--json", *V1)  # the bug is still there
    assert still.code == 1 and len(json.loads(still.stdout)["failed"]) == parked
    assert _progress(still, "replaying") == []
    fixed = chronik("deadletters", "replay", "freezes", *V2)
    assert fixed.code == 0, fixed.describe()
    count = _finished(fixed, "replaying dead letters of freezes", "dead letters").group(1)
    assert int(count) == parked

    # A long-running 'run' shows its catch-up, then goes quiet.
    for _ in range(3):
        await repository.create(Ledger, uuid.uuid4().hex[:8], lambda x: x.open("Gil", "EUR"))
    await store.close()
    runner = chronik.start("run", *V2)
    try:
        assert runner.stderr is not None
        give_up = time.monotonic() + 90  # a hang guard, not a timing assertion
        while True:
            line = _line(runner.stderr, give_up)
            if line.startswith("catching up"):
                break
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.communicate(timeout=60)
    assert runner.returncode == 0
    assert re.fullmatch(r"catching up  100%  (\d+)/\1 events  \S+ events/s  elapsed \S+", line)


def _line(stream: IO[str], give_up: float) -> str:
    """The next line, read on a thread so that a silent process cannot hang the test."""
    found: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: found.put(stream.readline()), daemon=True).start()
    line = found.get(timeout=max(give_up - time.monotonic(), 0.1))
    assert line, "the process closed stderr without showing its catch-up"
    return line.rstrip("\n")
