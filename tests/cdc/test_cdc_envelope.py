"""Debezium envelopes and JSON values from decoded pgoutput messages (no server)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import cdc_wire as wire
import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging._cdc_envelope import ChangeDecoder, Envelopes
from messaging._cdc_errors import CdcDecodeError
from messaging._cdc_values import parse_array, to_json

WHEN = datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC)
WHEN_MS = 1714557600250
NOW_MS = 1714557601000

RIDES = wire.relation(
    900,
    "public",
    "rides",
    [("id", 23, -1, True), ("driver", 25, -1, False), ("fare", 1700, -1, False)],
)


def _decoder(**keys: Any) -> ChangeDecoder:
    return ChangeDecoder(Envelopes("shop", "appdb", lambda: NOW_MS), **keys)


def _source(lsn: int, txid: int = 77) -> dict[str, Any]:
    return {
        "version": "chronik-0.1.0",
        "connector": "postgresql",
        "name": "shop",
        "ts_ms": WHEN_MS,
        "snapshot": "false",
        "db": "appdb",
        "schema": "public",
        "table": "rides",
        "txId": txid,
        "lsn": lsn,
        "xmin": None,
    }


def _run(decoder: ChangeDecoder, *messages: bytes) -> list[Any]:
    decoder.feed(0x100, wire.begin(0x200, WHEN, 77))
    events = []
    for index, message in enumerate(messages):
        events += decoder.feed(0x110 + index, message)
    events += decoder.feed(0x200, wire.commit(0x200, 0x228, WHEN))
    return events


def test_insert_update_delete_envelopes_field_by_field() -> None:
    decoder = _decoder()
    events = _run(
        decoder,
        RIDES,
        wire.insert(900, ["1", "ann", "12.50"]),
        wire.update(900, ["1", "bob", "13.00"], old=["1", "ann", "12.50"], old_kind="O"),
        wire.delete(900, ["1", None, None]),
    )
    assert [(e.topic, e.key, e.value) for e in events] == [
        (
            "shop.public.rides",
            {"id": 1},
            {
                "before": None,
                "after": {"id": 1, "driver": "ann", "fare": "12.50"},
                "source": _source(0x111),
                "op": "c",
                "ts_ms": NOW_MS,
                "transaction": None,
            },
        ),
        (
            "shop.public.rides",
            {"id": 1},
            {
                "before": {"id": 1, "driver": "ann", "fare": "12.50"},
                "after": {"id": 1, "driver": "bob", "fare": "13.00"},
                "source": _source(0x112),
                "op": "u",
                "ts_ms": NOW_MS,
                "transaction": None,
            },
        ),
        (
            "shop.public.rides",
            {"id": 1},
            {
                "before": {"id": 1, "driver": None, "fare": None},
                "after": None,
                "source": _source(0x113),
                "op": "d",
                "ts_ms": NOW_MS,
                "transaction": None,
            },
        ),
        ("shop.public.rides", {"id": 1}, None),  # the tombstone
    ]
    # Every event of the transaction confirms at its end, in order.
    assert [e.position for e in events] == [(0x228, 0), (0x228, 1), (0x228, 2), (0x228, 3)]


def test_update_without_old_image_has_no_before() -> None:
    (event,) = _run(_decoder(), RIDES, wire.update(900, ["3", "cy", "1"]))
    assert event.value is not None
    assert (event.op, event.key, event.value["before"]) == ("u", {"id": 3}, None)


def test_primary_key_change_is_delete_tombstone_create() -> None:
    events = _run(
        _decoder(),
        RIDES,
        wire.update(900, ["2", "ann", "1"], old=["1", None, None], old_kind="K"),
    )
    assert [(e.op, e.key) for e in events] == [
        ("d", {"id": 1}),
        ("tombstone", {"id": 1}),
        ("c", {"id": 2}),
    ]
    assert events[0].value is not None and events[2].value is not None
    assert events[0].value["before"] == {"id": 1, "driver": None, "fare": None}
    assert events[2].value["after"] == {"id": 2, "driver": "ann", "fare": "1"}


def test_unchanged_toast_value_is_debeziums_placeholder() -> None:
    (event,) = _run(_decoder(), RIDES, wire.update(900, ["1", ..., "2"]))
    assert event.value is not None
    assert event.value["after"]["driver"] == "__debezium_unavailable_value"


def test_full_replica_identity_keys_by_the_primary_key_map() -> None:
    full = wire.relation(
        900, "public", "rides", [("id", 23, -1, True), ("driver", 25, -1, True)], identity="f"
    )
    (keyed,) = _run(
        _decoder(primary_keys={("public", "rides"): ("id",)}), full, wire.insert(900, ["4", "d"])
    )
    (unkeyed,) = _run(_decoder(), full, wire.insert(900, ["4", "d"]))
    assert keyed.key == {"id": 4}
    assert unkeyed.key is None


def test_truncate_is_one_keyless_event_per_table() -> None:
    (event,) = _run(_decoder(), RIDES, wire.truncate([900]))
    assert event.key is None
    assert event.value == {
        "before": None,
        "after": None,
        "source": _source(0x111),
        "op": "t",
        "ts_ms": NOW_MS,
        "transaction": None,
    }


def test_change_before_its_relation_is_refused() -> None:
    decoder = _decoder()
    decoder.feed(1, wire.begin(2, WHEN, 1))
    with pytest.raises(CdcDecodeError, match="relation 901 before its Relation message"):
        decoder.feed(2, wire.insert(901, ["1"]))


@pytest.mark.parametrize(
    ("oid", "modifier", "text", "expected"),
    [
        (21, -1, "-7", -7),
        (23, -1, "2147483647", 2147483647),
        (20, -1, "9223372036854775807", 9223372036854775807),
        (1700, -1, "-0.000100", "-0.000100"),
        (700, -1, "1.5", 1.5),
        (701, -1, "NaN", "NaN"),
        (16, -1, "t", True),
        (16, -1, "f", False),
        (25, -1, 'a "q"', 'a "q"'),
        (1043, 14, "short", "short"),
        (2950, -1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        (1082, -1, "2024-05-01", 19844),
        (1082, -1, "1969-12-31", -1),
        (1082, -1, "infinity", "infinity"),
        (1083, -1, "10:00:00.5", 36_000_500_000),
        (1114, -1, "2024-05-01 10:00:00.25", 1714557600250000),
        (1114, 3, "2024-05-01 10:00:00.25", 1714557600250),
        (1184, -1, "2024-05-01 12:00:00.25+02", "2024-05-01T10:00:00.25Z"),
        (1184, -1, "2024-05-01 10:00:00+00", "2024-05-01T10:00:00Z"),
        (1184, -1, "2024-05-01 15:30:00+05:30", "2024-05-01T10:00:00Z"),
        (114, -1, '{"a": [1, 2]}', '{"a": [1, 2]}'),
        (3802, -1, '{"a": 1}', '{"a": 1}'),
        (17, -1, "\\x00ff", "AP8="),
        (1007, -1, "{1,NULL,3}", [1, None, 3]),
        (1009, -1, '{"a,b","c\\"d",NULL,"NULL"}', ["a,b", 'c"d', None, "NULL"]),
        (1007, -1, "{{1,2},{3,4}}", [[1, 2], [3, 4]]),
        (1231, -1, "{}", []),
        (1185, -1, '{"2024-05-01 10:00:00+00"}', ["2024-05-01T10:00:00Z"]),
        (1186, -1, "1 day 02:00:00", "1 day 02:00:00"),  # interval stays text
        (869, -1, "10.0.0.1", "10.0.0.1"),  # inet stays text
    ],
)
def test_values_as_debezium_renders_them(oid: int, modifier: int, text: str, expected: Any) -> None:
    assert to_json(oid, modifier, text) == expected


def test_bad_values_name_the_type() -> None:
    with pytest.raises(CdcDecodeError, match="'x' of type oid 23"):
        to_json(23, -1, "x")
    with pytest.raises(CdcDecodeError, match="invalid array literal"):
        parse_array("{1,2")


_ELEMENT = st.one_of(st.none(), st.text(alphabet=st.characters(codec="utf-8"), max_size=8))


def _literal(items: list[str | None]) -> str:
    def quote(item: str | None) -> str:
        if item is None:
            return "NULL"
        return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "{" + ",".join(quote(item) for item in items) + "}"


@given(st.lists(_ELEMENT, max_size=6))
def test_array_literals_round_trip(items: list[str | None]) -> None:
    assert parse_array(_literal(items)) == items
