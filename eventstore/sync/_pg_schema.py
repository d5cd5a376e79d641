"""Generated from eventstore/_pg_schema.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``eventstore._pg_schema``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

from typing import Any

from psycopg import Connection, sql

from eventstore._pg_schema import _MIGRATIONS, notify_channel
from eventstore._schema_name import check_schema_name


def migrate(connection: Connection[Any], schema: str) -> int:
    """Create or upgrade the event store's tables; return how many steps were applied."""
    return apply_migrations(
        connection,
        schema,
        ledger="migrations",
        steps=_MIGRATIONS,
        channel=sql.Literal(notify_channel(schema)),
    )


def apply_migrations(
    connection: Connection[Any],
    schema: str,
    *,
    ledger: str,
    steps: list[list[str]],
    **names: sql.Composable,
) -> int:
    """Apply the numbered ``steps`` not yet recorded in ``<schema>.<ledger>``.

    Each step is a list of statements; ``{schema}`` becomes the quoted schema and
    each keyword in ``names`` its value.  Every package that keeps tables in the
    schema (snapshots, say) has a ledger of its own, so they upgrade apart, but all
    take the same lock: that serializes ``CREATE SCHEMA`` between them, which
    would otherwise fail on the catalog's unique index when two race.
    """
    check_schema_name(schema)
    schema_id = sql.Identifier(schema)
    ledger_id = sql.Identifier(schema, ledger)
    with connection.transaction():
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext('chronik.migrate.' || %s))", (schema,)
        )
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema_id))
        connection.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ( version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(ledger_id)
        )
        cursor = connection.execute(
            sql.SQL("SELECT coalesce(max(version), 0) FROM {}").format(ledger_id)
        )
        row: Any = cursor.fetchone()
        current = int(row[0]) if row else 0
        for number, statements in enumerate(steps[current:], start=current + 1):
            for statement in statements:
                connection.execute(sql.SQL(statement).format(schema=schema_id, **names))
            connection.execute(
                sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(ledger_id), (number,)
            )
        return len(steps) - current
