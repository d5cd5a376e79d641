"""Decoded row changes as Debezium change events: topic, key and envelope.

``ChangeDecoder`` is fed the slot's messages in order and hands back, at each
commit, the transaction's change events.  It is pure: the clock for the
envelope's ``ts_ms`` is passed in.  What a Debezium consumer reads (JSON
converter with ``schemas.enable=false``) is what ``ChangeEvent.value`` holds::

    key   {"id": 7}                                  the primary key columns
    value {"before": {...} | null, "after": {...} | null,
           "source": {"version", "connector": "postgresql", "name", "ts_ms",
                      "snapshot": "true" | "last" | "false", "db", "schema",
                      "table", "txId", "lsn", "xmin": null},
           "op": "c" | "u" | "d" | "r" | "t", "ts_ms", "transaction": null}

on topic ``<prefix>.<schema>.<table>``.  A delete is followed by a tombstone
(same key, value None) so log compaction can drop the key; an update that
changes the primary key becomes a delete (+ tombstone) of the old key and a
create of the new one, as Debezium emits it.  A truncate is one ``op: t``
event per table with no key, before or after.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from . import _cdc_pgoutput as pg
from ._cdc_errors import CdcDecodeError
from ._cdc_values import UNAVAILABLE, converter

CONNECTOR_VERSION: Final = "chronik-0.1.0"


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One Kafka message of CDC: ``value`` None is a tombstone.

    ``commit_lsn`` is where the slot may be confirmed once this event and every
    earlier one are delivered (the end of its transaction; the snapshot's
    consistent point for snapshot reads).  ``sequence`` orders the events of one
    transaction.
    """

    topic: str
    key: dict[str, Any] | None
    value: dict[str, Any] | None
    schema: str
    table: str
    op: str
    commit_lsn: int
    sequence: int
    commit_time: datetime

    @property
    def position(self) -> tuple[int, int]:
        return (self.commit_lsn, self.sequence)


@dataclass(frozen=True)
class TableShape:
    """What the envelope needs about a table: its columns and its primary key."""

    schema: str
    table: str
    columns: tuple[pg.Column, ...]
    primary_key: tuple[str, ...]

    @functools.cached_property
    def _converters(self) -> tuple[tuple[str, Callable[[str], Any]], ...]:
        return tuple((c.name, converter(c.type_oid, c.type_modifier)) for c in self.columns)

    def row(self, values: Sequence[pg.ColumnValue]) -> dict[str, Any]:
        converters = self._converters
        if len(values) != len(converters):
            raise CdcDecodeError(
                f"row of {self.schema}.{self.table} has {len(values)} values for "
                f"{len(converters)} columns"
            )
        row: dict[str, Any] = {}
        for (name, convert), value in zip(converters, values, strict=True):
            if value is None:
                row[name] = None
            elif value is pg.UNCHANGED_TOAST:
                row[name] = UNAVAILABLE
            else:
                try:
                    row[name] = convert(value)  # type: ignore[arg-type]
                except ValueError as error:
                    column = next(c for c in self.columns if c.name == name)
                    raise CdcDecodeError(
                        f"cannot convert {value!r} in {self.schema}.{self.table}.{name} "
                        f"(type oid {column.type_oid}): {error}"
                    ) from error
        return row

    def key(self, row: Mapping[str, Any]) -> dict[str, Any] | None:
        if not self.primary_key:
            return None
        return {name: row[name] for name in self.primary_key}


@dataclass
class Envelopes:
    """Builds the events of one connector (topic prefix, database name, clock)."""

    prefix: str
    database: str
    now_ms: Callable[[], int]

    def topic(self, shape: TableShape) -> str:
        return f"{self.prefix}.{shape.schema}.{shape.table}"

    def source(
        self, shape: TableShape, commit_time: datetime, snapshot: str, xid: int | None, lsn: int
    ) -> dict[str, Any]:
        return {
            "version": CONNECTOR_VERSION,
            "connector": "postgresql",
            "name": self.prefix,
            "ts_ms": _millis(commit_time),
            "snapshot": snapshot,
            "db": self.database,
            "schema": shape.schema,
            "table": shape.table,
            "txId": xid,
            "lsn": lsn,
            "xmin": None,
        }

    def event(
        self,
        shape: TableShape,
        op: str,
        key: dict[str, Any] | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        source: dict[str, Any],
        commit_lsn: int,
        sequence: int,
        commit_time: datetime,
    ) -> ChangeEvent:
        value = {
            "before": before,
            "after": after,
            "source": source,
            "op": op,
            "ts_ms": self.now_ms(),
            "transaction": None,
        }
        return ChangeEvent(
            self.topic(shape), key, value, shape.schema, shape.table, op, commit_lsn, sequence,
            commit_time,
        )  # fmt: skip

    def tombstone(self, deleted: ChangeEvent, sequence: int) -> ChangeEvent:
        return ChangeEvent(
            deleted.topic, deleted.key, None, deleted.schema, deleted.table, "tombstone",
            deleted.commit_lsn, sequence, deleted.commit_time,
        )  # fmt: skip


@dataclass
class _Pending:
    """A change seen before its transaction's commit."""

    shape: TableShape
    message: pg.Insert | pg.Update | pg.Delete | None
    lsn: int


@dataclass
class ChangeDecoder:
    """Turns the slot's messages into change events, a whole transaction at a time.

    ``primary_keys`` maps ``(schema, table)`` to the key columns; without an
    entry the replica identity columns the Relation message marks are used
    (with ``REPLICA IDENTITY FULL`` that would be every column, hence the map).
    """

    envelopes: Envelopes
    primary_keys: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    _shapes: dict[int, TableShape] = field(default_factory=dict)
    #: The end of the last transaction committed (where a slot may be confirmed).
    last_commit_end: int | None = None
    _begin: pg.Begin | None = None
    _pending: list[_Pending | tuple[TableShape, int]] = field(default_factory=list)

    def feed(self, lsn: int, data: bytes) -> list[ChangeEvent]:
        """Take one message (at ``lsn``); return the events of a transaction it commits."""
        message = pg.decode(data)
        if isinstance(message, pg.Begin):
            self._begin = message
            self._pending = []
        elif isinstance(message, pg.Relation):
            self._shapes[message.oid] = self._shape(message)
        elif isinstance(message, pg.Insert | pg.Update | pg.Delete):
            self._pending.append(_Pending(self._shape_of(message.relation_oid), message, lsn))
        elif isinstance(message, pg.Truncate):
            for oid in message.relation_oids:
                self._pending.append((self._shape_of(oid), lsn))
        elif isinstance(message, pg.Commit):
            return self._commit(message)
        # Origin and Type messages carry nothing a JSON envelope needs.
        return []

    def _shape(self, relation: pg.Relation) -> TableShape:
        key = self.primary_keys.get((relation.schema, relation.table))
        if key is None:
            key = tuple(c.name for c in relation.columns if c.is_key)
            if relation.replica_identity == "f":
                key = ()  # FULL flags every column: not a key
        return TableShape(relation.schema, relation.table, relation.columns, key)

    def _shape_of(self, oid: int) -> TableShape:
        try:
            return self._shapes[oid]
        except KeyError:
            raise CdcDecodeError(f"change for relation {oid} before its Relation message") from None

    def _commit(self, commit: pg.Commit) -> list[ChangeEvent]:
        begin = self._begin
        if begin is None:
            raise CdcDecodeError(f"Commit at {pg.format_lsn(commit.commit_lsn)} without Begin")
        events: list[ChangeEvent] = []
        for pending in self._pending:
            if isinstance(pending, tuple):
                shape, lsn = pending
                self._add(events, shape, "t", None, None, None, begin, commit, lsn)
            else:
                self._change(events, pending, begin, commit)
        self._begin = None
        self._pending = []
        self.last_commit_end = commit.end_lsn
        return events

    def _change(
        self, events: list[ChangeEvent], pending: _Pending, begin: pg.Begin, commit: pg.Commit
    ) -> None:
        shape, message, lsn = pending.shape, pending.message, pending.lsn
        if isinstance(message, pg.Insert):
            after = shape.row(message.new)
            self._add(events, shape, "c", shape.key(after), None, after, begin, commit, lsn)
        elif isinstance(message, pg.Update):
            after = shape.row(message.new)
            before = shape.row(message.old) if message.old is not None else None
            new_key = shape.key(after)
            old_key = shape.key(before) if before is not None else new_key
            if old_key != new_key:
                # The primary key changed: Debezium's delete + tombstone + create.
                self._add(events, shape, "d", old_key, before, None, begin, commit, lsn)
                self._add(events, shape, "c", new_key, None, after, begin, commit, lsn)
            else:
                self._add(events, shape, "u", new_key, before, after, begin, commit, lsn)
        elif isinstance(message, pg.Delete):
            before = shape.row(message.old)
            self._add(events, shape, "d", shape.key(before), before, None, begin, commit, lsn)

    def _add(
        self,
        events: list[ChangeEvent],
        shape: TableShape,
        op: str,
        key: dict[str, Any] | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        begin: pg.Begin,
        commit: pg.Commit,
        lsn: int,
    ) -> None:
        source = self.envelopes.source(shape, commit.commit_time, "false", begin.xid, lsn)
        event = self.envelopes.event(
            shape, op, key, before, after, source, commit.end_lsn, len(events), commit.commit_time
        )
        events.append(event)
        if op == "d":
            events.append(self.envelopes.tombstone(event, len(events)))


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _millis(moment: datetime) -> int:
    # Integer arithmetic: a float timestamp can round a millisecond away.
    return (moment - _EPOCH) // timedelta(milliseconds=1)
