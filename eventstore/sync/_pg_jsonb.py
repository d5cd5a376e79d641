"""Generated from eventstore/_pg_jsonb.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``eventstore._pg_jsonb``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

from typing import Any

from psycopg import Connection, Cursor

from eventstore._pg_jsonb import OrjsonbBinaryLoader


def event_cursor(connection: Connection[Any]) -> Cursor[Any]:
    """A cursor returning event rows as tuples, in binary, jsonb parsed by orjson."""
    cursor = connection.cursor(binary=True)
    cursor.adapters.register_loader("jsonb", OrjsonbBinaryLoader)
    return cursor
