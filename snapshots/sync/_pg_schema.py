"""Generated from snapshots/_pg_schema.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``snapshots._pg_schema``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

from typing import Any

from psycopg import Connection

from eventstore.sync import apply_migrations
from snapshots._pg_schema import _MIGRATIONS


def migrate(connection: Connection[Any], schema: str) -> int:
    """Create or upgrade the snapshot table; return how many steps were applied."""
    return apply_migrations(connection, schema, ledger="snapshot_migrations", steps=_MIGRATIONS)
