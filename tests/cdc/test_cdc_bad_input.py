"""Bad CDC options are refused before anything exists on the server; a connector's
name means the same connector in every case it is written in."""

from __future__ import annotations

import psycopg
import pytest
from cdc_support import CdcTable

from messaging import CdcOptions, CdcSetupError, ChangeCapture, drop_cdc_connector

BAD_OPTIONS: list[tuple[dict[str, object], str]] = [
    # A string is iterable: it used to become one "table" per character.
    ({"tables": "public.orders"}, "tables must be a tuple of 'schema.table' names"),
    ({"tables": ("a.b.c",)}, "invalid table name 'a.b.c'"),
    ({"tables": ("public.",)}, "invalid table name 'public.'"),
    # PostgreSQL refuses slot names over 63 characters.
    ({"name": "n" * 60}, "is too long: the slot chronik_cdc_<name> may have at most 63"),
    ({"topic_prefix": "shop orders"}, "invalid topic prefix 'shop orders'"),
    ({"topic_prefix": ""}, "invalid topic prefix ''"),
    ({"max_changes": 0}, "max_changes must be a whole number >= 1, not 0"),
    ({"snapshot_page": -5}, "snapshot_page must be a whole number >= 1, not -5"),
]


@pytest.mark.parametrize(
    ("settings", "says"),
    BAD_OPTIONS,
    ids=["str tables", "three parts", "no table", "long name", "space", "empty", "max", "page"],
)
def test_bad_options_are_refused_when_made(settings: dict[str, object], says: str) -> None:
    with pytest.raises(CdcSetupError) as raised:
        CdcOptions(**{"tables": ("public.orders",), **settings})  # type: ignore[arg-type]
    assert says in str(raised.value)


async def _slot_exists(table: CdcTable) -> bool:
    async with await psycopg.AsyncConnection.connect(table.dsn, autocommit=True) as c:
        cursor = await c.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
            (f"chronik_cdc_{table.name}",),
        )
        return await cursor.fetchone() is not None


async def test_drop_finds_a_connector_named_in_upper_case(cdc_table: CdcTable) -> None:
    # The slot is created in lower case; a drop by the name as the user typed it
    # used to find nothing, say so with exit 0, and leave the slot keeping WAL.
    name = cdc_table.name.upper()
    options = CdcOptions(tables=(cdc_table.table,), name=name)
    async with ChangeCapture(cdc_table.dsn, options) as capture:
        async for _ in capture.snapshot():
            pass
        await capture.snapshot_delivered()
    assert await _slot_exists(cdc_table)
    dropped = await drop_cdc_connector(cdc_table.dsn, name)
    assert dropped.slot and dropped.publication and dropped.state
    assert not await _slot_exists(cdc_table)
