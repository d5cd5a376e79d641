"""CDC fixtures: a fresh schema with a table of the common types, and slot cleanup."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from cdc_support import CdcTable

COMMON_TYPES = """
CREATE TABLE {schema}.rides (
    id integer PRIMARY KEY,
    small smallint,
    big bigint,
    fare numeric(10, 2),
    driver text,
    code varchar(8),
    active boolean,
    ref uuid,
    day date,
    local_at timestamp,
    at timestamptz,
    doc jsonb,
    raw json,
    tags text[],
    scores integer[],
    span interval
)
"""


@pytest.fixture
async def cdc_table(pg_dsn: str) -> AsyncIterator[CdcTable]:
    name = f"t{uuid.uuid4().hex[:10]}"
    schema = f"cdc_{name}"
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as c:
        await c.execute(f"CREATE SCHEMA {schema}")
        await c.execute(COMMON_TYPES.format(schema=schema))
    yield CdcTable(pg_dsn, schema, name)
    # A slot left behind keeps WAL on disk for the rest of the session.
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as c:
        await c.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s AND NOT active",
            (f"chronik_cdc_{name}",),
        )
        await c.execute(f"DROP PUBLICATION IF EXISTS chronik_cdc_{name}")
