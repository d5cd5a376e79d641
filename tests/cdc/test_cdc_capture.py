"""Change capture on the real server: snapshot, then streamed changes, field by field."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from cdc_support import CdcTable, read_until

from messaging._cdc_capture import CdcOptions, ChangeCapture
from messaging._cdc_errors import CdcSetupError

NOW_MS = 1700000000000

ROW_1 = {
    "id": 1,
    "small": 1,
    "big": 10,
    "fare": "1.00",
    "driver": "zoe",
    "code": None,
    "active": False,
    "ref": None,
    "day": None,
    "local_at": None,
    "at": None,
    "doc": None,
    "raw": None,
    "tags": None,
    "scores": None,
    "span": None,
}

ROW_2 = {
    "id": 2,
    "small": -3,
    "big": 9007199254740993,
    "fare": "12.50",
    "driver": "ann",
    "code": "A1",
    "active": True,
    "ref": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "day": 19844,
    "local_at": 1714557600250000,
    "at": "2024-05-01T10:00:00Z",
    "doc": '{"a": [1, 2]}',
    "raw": '{"b":1}',
    "tags": ["a", "b c"],
    "scores": [1, None],
    "span": "1 day 02:00:00",
}

INSERT_2 = """
INSERT INTO {t} VALUES (2, -3, 9007199254740993, 12.5, 'ann', 'A1', true,
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-05-01', '2024-05-01 10:00:00.25',
  '2024-05-01 12:00:00+02', '{{"a": [1, 2]}}', '{{"b":1}}', '{{a,"b c"}}', '{{1,NULL}}',
  '1 day 2 hours')
"""


async def _in_transaction(table: CdcTable, *statements: str) -> int:
    """Run statements in one transaction; return its transaction id."""
    async with await psycopg.AsyncConnection.connect(table.dsn) as connection:
        for statement in statements:
            await connection.execute(statement.format(t=table.table))
        cursor = await connection.execute("SELECT pg_current_xact_id()::text::bigint")
        row = await cursor.fetchone()
        await connection.commit()
    assert row is not None
    return int(row[0])


def _source(table: CdcTable, value: dict[str, Any], snapshot: str, txid: int | None) -> None:
    source = value["source"]
    assert source == {
        "version": "chronik-0.1.0",
        "connector": "postgresql",
        "name": "shop",
        "ts_ms": source["ts_ms"],
        "snapshot": snapshot,
        "db": "postgres",
        "schema": table.schema,
        "table": "rides",
        "txId": txid,
        "lsn": source["lsn"],
        "xmin": None,
    }
    assert isinstance(source["lsn"], int) and source["lsn"] > 0
    # The commit time, from the database clock: within this test's run.
    assert STARTED_MS - 60_000 <= source["ts_ms"] <= time.time() * 1000 + 60_000


STARTED_MS = time.time() * 1000


async def test_snapshot_then_insert_update_delete_truncate(cdc_table: CdcTable) -> None:
    table = cdc_table
    await table.execute(
        "INSERT INTO {t} (id, small, big, fare, driver, active) VALUES (1, 1, 10, 1, 'zoe', false)"
    )
    options = CdcOptions(
        tables=(table.table,), name=table.name, topic_prefix="shop", full_before=True,
        clock=lambda: NOW_MS,
    )  # fmt: skip
    topic = f"shop.{table.schema}.rides"
    async with ChangeCapture(table.dsn, options) as capture:
        snapshot = [event async for page in capture.snapshot() for event in page]
        await capture.snapshot_delivered()
        assert [(e.topic, e.key) for e in snapshot] == [(topic, {"id": 1})]
        value = snapshot[0].value
        assert value is not None
        assert {k: v for k, v in value.items() if k != "source"} == {
            "before": None, "after": ROW_1, "op": "r", "ts_ms": NOW_MS, "transaction": None,
        }  # fmt: skip
        _source(table, value, "last", None)

        inserted = await _in_transaction(table, INSERT_2)
        updated = await _in_transaction(table, "UPDATE {t} SET driver = 'bob' WHERE id = 2")
        deleted = await _in_transaction(table, "DELETE FROM {t} WHERE id = 1")
        truncated = await _in_transaction(table, "TRUNCATE {t}")
        events = await read_until(capture, 5)

    assert [(e.topic, e.op, e.key) for e in events] == [
        (topic, "c", {"id": 2}),
        (topic, "u", {"id": 2}),
        (topic, "d", {"id": 1}),
        (topic, "tombstone", {"id": 1}),
        (topic, "t", None),
    ]
    values = [e.value for e in events]
    expected = [
        ({"before": None, "after": ROW_2, "op": "c"}, inserted),
        ({"before": ROW_2, "after": {**ROW_2, "driver": "bob"}, "op": "u"}, updated),
        ({"before": ROW_1, "after": None, "op": "d"}, deleted),
        (None, None),
        ({"before": None, "after": None, "op": "t"}, truncated),
    ]
    for value, (fields, txid) in zip(values, expected, strict=True):
        if fields is None:
            assert value is None  # the tombstone after the delete
            continue
        assert value is not None
        assert {k: v for k, v in value.items() if k != "source"} == {
            **fields, "ts_ms": NOW_MS, "transaction": None,
        }  # fmt: skip
        _source(table, value, "false", txid)
    lsns = [v["source"]["lsn"] for v in values if v is not None]
    assert lsns == sorted(lsns)


async def test_restart_resumes_after_the_confirmed_transaction(cdc_table: CdcTable) -> None:
    table = cdc_table
    options = CdcOptions(tables=(table.table,), name=table.name)
    async with ChangeCapture(table.dsn, options) as capture:
        assert [e async for e in capture.snapshot()] == []  # an empty table
        await capture.snapshot_delivered()
        await table.execute("INSERT INTO {t} (id) VALUES (1)")
        first = await read_until(capture, 1, confirm=True)
        await table.execute("INSERT INTO {t} (id) VALUES (2)")
        unconfirmed = await read_until(capture, 1, confirm=False)
    assert [e.key for e in first + unconfirmed] == [{"id": 1}, {"id": 2}]
    async with ChangeCapture(table.dsn, options) as capture:
        assert not capture.snapshot_due
        again = await read_until(capture, 1, confirm=True)
    # Read but never confirmed: delivered again.  Confirmed: never again.
    assert [e.key for e in again] == [{"id": 2}]


async def test_table_without_key_needs_full_before_images(cdc_table: CdcTable) -> None:
    await cdc_table.execute(f"CREATE TABLE {cdc_table.schema}.loose (v text)")
    options = CdcOptions(tables=(f"{cdc_table.schema}.loose",), name=cdc_table.name)
    with pytest.raises(CdcSetupError, match=rf"{cdc_table.schema}\.loose has no primary key"):
        async with ChangeCapture(cdc_table.dsn, options):
            pass


async def test_missing_table_is_named(cdc_table: CdcTable) -> None:
    options = CdcOptions(tables=(f"{cdc_table.schema}.nope",), name=cdc_table.name)
    with pytest.raises(CdcSetupError, match=rf"table {cdc_table.schema}\.nope does not exist"):
        async with ChangeCapture(cdc_table.dsn, options):
            pass
