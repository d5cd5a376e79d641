"""What a first try ran into: each rough edge of the command, smoothed and pinned."""

from __future__ import annotations

import argparse
import re
import signal
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from cli_runner import REPO, Chronik
from support.projection_runs import feed_settled
from test_cli_interrupts import finish

from aggregates import Repository
from aggregates.ledger import Ledger
from chronik._errors import classify
from chronik.cli import build_parser
from eventstore import NewEvent, PostgresEventStore

BANK = ("--app", "cli_bank_app:app")
LEDGERS = ("--app", "cli_bug_app:app_v2")
SLOW = ("--app", "cli_slow_app:app")


@pytest.fixture(scope="module")
async def seeded(
    chronik: Chronik, cli_schema: str, make_pg_store: Callable[..., Awaitable[PostgresEventStore]]
) -> str:
    """Five bank streams, ticks for the slow app, and one ledger; the ledger's id."""
    from cli_slow_app import Ticked

    assert chronik("init").code == 0
    store = await make_pg_store(schema=cli_schema)
    for number in range(5):
        await store.append(f"bank-{number}", [NewEvent("bank.Debited", {"amount": "1"})])
    await store.append(f"tick-{uuid.uuid4().hex[:6]}", [Ticked(), Ticked()])
    ledger = f"l{uuid.uuid4().hex[:6]}"
    await Repository(store, [Ledger]).create(Ledger, ledger, lambda x: x.open("Lee", "EUR"))
    return ledger


def test_streams_limit_says_how_many_there_are(chronik: Chronik, seeded: str) -> None:
    result = chronik("streams", "--type", "bank", "--limit", "2", *BANK)
    assert result.code == 0, result.describe()
    assert len(result.stdout.splitlines()) == 3
    assert "2 of 5 stream(s) shown (--limit 2)" in result.stderr
    everything = chronik("streams", "--type", "bank", *BANK)
    assert "shown" not in everything.stderr


def test_tables_print_positions_as_typed(chronik: Chronik, seeded: str) -> None:
    ran = chronik("run", "--until-caught-up", *SLOW)
    assert ran.code == 0, ran.describe()
    status = chronik("projections", "status", *SLOW)
    for table in (ran.stdout, status.stdout):
        assert re.search(r"\s\d+:\d+\s", table), table
        assert '"' not in table, table


def test_position_past_the_head_is_named(chronik: Chronik, seeded: str) -> None:
    result = chronik("state", "ledger", seeded, "--at-position", "999999999:1", *LEDGERS)
    assert result.code == 0, result.describe()
    assert "past the feed's head" in result.stderr


def test_a_stream_id_given_as_id_gets_a_suggestion(chronik: Chronik, seeded: str) -> None:
    result = chronik("state", "ledger", f"ledger-{seeded}", *LEDGERS)
    assert result.code == 3, result.describe()
    assert f"did you mean '{seeded}'?" in result.stderr
    plain = chronik("state", "ledger", "nobody-here", *LEDGERS)
    assert plain.code == 3 and "did you mean" not in plain.stderr


def test_app_problems_say_they_come_from_the_app(bare_chronik: Chronik, tmp_path: Path) -> None:
    (tmp_path / "broken_import_app.py").write_text("import no_such_dependency_xyz\n")
    (tmp_path / "broken_factory_app.py").write_text(
        "def make():\n    raise ValueError('bad config value 42')\n"
    )
    command = Chronik(bare_chronik.env, tmp_path)
    cases = {
        "aggregates.ledger:Ledger": (2, "is the class Ledger, not a chronik.App"),
        "broken_import_app:app": (
            1,
            "app module 'broken_import_app' failed to import (from --app / CHRONIK_APP): "
            "ModuleNotFoundError: No module named 'no_such_dependency_xyz'",
        ),
        "broken_factory_app:make": (1, "ValueError: bad config value 42"),
    }
    for target, (code, message) in cases.items():
        result = command("streams", "--app", target)
        assert result.code == code, result.describe()
        assert message in result.stderr
        assert "unexpected" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_debug_does_not_ask_for_debug(bare_chronik: Chronik, tmp_path: Path) -> None:
    (tmp_path / "broken_import_app.py").write_text("import no_such_dependency_xyz\n")
    result = Chronik(bare_chronik.env, tmp_path)(
        "--debug", "streams", "--app", "broken_import_app:app"
    )
    assert result.code == 1
    assert "Traceback" in result.stderr
    assert "--debug" not in result.stderr.strip().splitlines()[-1]
    assert "--debug" not in classify(RuntimeError("boom"), debug=True)[1]
    assert "--debug" in classify(RuntimeError("boom"))[1]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--data-dir", "/proc/nope", "streams"), "cannot use /proc/nope"),
        (("--database-url", "not-a-url", "streams"), "is not a PostgreSQL URL"),
        (("--redis-url", "localhost:6379", "projections", "status"), "is not a Redis URL"),
        (("--mongo-url", "localhost", "projections", "status"), "is not a MongoDB URL"),
    ],
)
def test_unusable_settings_are_usage_errors(
    bare_chronik: Chronik, args: tuple[str, ...], says: str
) -> None:
    result = bare_chronik(*args)
    assert result.code == 2, result.describe()
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_second_runner_says_it_stands_by(chronik: Chronik, seeded: str) -> None:
    first = chronik.start("run", *SLOW)
    second = None
    try:
        seen = ""
        assert first.stderr is not None
        while "leading" not in seen:
            line = first.stderr.readline()
            assert line, seen
            seen += line
        second = chronik.start("run", *SLOW)
        assert second.stderr is not None
        told = ""
        while "standing by" not in told:
            line = second.stderr.readline()
            assert line, told
            told += line
        assert "standing by for ticks: another runner leads it" in told
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
    assert finish(first)[0] == 0
    assert second is not None and finish(second)[0] == 0


async def test_prune_lists_then_drops_old_slots_and_scratch_copies(
    chronik: Chronik,
    seeded: str,
    cli_schema: str,
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
) -> None:
    # A rebuild catches up with the head it can see: wait until no transaction elsewhere
    # holds it below the seeded events, so that the last rebuild must leave lag 0.
    await feed_settled(await make_pg_store(schema=cli_schema))
    assert chronik("rebuild", "ticks", *SLOW).code == 0
    assert chronik("rebuild", "ticks", *SLOW).code == 0  # the first build is retired now
    assert chronik("replay", "ticks", "--into", "try-1", *SLOW).code == 0
    listed = chronik("projections", "prune", "ticks", "--json", *SLOW).json()
    assert listed["dropped"] is False
    assert [s["state"] for s in listed["slots"]] and {s["state"] for s in listed["slots"]} <= {
        "retired",
        "abandoned",
    }
    assert [s["name"] for s in listed["scratch"]] == ["try-1"]
    assert chronik("projections", "prune", "ticks", "--json", *SLOW).json() == listed
    table = chronik("projections", "prune", "ticks", *SLOW)
    assert "try-1" in table.stdout and "--yes" in table.stderr
    dropped = chronik("projections", "prune", "ticks", "--yes", *SLOW)
    assert dropped.code == 0, dropped.describe()
    assert "dropped" in dropped.stdout
    after = chronik("projections", "prune", "ticks", "--json", *SLOW).json()
    assert (after["slots"], after["scratch"]) == ([], [])
    row = chronik("projections", "status", "--json", *SLOW).json()[0]
    assert [s["state"] for s in row["slots"]] == ["active"]
    assert row["lag_events"] == 0


def _command_paths(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += [f"{prefix} {name}", *_command_paths(sub, f"{prefix} {name}")]
    return paths


def test_the_command_page_lists_every_command() -> None:
    # The README links to docs/cli.md, the one page that names every command.
    page = (REPO / "docs" / "cli.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| `chronik ")]
    paths = _command_paths(build_parser(), "chronik")
    assert len(paths) > 30, paths
    for path in paths:
        assert any(row.startswith(f"| `{path}") for row in rows) or f"`{path} " in page, path
    assert "docs/cli.md" in (REPO / "README.md").read_text()
