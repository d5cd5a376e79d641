"""``ChangeCapture``: one connector's changes, snapshot first, then streamed.

The sinks (Kafka, a projection's event source) drive it the same way::

    async with ChangeCapture(dsn, CdcOptions(tables=("public.rides",))) as capture:
        async for events in capture.snapshot():     # op "r", only when one is due
            deliver(events)
        await capture.snapshot_delivered()
        while True:
            batch = await capture.read()            # whole transactions, op c/u/d/t
            deliver(batch.events)
            if batch.confirm_lsn is not None:
                await capture.confirm(batch.confirm_lsn)

and the slot moves only in ``confirm``: whatever was read but not confirmed
when the process dies is read again by the next one.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import psycopg
from psycopg.conninfo import conninfo_to_dict

from eventstore import AsyncClosing

from . import _cdc_setup as setup
from ._cdc_envelope import ChangeDecoder, ChangeEvent, Envelopes, TableShape
from ._cdc_errors import CdcSetupError
from ._cdc_slot import SlotBatch, SlotReader


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


_TOPIC_PART = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


@dataclass(frozen=True, slots=True)
class CdcOptions:
    """What to capture and how.

    ``name`` names the slot and publication (``chronik_cdc_<name>``) and the
    state row; ``topic_prefix`` is Debezium's ``topic.prefix`` (topics are
    ``<prefix>.<schema>.<table>``, and ``source.name``); ``full_before`` sets
    ``REPLICA IDENTITY FULL`` so updates and deletes carry the whole old row.
    """

    tables: tuple[str, ...]
    name: str = "default"
    topic_prefix: str = "chronik"
    full_before: bool = False
    snapshot: bool = True
    state_schema: str = "chronik"
    max_changes: int = 5000
    snapshot_page: int = 1000
    clock: Callable[[], int] = field(default=_now_ms, compare=False)

    def __post_init__(self) -> None:
        # Checked here, before anything is created on the server.
        if isinstance(self.tables, str) or not isinstance(self.tables, tuple | list):
            raise CdcSetupError(
                f"tables must be a tuple of 'schema.table' names, not {self.tables!r}"
            )
        object.__setattr__(self, "tables", tuple(self.tables))
        if not self.tables:
            raise CdcSetupError("no table to capture: name at least one ('schema.table')")
        for table in self.tables:
            if not isinstance(table, str) or not setup.split_table(table)[1]:
                raise CdcSetupError(f"invalid table name {table!r}: expected 'schema.table'")
        setup.cdc_connector_name(self.name)
        if not isinstance(self.topic_prefix, str) or not _TOPIC_PART.match(self.topic_prefix):
            raise CdcSetupError(
                f"invalid topic prefix {self.topic_prefix!r}: Kafka topics "
                "<prefix>.<schema>.<table> need letters, digits, '.', '_' or '-'"
            )
        if not isinstance(self.state_schema, str) or not self.state_schema:
            raise CdcSetupError(f"invalid state schema {self.state_schema!r}")
        for option in ("max_changes", "snapshot_page"):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CdcSetupError(f"{option} must be a whole number >= 1, not {value!r}")

    @property
    def names(self) -> setup.ConnectorNames:
        return setup.ConnectorNames(setup.cdc_connector_name(self.name), self.state_schema)


class ChangeCapture(AsyncClosing):
    """Sets a connector up on ``async with`` and reads its changes."""

    def __init__(self, dsn: str, options: CdcOptions) -> None:
        self.dsn = dsn
        self.options = options
        self.names = options.names
        self.shapes: list[TableShape] = []
        self._connection: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._reader: SlotReader | None = None
        self._envelopes: Envelopes | None = None
        self._snapshot_due = False

    async def __aenter__(self) -> Self:
        try:
            await self._open()
        except BaseException:
            await self.close()
            raise
        return self

    async def _open(self) -> None:
        options, names = self.options, self.names
        connection = self._connection = await setup.connect(self.dsn)
        await setup.check_wal_level(connection)
        # One run per connector; 'chronik cdc drop' refuses while this session holds it.
        await setup.claim(connection, names)
        self.shapes = await setup.table_shapes(connection, options.tables)
        await setup.prepare_tables(connection, names, self.shapes, full_before=options.full_before)
        await setup.ensure_state_table(connection, names)
        database = str(conninfo_to_dict(self.dsn).get("dbname") or "")
        if not database:
            cursor = await connection.execute("SELECT current_database()")
            row = await cursor.fetchone()
            database = str(row[0]) if row else ""
        self._envelopes = Envelopes(options.topic_prefix, database, options.clock)
        self._snapshot_due = await setup.needs_snapshot(connection, names)
        if self._snapshot_due and not options.snapshot:
            # No snapshot wanted: a slot from now on is enough.
            async with setup.create_slot_with_snapshot(self.dsn, connection, names):
                pass
            await setup.mark_snapshot_done(connection, names)
            self._snapshot_due = False

    @property
    def snapshot_due(self) -> bool:
        return self._snapshot_due

    async def snapshot(self) -> AsyncIterator[list[ChangeEvent]]:
        """The snapshot rows (``op: r``) in pages, when one is due; else nothing.

        Creates the slot: the changes that follow are those after the snapshot.
        """
        if not self._snapshot_due:
            return
        envelopes, connection = self._require()
        options = self.options
        async with setup.create_slot_with_snapshot(self.dsn, connection, self.names) as exported:
            lsn = exported.consistent_lsn
            when = datetime.now(UTC)
            page: list[ChangeEvent] = []
            held: tuple[TableShape, dict[str, Any]] | None = None
            sequence = 0
            async for shape, values in setup.read_snapshot(
                self.dsn, exported, self.shapes, options.snapshot_page
            ):
                if held is not None:
                    page.append(self._read_event(envelopes, *held, "true", lsn, sequence, when))
                    sequence += 1
                    if len(page) >= options.snapshot_page:
                        yield page
                        page = []
                held = (shape, shape.row(values))
            if held is not None:
                # Debezium marks the snapshot's final row "last".
                page.append(self._read_event(envelopes, *held, "last", lsn, sequence, when))
            if page:
                yield page

    def _read_event(
        self,
        envelopes: Envelopes,
        shape: TableShape,
        row: dict[str, Any],
        flag: str,
        lsn: int,
        sequence: int,
        when: datetime,
    ) -> ChangeEvent:
        source = envelopes.source(shape, when, flag, None, lsn)
        return envelopes.event(shape, "r", shape.key(row), None, row, source, lsn, sequence, when)

    async def snapshot_delivered(self) -> None:
        """Record that the snapshot reached its destination: it is not taken again."""
        if self._snapshot_due:
            _, connection = self._require()
            await setup.mark_snapshot_done(connection, self.names)
            self._snapshot_due = False

    async def read(self) -> SlotBatch:
        """The next whole transactions after the slot's confirmed position."""
        if self._snapshot_due:
            raise CdcSetupError(
                f"CDC connector {self.options.name!r}: deliver the snapshot before streaming"
            )
        reader = await self._slot_reader()
        return await reader.read()

    async def confirm(self, lsn: int) -> None:
        """Everything before ``lsn`` was delivered: the slot may release it."""
        reader = await self._slot_reader()
        await reader.confirm(lsn)

    async def _slot_reader(self) -> SlotReader:
        if self._reader is None:
            envelopes, connection = self._require()
            keys = {(s.schema, s.table): s.primary_key for s in self.shapes}
            decoder = ChangeDecoder(envelopes, keys)
            reader = SlotReader(
                connection, self.names, decoder, max_changes=self.options.max_changes
            )
            await reader.start()
            self._reader = reader
        return self._reader

    def _require(self) -> tuple[Envelopes, psycopg.AsyncConnection[tuple[object, ...]]]:
        if self._envelopes is None or self._connection is None:
            raise CdcSetupError("ChangeCapture used outside 'async with'")
        return self._envelopes, self._connection

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()
