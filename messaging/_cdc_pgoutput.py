"""A pure decoder of PostgreSQL's ``pgoutput`` logical replication protocol, version 1.

Each message of a replication slot read with the ``pgoutput`` plugin is one of
Begin, Commit, Origin, Relation, Type, Insert, Update, Delete or Truncate (the
layout is in PostgreSQL's "Logical Replication Message Formats").  ``decode``
turns the bytes of one message into a frozen record; nothing here does I/O, so
every branch is tested on byte strings built by hand.

Column values stay as PostgreSQL's text output (``pgoutput`` v1 sends text);
turning them into JSON values is ``_cdc_values``' job.  A value is ``None`` for
SQL NULL and ``UNCHANGED_TOAST`` for a large value the update did not touch
(PostgreSQL does not send it again).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, TypeAlias

from ._cdc_errors import CdcDecodeError

#: A TOASTed column an UPDATE left alone: its value is not in the WAL record.
UNCHANGED_TOAST: Final = object()

#: PostgreSQL's epoch for timestamps on the wire.
POSTGRES_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)

ColumnValue: TypeAlias = "str | object | None"


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int
    commit_time: datetime
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    commit_lsn: int
    end_lsn: int
    commit_time: datetime


@dataclass(frozen=True, slots=True)
class Origin:
    lsn: int
    name: str


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_oid: int
    type_modifier: int
    is_key: bool


@dataclass(frozen=True, slots=True)
class Relation:
    oid: int
    schema: str
    table: str
    replica_identity: str  # 'd' default, 'n' nothing, 'f' full, 'i' index
    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class TypeInfo:
    oid: int
    schema: str
    name: str


@dataclass(frozen=True, slots=True)
class Insert:
    relation_oid: int
    new: tuple[ColumnValue, ...]


@dataclass(frozen=True, slots=True)
class Update:
    relation_oid: int
    # 'K': the old key columns (the key changed); 'O': the whole old row
    # (REPLICA IDENTITY FULL); None: no old image was logged.
    old_kind: str | None
    old: tuple[ColumnValue, ...] | None
    new: tuple[ColumnValue, ...]


@dataclass(frozen=True, slots=True)
class Delete:
    relation_oid: int
    old_kind: str
    old: tuple[ColumnValue, ...]


@dataclass(frozen=True, slots=True)
class Truncate:
    relation_oids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


Message: TypeAlias = (
    Begin | Commit | Origin | Relation | TypeInfo | Insert | Update | Delete | Truncate
)

_INT8 = struct.Struct("!B")
_INT16 = struct.Struct("!h")
_INT32 = struct.Struct("!i")
_UINT32 = struct.Struct("!I")
_INT64 = struct.Struct("!q")
_UINT64 = struct.Struct("!Q")


class _Reader:
    __slots__ = ("data", "offset")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, layout: struct.Struct) -> int:
        end = self.offset + layout.size
        if end > len(self.data):
            raise CdcDecodeError(f"message ends at byte {len(self.data)}, expected {end}")
        (value,) = layout.unpack_from(self.data, self.offset)
        self.offset = end
        return int(value)

    def byte(self) -> str:
        return chr(self.take(_INT8))

    def string(self) -> str:
        end = self.data.find(b"\0", self.offset)
        if end < 0:
            raise CdcDecodeError(f"unterminated string at byte {self.offset}")
        text = self.data[self.offset : end].decode()
        self.offset = end + 1
        return text

    def raw(self, length: int) -> bytes:
        end = self.offset + length
        if length < 0 or end > len(self.data):
            raise CdcDecodeError(f"value of {length} bytes overruns the message at {self.offset}")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def timestamp(self) -> datetime:
        return POSTGRES_EPOCH + timedelta(microseconds=self.take(_INT64))

    def tuple_data(self) -> tuple[ColumnValue, ...]:
        # The hot path of decoding (every row of every change): reads the buffer
        # directly instead of through ``take``/``byte``, about twice as fast.
        data, offset, size = self.data, self.offset, len(self.data)
        if offset + 2 > size:
            raise CdcDecodeError(f"message ends at byte {size}, expected {offset + 2}")
        (count,) = _INT16.unpack_from(data, offset)
        offset += 2
        values: list[ColumnValue] = []
        append = values.append
        for _ in range(count):
            if offset >= size:
                raise CdcDecodeError(f"message ends at byte {size}, expected {offset + 1}")
            kind = data[offset]
            offset += 1
            if kind == 0x74:  # 't': text
                if offset + 4 > size:
                    raise CdcDecodeError(f"message ends at byte {size}, expected {offset + 4}")
                (length,) = _INT32.unpack_from(data, offset)
                offset += 4
                end = offset + length
                if length < 0 or end > size:
                    raise CdcDecodeError(
                        f"value of {length} bytes overruns the message at {offset}"
                    )
                append(data[offset:end].decode())
                offset = end
            elif kind == 0x6E:  # 'n': NULL
                append(None)
            elif kind == 0x75:  # 'u': unchanged TOAST
                append(UNCHANGED_TOAST)
            else:
                raise CdcDecodeError(f"unknown column kind {chr(kind)!r} at byte {offset - 1}")
        self.offset = offset
        return tuple(values)

    def done(self, what: str) -> None:
        if self.offset != len(self.data):
            raise CdcDecodeError(
                f"{what} message has {len(self.data) - self.offset} bytes left over"
            )


def decode(data: bytes) -> Message:
    """One pgoutput v1 message; ``CdcDecodeError`` if the bytes do not form one."""
    if not data:
        raise CdcDecodeError("empty message")
    reader = _Reader(data)
    tag = reader.byte()
    message: Message
    if tag == "B":
        message = Begin(reader.take(_UINT64), reader.timestamp(), reader.take(_UINT32))
    elif tag == "C":
        reader.take(_INT8)  # flags: unused in v1
        message = Commit(reader.take(_UINT64), reader.take(_UINT64), reader.timestamp())
    elif tag == "O":
        message = Origin(reader.take(_UINT64), reader.string())
    elif tag == "R":
        message = _relation(reader)
    elif tag == "Y":
        message = TypeInfo(reader.take(_UINT32), reader.string(), reader.string())
    elif tag == "I":
        oid = reader.take(_UINT32)
        _expect(reader, "N", "insert")
        message = Insert(oid, reader.tuple_data())
    elif tag == "U":
        message = _update(reader)
    elif tag == "D":
        oid = reader.take(_UINT32)
        kind = reader.byte()
        if kind not in ("K", "O"):
            raise CdcDecodeError(f"delete of relation {oid}: expected 'K' or 'O', got {kind!r}")
        message = Delete(oid, kind, reader.tuple_data())
    elif tag == "T":
        count = reader.take(_INT32)
        options = reader.take(_INT8)
        oids = tuple(reader.take(_UINT32) for _ in range(count))
        message = Truncate(oids, bool(options & 1), bool(options & 2))
    else:
        raise CdcDecodeError(f"unknown pgoutput message type {tag!r}")
    reader.done(type(message).__name__)
    return message


def _relation(reader: _Reader) -> Relation:
    oid = reader.take(_UINT32)
    schema = reader.string()
    table = reader.string()
    identity = reader.byte()
    columns = []
    for _ in range(reader.take(_INT16)):
        flags = reader.take(_INT8)
        name = reader.string()
        columns.append(Column(name, reader.take(_UINT32), reader.take(_INT32), bool(flags & 1)))
    return Relation(oid, schema, table, identity, tuple(columns))


def _update(reader: _Reader) -> Update:
    oid = reader.take(_UINT32)
    kind = reader.byte()
    old_kind: str | None = None
    old = None
    if kind in ("K", "O"):
        old_kind = kind
        old = reader.tuple_data()
        kind = reader.byte()
    if kind != "N":
        raise CdcDecodeError(f"update of relation {oid}: expected 'N', got {kind!r}")
    return Update(oid, old_kind, old, reader.tuple_data())


def _expect(reader: _Reader, tag: str, what: str) -> None:
    found = reader.byte()
    if found != tag:
        raise CdcDecodeError(f"{what}: expected {tag!r}, got {found!r}")


def format_lsn(lsn: int) -> str:
    """PostgreSQL's text form of an LSN, ``'16/B374D848'``."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """The integer of an LSN in PostgreSQL's text form."""
    high, _, low = text.partition("/")
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise CdcDecodeError(f"invalid LSN {text!r}: expected 'X/Y' in hex") from None
