"""``chronik cdc drop``: a forgotten connector's slot would keep WAL forever.

On the embedded PostgreSQL with logical WAL: a connector is set up and left with
changes nobody reads; ``drop`` refuses while a capture of it runs, refuses without
``--yes`` when nobody can be asked, then removes the slot, the publication and
the state row; a second drop says there is nothing left.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from cdc_support import CdcTable, chronik, snapshotted

from messaging import CdcSetupError, ChangeCapture


async def _left(table: CdcTable) -> tuple[bool, bool, bool]:
    """Whether the slot, the publication and the state row exist."""
    name = f"chronik_cdc_{table.name}"
    async with await psycopg.AsyncConnection.connect(table.dsn, autocommit=True) as c:
        slot = await c.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (name,))
        has_slot = await slot.fetchone() is not None
        pub = await c.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,))
        has_pub = await pub.fetchone() is not None
        state = await c.execute(
            "SELECT 1 FROM chronik.cdc_connectors WHERE name = %s", (table.name,)
        )
        has_state = await state.fetchone() is not None
    return has_slot, has_pub, has_state


async def test_drop_removes_a_connectors_slot_and_publication(
    cdc_table: CdcTable, tmp_path: Path
) -> None:
    table = cdc_table
    async with snapshotted(table) as capture:
        # While this capture runs: no second run of the connector, and no drop.
        with pytest.raises(CdcSetupError, match="running in another process"):
            async with ChangeCapture(table.dsn, capture.options):
                pass
        busy = chronik("cdc", "drop", table.name, "--yes", cwd=tmp_path, DATABASE_URL=table.dsn)
        assert busy.returncode == 1, busy.stderr
        assert f"CDC connector {table.name!r} is running in another process" in busy.stderr
    await table.execute("INSERT INTO {t} (id, driver) VALUES (1, repeat('x', 500))")
    assert await _left(table) == (True, True, True)

    unasked = chronik("cdc", "drop", table.name, cwd=tmp_path, DATABASE_URL=table.dsn)
    assert unasked.returncode == 2, unasked.stderr
    assert "pass --yes" in unasked.stderr
    assert await _left(table) == (True, True, True)

    dropped = chronik("cdc", "drop", table.name, "--yes", cwd=tmp_path, DATABASE_URL=table.dsn)
    assert dropped.returncode == 0, dropped.stderr
    assert f"slot chronik_cdc_{table.name}" in dropped.stdout
    assert await _left(table) == (False, False, False)
    status = chronik("cdc", "status", "--name", table.name, cwd=tmp_path, DATABASE_URL=table.dsn)
    assert status.returncode == 3, status.stderr

    again = chronik("cdc", "drop", table.name, "--yes", cwd=tmp_path, DATABASE_URL=table.dsn)
    assert again.returncode == 0, again.stderr
    assert "nothing to drop" in again.stderr
