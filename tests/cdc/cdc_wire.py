"""Builders of pgoutput v1 messages as bytes, written from the protocol's documentation."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    delta = moment - PG_EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _string(text: str) -> bytes:
    return text.encode() + b"\0"


def begin(final_lsn: int, commit_time: datetime, xid: int) -> bytes:
    return b"B" + struct.pack("!QqI", final_lsn, _micros(commit_time), xid)


def commit(commit_lsn: int, end_lsn: int, commit_time: datetime) -> bytes:
    return b"C" + struct.pack("!BQQq", 0, commit_lsn, end_lsn, _micros(commit_time))


def relation(
    oid: int,
    schema: str,
    table: str,
    columns: Sequence[tuple[str, int, int, bool]],
    identity: str = "d",
) -> bytes:
    body = struct.pack("!I", oid) + _string(schema) + _string(table) + identity.encode()
    body += struct.pack("!h", len(columns))
    for name, type_oid, modifier, is_key in columns:
        body += struct.pack("!B", 1 if is_key else 0) + _string(name)
        body += struct.pack("!Ii", type_oid, modifier)
    return b"R" + body


def type_message(oid: int, schema: str, name: str) -> bytes:
    return b"Y" + struct.pack("!I", oid) + _string(schema) + _string(name)


def origin(lsn: int, name: str) -> bytes:
    return b"O" + struct.pack("!Q", lsn) + _string(name)


def tuple_data(values: Sequence[str | type[Ellipsis] | None]) -> bytes:
    """Values: text, None for NULL, ``...`` for an unchanged TOAST value."""
    body = struct.pack("!h", len(values))
    for value in values:
        if value is None:
            body += b"n"
        elif value is ...:
            body += b"u"
        else:
            encoded = str(value).encode()
            body += b"t" + struct.pack("!i", len(encoded)) + encoded
    return body


def insert(oid: int, new: Sequence[str | None]) -> bytes:
    return b"I" + struct.pack("!I", oid) + b"N" + tuple_data(new)


def update(
    oid: int, new: Sequence[object], old: Sequence[object] | None = None, old_kind: str = "O"
) -> bytes:
    body = b"U" + struct.pack("!I", oid)
    if old is not None:
        body += old_kind.encode() + tuple_data(old)  # type: ignore[arg-type]
    return body + b"N" + tuple_data(new)  # type: ignore[arg-type]


def delete(oid: int, old: Sequence[str | None], old_kind: str = "K") -> bytes:
    return b"D" + struct.pack("!I", oid) + old_kind.encode() + tuple_data(old)


def truncate(oids: Sequence[int], cascade: bool = False, restart_identity: bool = False) -> bytes:
    options = (1 if cascade else 0) | (2 if restart_identity else 0)
    return b"T" + struct.pack("!iB", len(oids), options) + struct.pack(f"!{len(oids)}I", *oids)
