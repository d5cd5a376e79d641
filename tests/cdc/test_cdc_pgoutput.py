"""The pgoutput v1 decoder, on byte strings built from the protocol's documentation."""

from __future__ import annotations

from datetime import UTC, datetime

import cdc_wire as wire
import pytest

from messaging._cdc_errors import CdcDecodeError
from messaging._cdc_pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Column,
    Commit,
    Delete,
    Insert,
    Origin,
    Relation,
    Truncate,
    TypeInfo,
    Update,
    decode,
    format_lsn,
    parse_lsn,
)

WHEN = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)


def test_begin_and_commit() -> None:
    assert decode(wire.begin(0x1_0000_0010, WHEN, 4242)) == Begin(0x1_0000_0010, WHEN, 4242)
    assert decode(wire.commit(0x20, 0x58, WHEN)) == Commit(0x20, 0x58, WHEN)


def test_relation_with_key_flags_and_type_modifiers() -> None:
    data = wire.relation(
        16384,
        "public",
        "rides",
        [("id", 23, -1, True), ("at", 1114, 3, False)],
        identity="f",
    )
    assert decode(data) == Relation(
        16384,
        "public",
        "rides",
        "f",
        (Column("id", 23, -1, True), Column("at", 1114, 3, False)),
    )


def test_type_and_origin() -> None:
    assert decode(wire.type_message(70000, "public", "mood")) == TypeInfo(70000, "public", "mood")
    assert decode(wire.origin(0x99, "node-a")) == Origin(0x99, "node-a")


def test_insert_with_null_and_text() -> None:
    assert decode(wire.insert(5, ["1", None, "zürich"])) == Insert(5, ("1", None, "zürich"))


def test_update_without_old_image() -> None:
    assert decode(wire.update(5, ["1", "b"])) == Update(5, None, None, ("1", "b"))


@pytest.mark.parametrize("kind", ["K", "O"])
def test_update_with_old_key_or_old_row(kind: str) -> None:
    message = decode(wire.update(5, ["2", ...], old=["1", None], old_kind=kind))
    assert message == Update(5, kind, ("1", None), ("2", UNCHANGED_TOAST))


def test_delete_with_key_and_full_old_row() -> None:
    assert decode(wire.delete(5, ["1", None])) == Delete(5, "K", ("1", None))
    assert decode(wire.delete(5, ["1", "x"], old_kind="O")) == Delete(5, "O", ("1", "x"))


def test_truncate_options() -> None:
    assert decode(wire.truncate([5, 6], cascade=True)) == Truncate((5, 6), True, False)
    assert decode(wire.truncate([7], restart_identity=True)) == Truncate((7,), False, True)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty message"),
        (b"Z\x00", "unknown pgoutput message type 'Z'"),
        (wire.insert(5, ["1"])[:-1], "overruns the message at 13"),
        (wire.begin(1, WHEN, 2)[:-2], "message ends at byte 19"),
        (wire.insert(5, ["1"]) + b"\x00", "1 bytes left over"),
        (b"I" + (5).to_bytes(4, "big") + b"X", "expected 'N'"),
        (b"D" + (5).to_bytes(4, "big") + b"N" + wire.tuple_data(["1"]), "expected 'K' or 'O'"),
        (b"I\x00\x00\x00\x05N\x00\x01q", "unknown column kind 'q'"),
        (b"Y\x00\x00\x00\x05abc", "unterminated string"),
    ],
)
def test_malformed_messages_are_refused_with_the_place(data: bytes, fragment: str) -> None:
    with pytest.raises(CdcDecodeError, match=fragment.replace("(", r"\(")):
        decode(data)


def test_lsn_text_round_trip() -> None:
    assert format_lsn(0x16_B374D848) == "16/B374D848"
    assert parse_lsn("16/B374D848") == 0x16_B374D848
    with pytest.raises(CdcDecodeError, match="invalid LSN 'x'"):
        parse_lsn("x")
