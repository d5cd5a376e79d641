"""Ctrl-C and SIGTERM: exit 130 without a traceback, and nothing left half-done.

Each test signals a real ``chronik`` process at a moment it waits for (a file
the app's handler touches, a directory the embedded server creates), never
after a sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cli_runner import Chronik

from eventstore import PostgresEventStore

APP = ("--app", "cli_slow_app:app")
DEADLINE = 90.0


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    """Until ``condition()`` holds; fail (with the process's output) if it exits first."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"chronik exited {process.returncode} first\n{out}\n{err}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the condition never held")
        time.sleep(0.02)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"chronik did not stop after the signal\n{out}\n{err}")
    return process.returncode, out, err


@pytest.fixture(scope="module")
async def ticks(
    chronik: Chronik, cli_schema: str, make_pg_store: Callable[..., Awaitable[PostgresEventStore]]
) -> Chronik:
    """Events for the slow app, projected once (so rebuilds have a live slot to keep)."""
    from cli_slow_app import Ticked

    assert chronik("init").code == 0
    store = await make_pg_store(schema=cli_schema)
    await store.append(f"tick-{uuid.uuid4().hex[:6]}", [Ticked(), Ticked(), Ticked()])
    first = chronik("rebuild", "ticks", *APP)
    assert first.code == 0, first.describe()
    return chronik


def _slots(chronik: Chronik) -> dict[str, str]:
    row = chronik("projections", "status", "--json", *APP).json()[0]
    return {slot["slot"]: slot["state"] for slot in row["slots"]}


def _interrupted_rebuild(chronik: Chronik, tmp_path: Path, signal_number: int) -> str:
    """Start a rebuild, signal it mid-build; its stderr."""
    hold, entered = tmp_path / "hold", tmp_path / "entered"
    hold.touch()
    env = {**chronik.env, "CHRONIK_TEST_HOLD": str(hold), "CHRONIK_TEST_ENTERED": str(entered)}
    process = Chronik(env, chronik.cwd).start("rebuild", "ticks", *APP)
    try:
        wait_for(entered.exists, process)  # the new slot exists and is being built
        process.send_signal(signal_number)
    finally:
        hold.unlink()
    code, _, err = finish(process)
    assert code == 130, err
    assert "Traceback" not in err
    assert "interrupted before its swap" in err
    return err


@pytest.mark.parametrize(
    ("signal_number", "cleanup"),
    [(signal.SIGINT, ("rebuild", "ticks")), (signal.SIGTERM, ("run", "--until-caught-up"))],
)
def test_interrupted_rebuild_exits_130_and_leaves_no_building_slot(
    ticks: Chronik, tmp_path: Path, signal_number: int, cleanup: tuple[str, ...]
) -> None:
    live = {slot for slot, state in _slots(ticks).items() if state == "active"}
    _interrupted_rebuild(ticks, tmp_path, signal_number)
    slots = _slots(ticks)
    assert "building" not in slots.values(), slots
    abandoned = [slot for slot, state in slots.items() if state == "abandoned"]
    assert len(abandoned) == 1, slots
    assert {slot for slot, state in slots.items() if state == "active"} == live
    table = ticks("projections", "status", *APP)
    assert f"abandoned {abandoned[0]}" in table.stdout and "building" not in table.stdout
    # The next rebuild (or run) drops what the interrupted one left.
    after = ticks(*cleanup, *APP)
    assert after.code == 0, after.describe()
    assert f"dropped slot(s) {abandoned[0]}" in after.stderr
    assert "abandoned" not in _slots(ticks).values()


def test_replay_interrupted_exits_130(ticks: Chronik, tmp_path: Path) -> None:
    hold, entered = tmp_path / "hold", tmp_path / "entered"
    hold.touch()
    env = {**ticks.env, "CHRONIK_TEST_HOLD": str(hold), "CHRONIK_TEST_ENTERED": str(entered)}
    process = Chronik(env, ticks.cwd).start("replay", "ticks", "--into", "held", *APP)
    try:
        wait_for(entered.exists, process)
        process.send_signal(signal.SIGINT)
    finally:
        hold.unlink()
    code, _, err = finish(process)
    assert code == 130, err
    assert "Traceback" not in err and "interrupted" in err


def _postgres_of(data: Path) -> list[Any]:
    import psutil

    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            if "postgres" in (process.info["name"] or "") and str(data) in " ".join(
                process.info["cmdline"] or []
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_interrupt_while_the_embedded_database_starts(
    bare_chronik: Chronik, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = {**bare_chronik.env, "CHRONIK_DATA_DIR": str(data)}
    process = Chronik(env, tmp_path).start("init")
    wait_for((data / "pg").exists, process)
    process.send_signal(signal.SIGINT)
    code, _, err = finish(process)
    assert code in (0, 130), err  # it may have finished just before the signal
    assert "Traceback" not in err
    if code == 130:
        assert err.strip().endswith("interrupted (SIGINT)"), err
    assert _postgres_of(data) == []


def _held_import(chronik: Chronik, tmp_path: Path, args: tuple[str, ...], **env: str) -> str:
    """Start ``chronik *args`` with an import held, signal it once it is certainly
    inside that import, release it; its stderr (after checking exit 130)."""
    hold, entered = tmp_path / "hold", tmp_path / "entered"
    hold.touch()
    held = {
        **chronik.env,
        **env,
        "CHRONIK_TEST_IMPORT_HOLD": str(hold),
        "CHRONIK_TEST_IMPORT_ENTERED": str(entered),
    }
    process = Chronik(held, chronik.cwd).start(*args)
    try:
        wait_for(entered.exists, process)
        process.send_signal(signal.SIGINT)
    finally:
        hold.unlink()
    code, _, err = finish(process)
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    return err


def test_interrupt_while_the_command_imports_prints_one_line(
    ticks: Chronik, tmp_path: Path
) -> None:
    # Held while importing chronik.cli: the heavy imports before the command runs.
    hook = Path(__file__).with_name("import_hold")
    err = _held_import(
        ticks,
        tmp_path,
        ("replay", "ticks", "--into", "x", *APP),
        PYTHONPATH=f"{hook}{os.pathsep}{ticks.env['PYTHONPATH']}",
    )
    assert err == "chronik: error: interrupted\n"


def test_interrupt_while_the_app_imports_prints_one_line(ticks: Chronik, tmp_path: Path) -> None:
    # Held inside the app module's import (the command's loop is running, its signal
    # handler waits for the import to end): the command ends before doing anything.
    err = _held_import(ticks, tmp_path, ("projections", "status", "--app", "cli_import_app:app"))
    assert err.strip().splitlines() == ["chronik: error: interrupted (SIGINT)"], err
