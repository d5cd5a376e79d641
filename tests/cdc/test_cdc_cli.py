"""``chronik cdc`` and ``chronik cdc status`` as a user runs them (real subprocesses)."""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from cdc_support import CdcTable, chronik, snapshotted


async def test_status_shows_the_wal_a_slot_keeps_and_warns(
    cdc_table: CdcTable, tmp_path: Path
) -> None:
    table = cdc_table
    async with snapshotted(table):
        pass
    # Changes nobody reads: the slot must keep their WAL.
    for n in range(20):
        await table.execute(f"INSERT INTO {{t}} (id, driver) VALUES ({n}, repeat('x', 500))")

    done = chronik("cdc", "status", "--name", table.name, "--json", cwd=tmp_path,
                   DATABASE_URL=table.dsn)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["connector"] == table.name
    assert row["slot"] == f"chronik_cdc_{table.name}"
    assert row["active"] is False
    assert row["retained_bytes"] > 10_000  # at least the rows written above

    warned = chronik("cdc", "status", "--name", table.name, "--warn-bytes", "1000",
                     cwd=tmp_path, DATABASE_URL=table.dsn)  # fmt: skip
    assert warned.returncode == 1
    assert f"warning: slot chronik_cdc_{table.name} keeps" in warned.stderr
    assert "(over 1000)" in warned.stderr

    missing = chronik("cdc", "status", "--name", "nope", cwd=tmp_path, DATABASE_URL=table.dsn)
    assert missing.returncode == 3
    assert "no CDC connector 'nope'" in missing.stderr


def test_cdc_needs_a_table(tmp_path: Path) -> None:
    done = chronik("cdc", cwd=tmp_path, DATABASE_URL="postgresql://nowhere.invalid/x")
    assert done.returncode == 2
    assert "no table to capture" in done.stderr


@pytest.fixture(scope="module")
def replica_dsn() -> Iterator[str]:
    """A server with the default wal_level (replica): what CDC must refuse clearly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    data = Path(tempfile.mkdtemp(prefix="chronik-pg-replica-"))
    data.chmod(0o755)
    server = pgserver.get_server(data, cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(data, ignore_errors=True)


def test_wal_level_not_logical_says_how_to_fix_it(replica_dsn: str, tmp_path: Path) -> None:
    done = chronik("cdc", "--table", "public.rides", cwd=tmp_path, DATABASE_URL=replica_dsn)
    assert done.returncode == 1
    assert "wal_level is 'replica'" in done.stderr
    assert "ALTER SYSTEM SET wal_level = logical" in done.stderr
    assert "restart PostgreSQL" in done.stderr


def test_embedded_server_is_ready_for_cdc() -> None:
    # Not tmp_path: pytest prunes old basetemp folders, and a parallel pytest run
    # would delete the embedded server's data under it (see tests/conftest.py).
    folder = Path(tempfile.mkdtemp(prefix="chronik-cdc-embedded-"))
    folder.chmod(0o755)
    try:
        # No DATABASE_URL: the embedded server starts with logical decoding on, so
        # the first thing CDC trips over is the missing table, not the wal_level.
        done = chronik("cdc", "--table", "public.rides", "--until-idle", cwd=folder)
        assert done.returncode == 1, done.stderr
        assert "table public.rides does not exist" in done.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)
